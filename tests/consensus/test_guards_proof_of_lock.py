"""Line 29: a re-proposed value v with proof-of-lock round vr is prevoted when
lockedRound_p ≤ vr (or v is the locked value): a lock of round vr itself does not stop a
polka of round vr for another value.

Four validators of power 1: 2f+1 is 3 votes.
"""

from __future__ import annotations

from appchaind.chain.types import PREVOTE
from appchaind.consensus.config import Step
from appchaind.consensus.events import BlockReceived, ProposalReceived, TimeoutFired
from appchaind.consensus.machine import NIL, ConsensusMachine
from appchaind.consensus.sim.keys import FakeVerifier

from .harness import Chain, Driver, config, votes_out


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


def test_a_round_without_prevotes_is_no_polka_even_for_a_set_of_one_line_28() -> None:
    """Line 28 needs 2f+1 ⟨PREVOTE, h_p, vr, id(v)⟩: a proposal naming a round vr of which
    the node holds no prevote at all has no polka, however small the set. One validator of
    power 1 (where a single unit of power is more than 2/3 of the total), watched by a node
    that is not a validator: it skips to round 1 on the validator's precommit there, gets
    the round-1 proposal with vr = 0, and stays in the propose step (no line 28) until its
    propose timeout."""
    chain = Chain(powers=(1,))
    observer = ConsensusMachine(config(), chain.state, None, FakeVerifier())
    d = Driver(observer)
    d.start()
    d.feed(chain.precommit(0, 1, NIL))  # lines 55-56: round 1
    assert (observer.round, observer.step) == (1, Step.PROPOSE)
    v = chain.block(proposer=chain.proposer(1))
    d.feed(BlockReceived(v), ProposalReceived(chain.proposal(v, 1, pol_round=0)))
    assert (observer.round, observer.step) == (1, Step.PROPOSE)
