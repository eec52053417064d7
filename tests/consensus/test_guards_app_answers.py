"""The application's answers the machine waits for, when they come late, twice or in an
unexpected order: getValue() (``ProposalPrepared``) and the verification of a precommit's
vote extension (``VoteExtensionVerified``); and messages of the next height that arrived
early, handled when the node gets there.

Four validators of power 1: 2f+1 is 3 votes, f+1 is 2 votes.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from appchaind.chain.types import PRECOMMIT, PREVOTE, Proposal, Vote
from appchaind.consensus.config import Step
from appchaind.consensus.effects import (
    BroadcastEvidence,
    BroadcastProposal,
    Decide,
    RequestPrepareProposal,
    RequestVerifyVoteExtension,
    ScheduleTimeout,
    SigningRefused,
)
from appchaind.consensus.events import (
    BlockReceived,
    ProposalPrepared,
    ProposalReceived,
    VoteExtensionVerified,
    VoteReceived,
)
from appchaind.consensus.machine import NIL, ConsensusMachine
from appchaind.consensus.signer import GuardedSigner, MemorySignStateStore
from appchaind.consensus.sim.keys import CHAIN_ID, FakeVerifier, RawSigner

from .harness import EXT, NOW, Chain, Driver, config, of_type, votes_out

HEIGHT_2_NOW = NOW + 10_000


def _others(chain: Chain, me: int) -> list[int]:
    return [i for i in range(len(chain.keys)) if i != me]


def _precommit(
    chain: Chain, index: int, block_hash: bytes, timestamp_ms: int = NOW, extension: bytes = EXT
) -> Vote:
    """Validator ``index``'s precommit at (1, 0) with ``extension``, at ``timestamp_ms``."""
    key = chain.keys[index]
    unsigned = Vote(
        PRECOMMIT, 1, 0, block_hash, timestamp_ms, key.address, index, extension, b"\0" * 64, b""
    )
    return RawSigner(key).sign_vote(unsigned)


def _asked(machine: ConsensusMachine, *votes: Vote) -> list[Vote]:
    """Feeds ``votes``; returns those whose extension the machine asks the application about."""
    return [
        request.vote
        for vote in votes
        for request in of_type(machine.handle(VoteReceived(vote), NOW), RequestVerifyVoteExtension)
    ]


# ---------------------------------------------------------------------------- getValue()


def test_a_repeated_get_value_answer_is_not_a_second_proposal_attempt() -> None:
    """Line 18 asks getValue() once per round and its answer is taken once. The proposer's
    guard refuses the block it builds (it proposed another one at (1, 0) before a crash):
    the refusal is reported and the propose timeout scheduled; the same answer coming
    again changes nothing (no second block, refusal or timeout)."""
    chain = Chain()
    me = chain.proposer(0)
    before = Proposal(1, 0, -1, b"\x0a" * 32, NOW, chain.keys[me].address, b"\0" * 64)
    signer = GuardedSigner(chain.keys[me], CHAIN_ID, MemorySignStateStore())
    signer.sign_proposal(before)
    machine = ConsensusMachine(config(), chain.state, signer, FakeVerifier())
    (request,) = of_type(machine.start(NOW), RequestPrepareProposal)
    answer = ProposalPrepared(request.height, request.round, (b"x=1",))
    effects = machine.handle(answer, NOW)
    assert [(e.height, e.round, e.step) for e in of_type(effects, SigningRefused)] == [
        (1, 0, Step.PROPOSE)
    ]
    assert of_type(effects, ScheduleTimeout)
    assert machine.handle(answer, NOW) == []


def test_a_proposer_whose_proposal_came_back_from_its_wal_does_not_propose_again() -> None:
    """At restart the driver replays the height's WAL first: the proposer's own proposal of
    (1, 0) comes back before StartRound(0) asks getValue(). When the answer comes the
    round has its proposal (line 19 ran before the crash): no second block is built and
    nothing is signed or refused."""
    chain = Chain()
    me = chain.proposer(0)
    block = chain.block((b"before=1",), proposer=me)
    signer = GuardedSigner(chain.keys[me], CHAIN_ID, MemorySignStateStore())
    proposal = signer.sign_proposal(
        Proposal(1, 0, -1, block.block_id(), NOW, chain.keys[me].address, b"\0" * 64)
    )
    machine = ConsensusMachine(config(), chain.state, signer, FakeVerifier())
    machine.handle(ProposalReceived(proposal), NOW)
    (request,) = of_type(machine.start(NOW), RequestPrepareProposal)
    assert machine.handle(ProposalPrepared(request.height, request.round, (b"x=1",)), NOW) == []


def test_a_get_value_answer_after_its_round_ended_is_dropped() -> None:
    """The proposer of round 0 asked getValue(); before the answer, f+1 votes of round 1
    moved it to round 1 (line 55), where another validator proposes. The late answer
    is for a round that is over: the node proposes nothing (it is not round 1's
    proposer)."""
    chain = Chain()
    me = chain.proposer(0)
    assert chain.proposer(1) != me
    machine = chain.machine(me)
    (request,) = of_type(machine.start(NOW), RequestPrepareProposal)
    helpers = _others(chain, me)[:2]
    for i in helpers:
        machine.handle(chain.prevote(i, 1, NIL), NOW)
    assert (machine.round, machine.step) == (1, Step.PROPOSE)
    effects = machine.handle(ProposalPrepared(request.height, request.round, (b"x=1",)), NOW)
    assert not of_type(effects, BroadcastProposal)
    assert effects == []


