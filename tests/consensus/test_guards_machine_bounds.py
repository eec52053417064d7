"""The bounds on what peers can make a consensus machine hold: the distinct blocks of a
height, and the messages of the next height kept until the node gets there.

Four validators of power 1: 2f+1 is 3 votes, f+1 is 2 votes.
"""

from __future__ import annotations

from appchaind.chain.types import PREVOTE
from appchaind.consensus.effects import RequestProcessProposal
from appchaind.consensus.events import BlockReceived, ProposalReceived, VoteReceived
from appchaind.consensus.machine import _MAX_BLOCKS_PER_HEIGHT, _MAX_BUFFERED, NIL

from .harness import NOW, Chain, Driver, of_type


def test_a_height_holds_at_most_max_blocks_per_height_blocks() -> None:
    """A node takes up to _MAX_BLOCKS_PER_HEIGHT distinct blocks at a height (each is put
    to the application); a further block is dropped unseen."""
    chain = Chain()
    machine = chain.machine(chain.not_proposer())
    machine.start(NOW)
    blocks = [chain.block((b"t%d=1" % i,)) for i in range(_MAX_BLOCKS_PER_HEIGHT + 1)]
    asked = [
        e.block
        for block in blocks
        for e in of_type(machine.handle(BlockReceived(block), NOW), RequestProcessProposal)
    ]
    assert asked == blocks[:-1]


def test_at_most_max_buffered_messages_of_the_next_height_are_kept() -> None:
    """While deciding height 1 the node keeps at most _MAX_BUFFERED messages of height 2:
    after that many (one round-1 prevote of validator p, sent again and again), validator
    q's round-1 prevote is dropped. At height 2 the node has heard only p in round 1, not
    f+1, so it stays in round 0 (line 55)."""
    chain = Chain()
    me = chain.not_proposer()
    p, q = [i for i in range(len(chain.keys)) if i != me][:2]
    d = Driver(chain.machine(me))
    d.start()
    flood = VoteReceived(chain.vote(p, PREVOTE, 1, NIL, height=2))
    late = VoteReceived(chain.vote(q, PREVOTE, 1, NIL, height=2))
    assert d.feed(*[flood] * _MAX_BUFFERED, late) == []
    block = chain.block(proposer=chain.proposer(0))
    b = block.block_id()
    d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    others = [i for i in range(len(chain.keys)) if i != me]
    d.feed(*(chain.prevote(i, 0, b) for i in others))
    d.feed(*(chain.precommit(i, 0, b) for i in others))
    assert (d.machine.height, d.machine.round) == (2, 0)
