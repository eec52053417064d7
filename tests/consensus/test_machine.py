"""One test (or a few) per rule of Algorithm 1 of "The latest gossip on BFT consensus".

Four validators of power 1 unless said otherwise: 2f+1 is 3 votes, f+1 is 2 votes.
"""

from __future__ import annotations

import pytest

from appchaind.chain.types import COMMIT_BLOCK, PRECOMMIT, PREVOTE
from appchaind.consensus.config import Mutation, Step
from appchaind.consensus.effects import (
    BroadcastEvidence,
    BroadcastProposal,
    Decide,
    EnterHeight,
    RequestExtendVote,
    RequestPrepareProposal,
    RequestProcessProposal,
    ScheduleTimeout,
)
from appchaind.consensus.events import BlockReceived, ProposalReceived, TimeoutFired
from appchaind.consensus.machine import NIL

from .harness import EXT, Chain, CountingVerifier, Driver, of_type, votes_out


@pytest.fixture
def chain() -> Chain:
    return Chain()


def _others(chain: Chain, me: int) -> list[int]:
    return [i for i in range(len(chain.keys)) if i != me]


def _receive_proposal(
    chain: Chain, d: Driver, round: int = 0, txs: tuple[bytes, ...] = (b"a=1",), pol_round: int = -1
):  # type: ignore[no-untyped-def]
    block = chain.block(txs, proposer=chain.proposer(round))
    effects = d.feed(
        BlockReceived(block), ProposalReceived(chain.proposal(block, round, pol_round))
    )
    return block, effects


def _locked_on_a(chain: Chain, me: int) -> tuple[Driver, bytes]:
    """Round 0: proposal A, a polka for A: the node locks A and precommits it."""
    d = Driver(chain.machine(me))
    d.start()
    block, _ = _receive_proposal(chain, d)
    a = block.block_id()
    others = _others(chain, me)
    d.feed(chain.prevote(others[0], 0, a), chain.prevote(others[1], 0, a))
    assert d.machine.locked_round == 0
    return d, a


def _to_round(chain: Chain, d: Driver, me: int, round: int) -> None:
    """Moves the node to ``round`` by f+1 (nil precommit) votes from that round (line 55)."""
    helpers = _others(chain, me)[:2]
    d.feed(chain.precommit(helpers[0], round, NIL), chain.precommit(helpers[1], round, NIL))
    assert d.machine.round == round


# ---------------------------------------------------------------------------- StartRound (11-21)


def test_non_proposer_schedules_timeout_propose_line_21(chain: Chain) -> None:
    me = chain.not_proposer()
    effects = Driver(chain.machine(me)).start()
    assert effects == [ScheduleTimeout(1, 0, Step.PROPOSE, 300)]


def test_timeouts_grow_linearly_with_the_round(chain: Chain) -> None:
    cfg = chain.machine(0).config
    assert [cfg.timeout_ms(Step.PROPOSE, r) for r in range(3)] == [300, 400, 500]
    assert [cfg.timeout_ms(Step.PREVOTE, r) for r in range(3)] == [200, 250, 300]
    assert [cfg.timeout_ms(Step.PRECOMMIT, r) for r in range(3)] == [200, 250, 300]
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    effects = d.feed(TimeoutFired(1, 0, Step.PROPOSE))  # prevote nil
    effects = d.feed(TimeoutFired(1, 0, Step.PRECOMMIT))  # line 65: StartRound(1)
    assert ScheduleTimeout(1, 1, Step.PROPOSE, 400) in effects


def test_proposer_asks_for_a_value_and_proposes_it_lines_14_19(chain: Chain) -> None:
    me = chain.proposer(0)
    effects = Driver(chain.machine(me)).start()
    (request,) = of_type(effects, RequestPrepareProposal)
    assert (request.height, request.round, request.last_commit) == (1, 0, None)
    (proposal,) = of_type(effects, BroadcastProposal)
    assert proposal.proposal.pol_round == -1
    assert proposal.block.txs == (b"tx1=1",)
    assert proposal.proposal.block_hash == proposal.block.block_id()
    # It receives its own proposal: line 22 fires, it prevotes its block.
    assert [(v.kind, v.block_hash) for v in votes_out(effects)] == [
        (PREVOTE, proposal.block.block_id())
    ]


