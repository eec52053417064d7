"""A height's variables start fresh (lines 2-9 of Algorithm 1, and 52-53 after a decision):
no lock, no valid value, no decision, whatever the previous height held.

Four validators of power 1: 2f+1 is 3 votes.
"""

from __future__ import annotations

from appchaind.consensus.config import Step
from appchaind.consensus.events import BlockReceived, ProposalReceived

from .harness import Chain, Driver


def test_a_new_height_starts_unlocked_and_undecided_lines_6_9() -> None:
    """lockedValue = validValue = nil, lockedRound = validRound = -1 at every height: the
    node has no lock at height 1, locks B there and decides it, and starts height 2
    with no lock, no valid value and no decision again."""
    chain = Chain()
    me = chain.not_proposer()
    d = Driver(chain.machine(me, commit_ms=1000))
    d.start()
    machine = d.machine
    assert (machine.locked_block_hash, machine.locked_round, machine.valid_round) == (None, -1, -1)
    block = chain.block(proposer=chain.proposer(0))
    b = block.block_id()
    others = [i for i in range(len(chain.keys)) if i != me]
    d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    d.feed(*(chain.prevote(i, 0, b) for i in others))
    assert (machine.locked_block_hash, machine.locked_round, machine.valid_round) == (b, 0, 0)
    d.feed(*(chain.precommit(i, 0, b) for i in others))
    assert (machine.height, machine.step) == (2, Step.NEW_HEIGHT)
    assert (machine.locked_block_hash, machine.locked_round, machine.valid_round) == (None, -1, -1)
    assert machine.valid_value is None and machine.decision is None