# ---------------------------------------------------------------------------- extensions


def _prevoted_b(chain: Chain, me: int) -> tuple[Driver, bytes]:
    """Node ``me`` holds round 0's proposal and its block B, accepted; it has prevoted B."""
    d = Driver(chain.machine(me))
    d.start()
    block = chain.block(proposer=chain.proposer(0))
    effects = d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    b = block.block_id()
    assert [(v.kind, v.block_hash) for v in votes_out(effects)] == [(PREVOTE, b)]
    return d, b


def test_the_first_answer_on_an_extension_is_final() -> None:
    """A precommit whose extension the application refused is not counted, even if an
    answer accepting it comes later (a duplicate or a stale answer): three precommits
    for B with one of them refused are not 2f+1 (line 49)."""
    chain = Chain()
    me = chain.not_proposer()
    d, b = _prevoted_b(chain, me)
    refused = _precommit(chain, _others(chain, me)[2], b, extension=b"bad")
    effects = d.feed(*(VoteReceived(_precommit(chain, i, b)) for i in _others(chain, me)[:2]))
    effects += d.feed(VoteReceived(refused))  # the driver's application refuses b"bad"
    assert not of_type(effects, Decide)
    assert d.feed(VoteExtensionVerified(refused, True)) == []
    assert d.machine.decision is None


def test_two_precommits_of_one_validator_for_one_block_count_its_power_once() -> None:
    """A validator signs two precommits for B at (1, 0) (different timestamps), both sent
    before the application answered about either extension; both extensions are
    accepted. Its power counts once for B: with one other precommit for B that is 2 of 4,
    not 2f+1, and nothing is decided."""
    chain = Chain()
    me = chain.not_proposer()
    d, b = _prevoted_b(chain, me)
    machine = d.machine
    twice, other = _others(chain, me)[:2]
    asked = _asked(
        machine,
        _precommit(chain, twice, b),
        _precommit(chain, twice, b, NOW + 1),
        _precommit(chain, other, b),
    )
    assert len(asked) == 3
    effects = [e for vote in asked for e in machine.handle(VoteExtensionVerified(vote, True), NOW)]
    assert not of_type(effects, Decide)
    assert machine.decision is None


def test_conflicting_precommits_answered_after_both_arrived_are_evidence() -> None:
    """A validator precommits A and B at (1, 0); both arrive before the application
    answered about either extension, and both are accepted: the two votes are recorded
    as duplicate-vote evidence and broadcast, once."""
    chain = Chain()
    me = chain.not_proposer()
    machine = chain.machine(me)
    machine.start(NOW)
    other = _others(chain, me)[0]
    a, b = _precommit(chain, other, b"\x0a" * 32), _precommit(chain, other, b"\x0b" * 32)
    effects = machine.handle(VoteReceived(a), NOW) + machine.handle(VoteReceived(b), NOW)
    assert [r.vote for r in of_type(effects, RequestVerifyVoteExtension)] == [a, b]
    for vote in (a, b):
        effects += machine.handle(VoteExtensionVerified(vote, True), NOW)
    (evidence,) = of_type(effects, BroadcastEvidence)  # recorded once
    assert {evidence.evidence.vote_a, evidence.evidence.vote_b} == {a, b}


def test_conflicting_precommits_are_evidence_whatever_the_order_of_the_answers() -> None:
    """The two signatures prove the double sign whatever the application thinks of an
    extension (test_answers.py checks it when A was counted before B arrived): here both
    arrive first, A's extension is accepted and B's refused."""
    chain = Chain()
    me = chain.not_proposer()
    machine = chain.machine(me)
    machine.start(NOW)
    other = _others(chain, me)[0]
    a, b = _precommit(chain, other, b"\x0a" * 32), _precommit(chain, other, b"\x0b" * 32)
    effects = machine.handle(VoteReceived(a), NOW) + machine.handle(VoteReceived(b), NOW)
    assert [r.vote for r in of_type(effects, RequestVerifyVoteExtension)] == [a, b]
    effects += machine.handle(VoteExtensionVerified(a, True), NOW)
    effects += machine.handle(VoteExtensionVerified(b, False), NOW)
    (evidence,) = of_type(effects, BroadcastEvidence)
    assert {evidence.evidence.vote_a, evidence.evidence.vote_b} == {a, b}


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))), ids=str)
def test_the_evidence_of_three_conflicting_precommits_does_not_depend_on_the_answers_order(
    order: tuple[int, ...],
) -> None:
    """A validator precommits A, B and C at (1, 0); all three arrive before any answer.
    Each later one is paired with the first on arrival ((A, B), (A, C)): whatever order
    the application accepts the extensions in, the node records those two and no other
    pair (counting them later added (B, C) in some orders: the same offence, but the
    evidence a node broadcast depended on the timing of its application's answers)."""
    chain = Chain()
    me = chain.not_proposer()
    machine = chain.machine(me)
    machine.start(NOW)
    other = _others(chain, me)[0]
    votes = [_precommit(chain, other, bytes([0x0A + i]) * 32) for i in range(3)]
    assert _asked(machine, *votes) == votes
    effects: list[object] = []
    for i in order:
        effects += machine.handle(VoteExtensionVerified(votes[i], True), NOW)
    pairs = {
        frozenset((e.evidence.vote_a, e.evidence.vote_b))
        for e in of_type(effects, BroadcastEvidence)
    }
    assert pairs == set()  # recorded on arrival, before the answers
    pending = {frozenset((e.vote_a, e.vote_b)) for e in machine.pending_evidence()}
    assert pending == {frozenset(votes[:2]), frozenset((votes[0], votes[2]))}