def test_proposer_reproposes_valid_value_with_valid_round_lines_15_16(chain: Chain) -> None:
    me = chain.proposer(1)
    if me == chain.proposer(0):
        pytest.skip("needs distinct proposers")
    d = Driver(chain.machine(me))
    d.start()
    block, _ = _receive_proposal(chain, d)
    a = block.block_id()
    others = [i for i in _others(chain, me)]
    d.feed(chain.prevote(others[0], 0, a), chain.prevote(others[1], 0, a))
    assert d.machine.valid_round == 0
    effects = d.feed(TimeoutFired(1, 0, Step.PRECOMMIT))
    assert not of_type(effects, RequestPrepareProposal)
    (proposal,) = of_type(effects, BroadcastProposal)
    assert (proposal.proposal.round, proposal.proposal.pol_round) == (1, 0)
    assert proposal.proposal.block_hash == a


# ---------------------------------------------------------------------------- prevote (22-33)


def test_valid_proposal_gets_a_prevote_lines_22_24(chain: Chain) -> None:
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    block, effects = _receive_proposal(chain, d)
    assert of_type(effects, RequestProcessProposal)
    assert [(v.kind, v.round, v.block_hash) for v in votes_out(effects)] == [
        (PREVOTE, 0, block.block_id())
    ]
    assert d.machine.step == Step.PREVOTE  # line 27


def test_rejected_proposal_gets_a_nil_prevote_line_26(chain: Chain) -> None:
    me = chain.not_proposer()
    block = chain.block(proposer=chain.proposer(0))
    d = Driver(chain.machine(me), reject=[block.block_id()])
    d.start()
    effects = d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    assert [v.block_hash for v in votes_out(effects)] == [NIL]


def test_malformed_block_is_invalid_without_asking_the_app(chain: Chain) -> None:
    import dataclasses

    me = chain.not_proposer()
    good = chain.block(proposer=chain.proposer(0))
    bad = dataclasses.replace(
        good, header=dataclasses.replace(good.header, time_ms=good.header.time_ms + 1)
    )
    d = Driver(chain.machine(me))
    d.start()
    effects = d.feed(BlockReceived(bad), ProposalReceived(chain.proposal(bad, 0)))
    assert not of_type(effects, RequestProcessProposal)
    assert [v.block_hash for v in votes_out(effects)] == [NIL]


def test_proposal_from_the_wrong_proposer_is_ignored(chain: Chain) -> None:
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    block = chain.block()
    wrong = chain.proposal(block, 1)  # signed by round 1's proposer, claims round 1 ...
    import dataclasses

    forged = dataclasses.replace(
        wrong, round=0
    )  # ... relabelled as round 0: bad proposer or signature
    effects = d.feed(BlockReceived(block), ProposalReceived(forged))
    assert not votes_out(effects)
    assert d.machine.step == Step.PROPOSE


def test_locked_node_prevotes_nil_for_another_value_line_23(chain: Chain) -> None:
    me = chain.not_proposer()
    d, a = _locked_on_a(chain, me)
    _to_round(chain, d, me, 1)
    block_b, effects = _receive_proposal(chain, d, round=1, txs=(b"b=2",))
    assert [v.block_hash for v in votes_out(effects)] == [NIL]


def test_locked_node_prevotes_its_locked_value_line_23(chain: Chain) -> None:
    me = chain.not_proposer()
    d, a = _locked_on_a(chain, me)
    _to_round(chain, d, me, 1)
    block_a = chain.block(proposer=chain.proposer(0))  # the same block A, pol_round -1
    effects = d.feed(ProposalReceived(chain.proposal(block_a, 1)))
    assert [v.block_hash for v in votes_out(effects)] == [a]


def test_without_locking_the_mutant_prevotes_another_value(chain: Chain) -> None:
    me = chain.not_proposer()
    d = Driver(chain.machine(me, mutation=Mutation.NO_LOCKING))
    d.start()
    block, _ = _receive_proposal(chain, d)
    a = block.block_id()
    others = _others(chain, me)
    d.feed(chain.prevote(others[0], 0, a), chain.prevote(others[1], 0, a))
    _to_round(chain, d, me, 1)
    block_b, effects = _receive_proposal(chain, d, round=1, txs=(b"b=2",))
    assert [v.block_hash for v in votes_out(effects)] == [block_b.block_id()]


