"""The machine hands the node the blocks of the current height it holds, by hash: the node
makes its inclusion list for a precommit from the block precommitted (node._inclusion_list),
and lists nothing for a block the machine does not hold.

Four validators of power 1.
"""

from __future__ import annotations

from appchaind.consensus.effects import BroadcastProposal
from appchaind.consensus.events import BlockReceived

from .harness import Chain, Driver, of_type


def test_the_machine_holds_each_block_it_received_at_the_current_height() -> None:
    """A block received at the current height is held under its hash; a hash of no block
    received is not."""
    chain = Chain()
    d = Driver(chain.machine(chain.not_proposer()))
    d.start()
    block = chain.block(proposer=chain.proposer(0))
    other = chain.block((b"other=1",), proposer=chain.proposer(0))
    d.feed(BlockReceived(block))
    assert d.machine.block(block.block_id()) == block
    assert d.machine.block(other.block_id()) is None


def test_the_machine_holds_the_block_it_proposed_and_not_those_of_a_past_height() -> None:
    """The proposer holds the block it built; once the height is decided and finalized the
    machine holds no block of it (a new height starts with none)."""
    chain = Chain()
    me = chain.proposer(0)
    d = Driver(chain.machine(me))
    (proposed,) = of_type(d.start(), BroadcastProposal)
    b = proposed.block.block_id()
    assert d.machine.block(b) == proposed.block
    others = [i for i in range(len(chain.keys)) if i != me]
    d.feed(*(chain.prevote(i, 0, b) for i in others))
    d.feed(*(chain.precommit(i, 0, b) for i in others))
    assert d.machine.height == 2
    assert d.machine.block(b) is None