@pytest.mark.parametrize(
    "answer_first", [True, False], ids=["refused-then-nil", "nil-then-refused"]
)
def test_a_precommit_for_a_block_and_a_nil_precommit_are_evidence_whatever_the_answer(
    answer_first: bool,
) -> None:
    """A validator precommits A and nil at (1, 0): two signed precommits for different
    block ids (nil is one) prove the double sign, whether A's extension is refused before
    or after the nil precommit arrives."""
    chain = Chain()
    me = chain.not_proposer()
    machine = chain.machine(me)
    machine.start(NOW)
    other = _others(chain, me)[0]
    a, nil = _precommit(chain, other, b"\x0a" * 32), chain.vote(other, PRECOMMIT, 0, NIL)
    effects = machine.handle(VoteReceived(a), NOW)
    assert [r.vote for r in of_type(effects, RequestVerifyVoteExtension)] == [a]
    events = [VoteExtensionVerified(a, False), VoteReceived(nil)]
    for event in events if answer_first else events[::-1]:
        effects += machine.handle(event, NOW)
    (evidence,) = of_type(effects, BroadcastEvidence)
    assert {evidence.evidence.vote_a, evidence.evidence.vote_b} == {a, nil}


def test_a_nil_precommit_and_a_later_refused_precommit_for_a_block_are_evidence() -> None:
    """A validator's nil precommit at (1, 0) is counted; then its precommit for A arrives
    and the application refuses A's extension: the two signed precommits are recorded as
    duplicate-vote evidence all the same (A itself is never counted)."""
    chain = Chain()
    me = chain.not_proposer()
    machine = chain.machine(me)
    machine.start(NOW)
    other = _others(chain, me)[0]
    a, nil = _precommit(chain, other, b"\x0a" * 32), chain.vote(other, PRECOMMIT, 0, NIL)
    effects = machine.handle(VoteReceived(nil), NOW) + machine.handle(VoteReceived(a), NOW)
    assert [r.vote for r in of_type(effects, RequestVerifyVoteExtension)] == [a]
    effects += machine.handle(VoteExtensionVerified(a, False), NOW)
    (evidence,) = of_type(effects, BroadcastEvidence)
    assert {evidence.evidence.vote_a, evidence.evidence.vote_b} == {a, nil}


# ---------------------------------------------------------------------------- next height


def test_an_early_proposal_of_the_next_height_is_prevoted_at_the_time_the_node_gets_there() -> None:
    """Messages of height 2 that arrive while the node decides height 1 are kept and
    handled when height 2 starts, as if they arrived then. Here height 2's proposal
    carries a block that does not follow height 1 (wrong last block id), so the node
    prevotes nil at once (lines 22, 26), timestamped by its clock when it gets there."""
    chain = Chain()
    height_2 = dataclasses.replace(chain.state, validators=chain.state.next_validators)
    proposer_2 = chain.proposer(0, height_2)
    me = next(i for i in range(len(chain.keys)) if i not in (chain.proposer(0), proposer_2))
    early = chain.block((b"early=1",), proposer=proposer_2)
    early = dataclasses.replace(early, header=dataclasses.replace(early.header, height=2))
    key = chain.keys[proposer_2]
    early_proposal = RawSigner(key).sign_proposal(
        Proposal(2, 0, -1, early.block_id(), NOW, key.address, b"\0" * 64)
    )
    d = Driver(chain.machine(me))  # commit_ms 0: height 2 starts once height 1 is final
    d.start()
    assert d.feed(BlockReceived(early), ProposalReceived(early_proposal)) == []
    block = chain.block(proposer=chain.proposer(0))
    b = block.block_id()
    d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    d.feed(*(chain.prevote(i, 0, b) for i in _others(chain, me)))
    d.now = HEIGHT_2_NOW
    effects = d.feed(*(chain.precommit(i, 0, b) for i in _others(chain, me)))
    assert d.machine.height == 2
    (prevote,) = [v for v in votes_out(effects) if v.height == 2]
    assert (prevote.kind, prevote.round, prevote.block_hash) == (PREVOTE, 0, NIL)
    assert prevote.timestamp_ms == HEIGHT_2_NOW