def test_reproposal_backed_by_a_polka_unlocks_line_28_30(chain: Chain) -> None:
    me = chain.not_proposer((0, 1, 2))
    d, a = _locked_on_a(chain, me)
    _to_round(chain, d, me, 2)
    others = _others(chain, me)
    block_b = chain.block((b"b=2",), proposer=chain.proposer(1))
    b = block_b.block_id()
    # A polka for B in round 1 (>= lockedRound 0) that this node missed while it happened.
    d.feed(*(chain.prevote(i, 1, b) for i in others))
    effects = d.feed(
        BlockReceived(block_b), ProposalReceived(chain.proposal(block_b, 2, pol_round=1))
    )
    assert [v.block_hash for v in votes_out(effects)] == [b]


def test_reproposal_without_its_polka_waits_line_28(chain: Chain) -> None:
    me = chain.not_proposer((0, 1, 2))
    d, a = _locked_on_a(chain, me)
    _to_round(chain, d, me, 2)
    block_b = chain.block((b"b=2",), proposer=chain.proposer(2))
    effects = d.feed(
        BlockReceived(block_b), ProposalReceived(chain.proposal(block_b, 2, pol_round=1))
    )
    assert not votes_out(effects) and d.machine.step == Step.PROPOSE


def test_reproposal_of_older_polka_than_lock_gets_nil_line_32(chain: Chain) -> None:
    me = chain.not_proposer((0, 1, 3))
    d = Driver(chain.machine(me))
    d.start()
    others = _others(chain, me)
    block_b = chain.block((b"b=2",), proposer=chain.proposer(0))
    b = block_b.block_id()
    d.feed(*(chain.prevote(i, 0, b) for i in others))  # polka for B at round 0, no proposal seen
    _to_round(chain, d, me, 1)
    block_a, _ = _receive_proposal(chain, d, round=1)
    a = block_a.block_id()
    d.feed(chain.prevote(others[0], 1, a), chain.prevote(others[1], 1, a))  # lock A at round 1
    assert d.machine.locked_round == 1
    _to_round(chain, d, me, 3)
    effects = d.feed(
        BlockReceived(block_b), ProposalReceived(chain.proposal(block_b, 3, pol_round=0))
    )
    assert [v.block_hash for v in votes_out(effects)] == [NIL]  # lockedRound 1 > vr 0


# ---------------------------------------------------------------------------- polkas (34-46)


def test_any_polka_schedules_timeout_prevote_once_line_34(chain: Chain) -> None:
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    block, _ = _receive_proposal(chain, d)
    others = _others(chain, me)
    effects = d.feed(chain.prevote(others[0], 0, NIL), chain.prevote(others[1], 0, b"\x07" * 32))
    assert of_type(effects, ScheduleTimeout) == [ScheduleTimeout(1, 0, Step.PREVOTE, 200)]
    effects = d.feed(chain.prevote(others[2], 0, NIL))
    assert not of_type(effects, ScheduleTimeout)


def test_polka_locks_and_precommits_with_a_vote_extension_lines_36_43(chain: Chain) -> None:
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    block, _ = _receive_proposal(chain, d)
    a = block.block_id()
    others = _others(chain, me)
    effects = d.feed(chain.prevote(others[0], 0, a), chain.prevote(others[1], 0, a))
    assert RequestExtendVote(1, 0, a) in effects
    (precommit,) = [v for v in votes_out(effects) if v.kind == PRECOMMIT]
    assert (precommit.block_hash, precommit.extension) == (a, EXT)
    assert precommit.extension_signature
    m = d.machine
    assert (m.locked_round, m.locked_block_hash, m.valid_round, m.step) == (0, a, 0, Step.PRECOMMIT)


def test_polka_after_precommitting_nil_only_updates_valid_value_line_42(chain: Chain) -> None:
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    others = _others(chain, me)
    d.feed(TimeoutFired(1, 0, Step.PROPOSE))  # prevote nil
    d.feed(chain.prevote(others[0], 0, NIL), chain.prevote(others[1], 0, b"\x01" * 32))
    d.feed(TimeoutFired(1, 0, Step.PREVOTE))  # precommit nil
    assert d.machine.step == Step.PRECOMMIT
    block, effects = _receive_proposal(chain, d)
    a = block.block_id()
    effects = d.feed(chain.prevote(others[2], 0, a), chain.prevote(others[0], 1, NIL))
    d.feed(*(chain.prevote(i, 0, a) for i in others))
    assert (d.machine.valid_round, d.machine.locked_round) == (0, -1)
    assert not [v for v in votes_out(effects) if v.kind == PRECOMMIT]


