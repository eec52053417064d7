"""Line 29: a re-proposed value v with proof-of-lock round vr is prevoted when
lockedRound_p ≤ vr (or v is the locked value): a lock of round vr itself does not stop a
polka of round vr for another value.

Four validators of power 1: 2f+1 is 3 votes.
"""

from __future__ import annotations

from appchaind.chain.types import PREVOTE
from appchaind.consensus.config import Step
from appchaind.consensus.events import BlockReceived, ProposalReceived, TimeoutFired
from appchaind.consensus.machine import NIL

from .harness import Chain, Driver, votes_out


def test_a_polka_of_the_locked_round_for_another_value_is_enough_line_29() -> None:
    """Round 0 had two polkas (two validators prevoted X and Y, more than f faulty): the
    node locked X at round 0. At round 1, Y is re-proposed with vr = 0: lockedRound 0 ≤ vr
    0, so the node prevotes Y (line 30), not nil."""
    chain = Chain()
    me = chain.not_proposer((0, 1))
    d = Driver(chain.machine(me))
    d.start()
    others = [i for i in range(len(chain.keys)) if i != me]
    x = chain.block((b"x=1",), proposer=chain.proposer(0))
    y = chain.block((b"y=1",), proposer=chain.proposer(1))
    d.feed(BlockReceived(x), ProposalReceived(chain.proposal(x, 0)))  # prevotes X
    d.feed(*(chain.prevote(i, 0, y.block_id()) for i in others))
    d.feed(*(chain.prevote(i, 0, x.block_id()) for i in others[:2]))
    assert (d.machine.locked_round, d.machine.locked_block_hash) == (0, x.block_id())
    d.feed(*(chain.precommit(i, 0, NIL) for i in others[:2]))
    d.feed(TimeoutFired(1, 0, Step.PRECOMMIT))  # line 65: round 1
    assert d.machine.round == 1
    effects = d.feed(BlockReceived(y), ProposalReceived(chain.proposal(y, 1, pol_round=0)))
    assert [(v.kind, v.round, v.block_hash) for v in votes_out(effects)] == [
        (PREVOTE, 1, y.block_id())
    ]