def test_nil_polka_precommits_nil_lines_44_46(chain: Chain) -> None:
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    d.feed(TimeoutFired(1, 0, Step.PROPOSE))
    others = _others(chain, me)
    effects = d.feed(chain.prevote(others[0], 0, NIL), chain.prevote(others[1], 0, NIL))
    assert [(v.kind, v.block_hash) for v in votes_out(effects)] == [(PRECOMMIT, NIL)]
    assert d.machine.step == Step.PRECOMMIT


def test_any_2f1_precommits_schedule_timeout_precommit_once_line_47(chain: Chain) -> None:
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    others = _others(chain, me)
    effects = d.feed(*(chain.precommit(i, 0, NIL) for i in others[:2]))
    assert not of_type(effects, ScheduleTimeout)
    effects = d.feed(chain.precommit(others[2], 0, b"\x02" * 32))
    assert of_type(effects, ScheduleTimeout) == [ScheduleTimeout(1, 0, Step.PRECOMMIT, 200)]


# ---------------------------------------------------------------------------- decision (49-54)


def test_commit_decides_and_starts_the_next_height_lines_49_54(chain: Chain) -> None:
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    block, _ = _receive_proposal(chain, d)
    a = block.block_id()
    others = _others(chain, me)
    effects = d.feed(*(chain.precommit(i, 0, a) for i in others))
    (decide,) = of_type(effects, Decide)
    assert decide.block == block
    assert decide.commit.block_hash == a
    assert sum(s.flag == COMMIT_BLOCK for s in decide.commit.signatures) == 3
    assert all(s.extension == EXT for s in decide.commit.signatures if s.flag == COMMIT_BLOCK)
    (enter,) = of_type(effects, EnterHeight)
    assert enter.state.height == 2 and enter.state.last_block_id == a
    assert enter.state.last_commit == decide.commit
    assert d.machine.height == 2 and d.machine.round == 0 and d.machine.locked_round == -1


def test_commit_from_an_earlier_round_decides_while_in_a_later_round(chain: Chain) -> None:
    me = chain.not_proposer((0, 3))
    d = Driver(chain.machine(me))
    d.start()
    _to_round(chain, d, me, 3)
    block = chain.block(proposer=chain.proposer(0))
    others = _others(chain, me)
    d.feed(BlockReceived(block))
    effects = d.feed(*(chain.precommit(i, 0, block.block_id()) for i in others))
    assert of_type(effects, Decide)


def test_commit_for_an_invalid_block_is_not_decided_line_50(chain: Chain) -> None:
    me = chain.not_proposer()
    block = chain.block(proposer=chain.proposer(0))
    d = Driver(chain.machine(me), reject=[block.block_id()])
    d.start()
    d.feed(BlockReceived(block))
    effects = d.feed(*(chain.precommit(i, 0, block.block_id()) for i in _others(chain, me)))
    assert not of_type(effects, Decide)


# ---------------------------------------------------------------------------- round skip (55-56)


def test_f_plus_1_from_a_higher_round_skips_to_it_line_55(chain: Chain) -> None:
    me = chain.not_proposer((0, 5))
    d = Driver(chain.machine(me))
    d.start()
    others = _others(chain, me)
    d.feed(chain.prevote(others[0], 5, NIL))
    assert d.machine.round == 0  # one vote of power 1 is not more than 1/3 of 4
    effects = d.feed(chain.precommit(others[1], 5, NIL))
    assert d.machine.round == 5
    assert ScheduleTimeout(1, 5, Step.PROPOSE, 800) in effects


def test_skip_on_single_vote_mutant_skips_on_one_vote(chain: Chain) -> None:
    me = chain.not_proposer((0, 5))
    d = Driver(chain.machine(me, mutation=Mutation.SKIP_ON_SINGLE_VOTE))
    d.start()
    d.feed(chain.prevote(_others(chain, me)[0], 5, NIL))
    assert d.machine.round == 5


def test_half_threshold_mutant_precommits_on_half(chain: Chain) -> None:
    chain = Chain((1, 1, 1, 1, 1, 1))
    me = chain.not_proposer()
    d = Driver(chain.machine(me, mutation=Mutation.HALF_THRESHOLD))
    d.start()
    block, _ = _receive_proposal(chain, d)
    a = block.block_id()
    others = _others(chain, me)
    effects = d.feed(
        chain.prevote(others[0], 0, a),
        chain.prevote(others[1], 0, a),
        chain.prevote(others[2], 0, a),
    )
    assert [v.kind for v in votes_out(effects)] == [PRECOMMIT]  # 4 of 6 with itself: > 1/2


# ---------------------------------------------------------------------------- timeouts (57-67)


def test_timeout_propose_prevotes_nil_lines_57_60(chain: Chain) -> None:
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    effects = d.feed(TimeoutFired(1, 0, Step.PROPOSE))
    assert [(v.kind, v.block_hash) for v in votes_out(effects)] == [(PREVOTE, NIL)]
    assert d.machine.step == Step.PREVOTE


def test_timeout_prevote_precommits_nil_lines_61_64(chain: Chain) -> None:
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    d.feed(TimeoutFired(1, 0, Step.PROPOSE))
    effects = d.feed(TimeoutFired(1, 0, Step.PREVOTE))
    assert [(v.kind, v.block_hash) for v in votes_out(effects)] == [(PRECOMMIT, NIL)]


def test_timeout_precommit_starts_next_round_lines_65_67(chain: Chain) -> None:
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    d.feed(TimeoutFired(1, 0, Step.PRECOMMIT))
    assert (d.machine.round, d.machine.step) == (1, Step.PROPOSE)


def test_stale_timeouts_are_ignored(chain: Chain) -> None:
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    d.feed(TimeoutFired(1, 0, Step.PRECOMMIT))
    assert not d.feed(TimeoutFired(1, 0, Step.PROPOSE), TimeoutFired(7, 1, Step.PROPOSE))
    d.feed(TimeoutFired(1, 1, Step.PROPOSE))
    assert not d.feed(TimeoutFired(1, 1, Step.PROPOSE))  # step is prevote now


# ---------------------------------------------------------------------------- votes, evidence, extensions


def test_duplicate_votes_become_evidence(chain: Chain) -> None:
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    other = _others(chain, me)[0]
    a = b"\x0a" * 32
    d.feed(chain.prevote(other, 0, a))
    effects = d.feed(chain.prevote(other, 0, NIL))
    (found,) = of_type(effects, BroadcastEvidence)
    assert found.evidence.vote_a.block_hash == NIL and found.evidence.vote_b.block_hash == a
    assert d.machine.pending_evidence() == (found.evidence,)
    assert not of_type(d.feed(chain.prevote(other, 0, NIL)), BroadcastEvidence)  # once


def test_an_equivocator_counts_once_per_block_it_voted_for(chain: Chain) -> None:
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    block, _ = _receive_proposal(chain, d)  # own prevote for A
    a = block.block_id()
    x, y, _ = _others(chain, me)
    d.feed(chain.prevote(x, 0, NIL), chain.prevote(x, 0, a))  # x equivocates
    assert d.machine.locked_round == -1  # A has me and x: 2 of 4
    d.feed(chain.prevote(y, 0, a))
    assert d.machine.locked_round == 0


def test_rejected_vote_extension_is_not_counted(chain: Chain) -> None:
    import dataclasses

    from appchaind.consensus.events import VoteReceived
    from appchaind.consensus.sim.keys import RawSigner

    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    block, _ = _receive_proposal(chain, d)
    a = block.block_id()
    others = _others(chain, me)
    bad = []
    for i in others:
        v = chain.vote(i, PRECOMMIT, 0, a)
        bad.append(
            VoteReceived(
                RawSigner(chain.keys[i]).sign_vote(dataclasses.replace(v, extension=b"bad"))
            )
        )
    assert not of_type(d.feed(*bad), Decide)
    assert of_type(d.feed(*(chain.precommit(i, 0, a) for i in others)), Decide)


def test_each_signature_is_verified_once(chain: Chain) -> None:
    verifier = CountingVerifier()
    me = chain.not_proposer()
    d = Driver(chain.machine(me, verifier=verifier))
    d.start()
    vote = chain.prevote(_others(chain, me)[0], 0, NIL)
    d.feed(vote, vote, vote)
    assert verifier.calls == 1


def test_votes_from_unknown_validators_or_bad_signatures_are_dropped(chain: Chain) -> None:
    import dataclasses

    from appchaind.consensus.events import VoteReceived

    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    others = _others(chain, me)
    v = chain.vote(others[0], PREVOTE, 3, NIL)
    d.feed(VoteReceived(dataclasses.replace(v, signature=b"\x01" * 64)))
    d.feed(VoteReceived(dataclasses.replace(v, validator_index=others[1])))
    d.feed(chain.prevote(others[1], 3, NIL))
    assert d.machine.round == 0  # neither bad vote counted towards f+1
    assert d.machine.statistics().votes_counted == 1
