"""What the consensus machine answers, found unguarded by ``make mutate``
(docs/mutation-report.md): line 29's second way to prevote a re-proposed value, rules that
fire one after another within one step (a machine that has every message acts at once),
the commit handed to the application, an observer (no signer) that follows without voting,
how a refused signature is reported and what the machine does next, answers from the
application that come too late, vote timestamps, and the next height's proposer and start.

Four validators of power 1 unless said otherwise: 2f+1 is 3 votes, f+1 is 2 votes.
"""

from __future__ import annotations

import dataclasses

from appchaind.chain.types import COMMIT_BLOCK, PRECOMMIT, PREVOTE, Proposal, Vote
from appchaind.consensus.config import Step
from appchaind.consensus.effects import (
    BroadcastEvidence,
    BroadcastProposal,
    BroadcastVote,
    Decide,
    RequestExtendVote,
    RequestFinalizeBlock,
    RequestPrepareProposal,
    RequestProcessProposal,
    RequestVerifyVoteExtension,
    ScheduleTimeout,
    SigningRefused,
)
from appchaind.consensus.events import (
    BlockFinalized,
    BlockReceived,
    ProposalPrepared,
    ProposalProcessed,
    ProposalReceived,
    TimeoutFired,
    VoteExtended,
    VoteExtensionVerified,
    VoteReceived,
)
from appchaind.consensus.evidence import weighted_median_time
from appchaind.consensus.machine import NIL, ConsensusMachine
from appchaind.consensus.signer import GuardedSigner, MemorySignStateStore
from appchaind.consensus.sim.keys import CHAIN_ID, FakeVerifier

from .harness import NOW, Chain, Cluster, Driver, config, of_type, votes_out


def _others(chain: Chain, me: int) -> list[int]:
    return [i for i in range(len(chain.keys)) if i != me]


# ---------------------------------------------------------------------------- line 29


def test_a_node_locked_on_v_prevotes_v_re_proposed_with_an_earlier_proof_of_lock_line_29() -> None:
    """Line 29: lockedRound_p ≤ vr ∨ lockedValue_p = v. The node locks B at round 1; at
    round 2, B is re-proposed with a proof-of-lock of round 0 (a polka for B at round 0,
    which the node saw too): vr = 0 is below its locked round, but B is its locked value,
    so it prevotes B."""
    chain = Chain()
    me = chain.not_proposer((1, 2))
    d = Driver(chain.machine(me))
    d.start()
    others = _others(chain, me)
    block = chain.block(proposer=chain.proposer(1))
    b = block.block_id()
    d.feed(*(chain.prevote(i, 0, b) for i in others))  # a polka for B at round 0
    d.feed(chain.precommit(others[0], 1, NIL), chain.precommit(others[1], 1, NIL))  # to round 1
    assert d.machine.round == 1
    d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 1, pol_round=0)))
    d.feed(*(chain.prevote(i, 1, b) for i in others[:2]))
    assert (d.machine.locked_round, d.machine.locked_value) == (1, block)
    d.feed(chain.precommit(others[0], 2, NIL), chain.precommit(others[1], 2, NIL))  # to round 2
    assert d.machine.round == 2
    effects = d.feed(ProposalReceived(chain.proposal(block, 2, pol_round=0)))
    assert [(v.kind, v.round, v.block_hash) for v in votes_out(effects)] == [(PREVOTE, 2, b)]


# ---------------------------------------------------------------------------- one step


def test_a_proposal_with_a_proof_of_lock_arriving_last_is_prevoted_and_precommitted_at_once() -> (
    None
):
    """At round 1 the node already has the polka for B of round 0 and three prevotes for
    B of round 1; the proposal (vr = 0) arrives last: in that one step it prevotes B (line
    30) and, the round's polka for B being there, locks and precommits B (line 40)."""
    chain = Chain()
    me = chain.not_proposer((0, 1))
    d = Driver(chain.machine(me))
    d.start()
    others = _others(chain, me)
    block = chain.block(proposer=chain.proposer(1))
    b = block.block_id()
    d.feed(*(chain.prevote(i, 0, b) for i in others))
    d.feed(chain.precommit(others[0], 1, NIL), chain.precommit(others[1], 1, NIL))
    d.feed(*(chain.prevote(i, 1, b) for i in others))
    effects = d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 1, pol_round=0)))
    assert [(v.kind, v.round, v.block_hash) for v in votes_out(effects)] == [
        (PREVOTE, 1, b), (PRECOMMIT, 1, b),
    ]  # fmt: skip


def test_the_prevote_completing_a_polka_locks_precommits_and_decides_at_once() -> None:
    """The node has prevoted B and holds two precommits for B; the prevote completing the
    polka makes it precommit B (line 40), and its own precommit makes 2f+1: it decides B
    (line 49) in the same step, handing the application the commit of those precommits."""
    chain = Chain()
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    others = _others(chain, me)
    block = chain.block(proposer=chain.proposer(0))
    b = block.block_id()
    d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    d.feed(chain.precommit(others[0], 0, b), chain.precommit(others[1], 0, b))
    d.feed(chain.prevote(others[0], 0, b))
    effects = d.feed(chain.prevote(others[1], 0, b))
    (decide,) = of_type(effects, Decide)
    (finalize,) = of_type(effects, RequestFinalizeBlock)
    assert decide.block == finalize.block == block
    assert finalize.commit == decide.commit
    commit = finalize.commit
    assert (commit.height, commit.round, commit.block_hash) == (1, 0, b)
    voted = {chain.keys.index(next(k for k in chain.keys if k.address == s.validator))
             for s in commit.signatures if s.flag == COMMIT_BLOCK}  # fmt: skip
    assert voted == {me, others[0], others[1]}


def test_a_nil_polka_precommits_nil_and_schedules_the_precommit_timeout_at_once() -> None:
    """In prevote with two nil precommits held, the prevote completing a nil polka makes
    the node precommit nil (line 45) and, 2f+1 precommits of the round being there, start
    the precommit timeout (line 48) in the same step."""
    chain = Chain()
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    others = _others(chain, me)
    d.feed(TimeoutFired(1, 0, Step.PROPOSE))  # prevotes nil
    d.feed(chain.precommit(others[0], 0, NIL), chain.precommit(others[1], 0, NIL))
    d.feed(chain.prevote(others[0], 0, NIL))
    effects = d.feed(chain.prevote(others[1], 0, NIL))
    assert [(v.kind, v.block_hash) for v in votes_out(effects)] == [(PRECOMMIT, NIL)]
    assert (0, Step.PRECOMMIT) in [(t.round, t.step) for t in of_type(effects, ScheduleTimeout)]


def test_after_skipping_to_a_round_its_rules_run_in_the_same_step() -> None:
    """The node at round 0 holds round 2's proposal; the second vote of round 2 (f+1) makes
    it skip there (line 55) and, in the same step, prevote the proposal (line 24)."""
    chain = Chain()
    me = chain.not_proposer((0, 2))
    d = Driver(chain.machine(me))
    d.start()
    others = [i for i in _others(chain, me) if i != chain.proposer(2)]
    block = chain.block(proposer=chain.proposer(2))
    d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 2)))
    d.feed(chain.prevote(others[0], 2, NIL))
    effects = d.feed(chain.prevote(others[1], 2, NIL))
    assert d.machine.round == 2
    assert [(v.kind, v.round, v.block_hash) for v in votes_out(effects)] == [
        (PREVOTE, 2, block.block_id())
    ]


# ---------------------------------------------------------------------------- observers


def test_an_observer_decides_from_the_validators_votes_and_never_votes() -> None:
    """A machine without a signer (a full node) follows a height: it never proposes,
    prevotes, precommits or asks for a vote extension, and decides on 2f+1 precommits."""
    chain = Chain()
    observer = ConsensusMachine(config(), chain.state, None, FakeVerifier())
    d = Driver(observer)
    effects = d.start()
    block = chain.block(proposer=chain.proposer(0))
    b = block.block_id()
    effects += d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    effects += d.feed(*(chain.prevote(i, 0, b) for i in range(3)))
    effects += d.feed(*(chain.precommit(i, 0, b) for i in range(3)))
    assert not of_type(effects, BroadcastVote) and not of_type(effects, BroadcastProposal)
    assert not of_type(effects, RequestExtendVote)
    assert [e.block for e in of_type(effects, Decide)] == [block]


# ---------------------------------------------------------------------------- refusals


def _signer_that_signed(chain: Chain, index: int, *messages: Vote | Proposal) -> GuardedSigner:
    """Validator ``index``'s guard, having signed ``messages`` (before a crash)."""
    signer = GuardedSigner(chain.keys[index], CHAIN_ID, MemorySignStateStore())
    for message in messages:
        if isinstance(message, Vote):
            signer.sign_vote(message)
        else:
            signer.sign_proposal(message)
    return signer


def test_a_proposal_the_guard_refuses_is_reported_and_the_round_goes_on() -> None:
    """The proposer of round 0 had proposed another block at (1, 0) before it restarted:
    its guard refuses the new proposal. The machine reports it (SigningRefused for height
    1, round 0, propose) and schedules the propose timeout, as a non-proposer would."""
    chain = Chain()
    me = chain.proposer(0)
    other = chain.block((b"other=1",), proposer=me)
    before = Proposal(1, 0, -1, other.block_id(), NOW, chain.keys[me].address, b"\0" * 64)
    signer = _signer_that_signed(chain, me, before)
    d = Driver(ConsensusMachine(config(), chain.state, signer, FakeVerifier()))
    effects = d.start()
    (refused,) = of_type(effects, SigningRefused)
    assert (refused.height, refused.round, refused.step) == (1, 0, Step.PROPOSE)
    assert refused.reason
    assert not of_type(effects, BroadcastProposal)
    assert [(t.height, t.round, t.step) for t in of_type(effects, ScheduleTimeout)] == [
        (1, 0, Step.PROPOSE)
    ]


def test_a_prevote_signed_before_a_crash_is_the_nodes_prevote_for_that_step() -> None:
    """Before a restart the node prevoted X at (1, 0); now B is proposed. The guard refuses
    a prevote for B (reported as SigningRefused for prevote); the machine sends the prevote
    it already signed, for X, again, and counts it as its own."""
    chain = Chain()
    me = chain.not_proposer()
    x = b"\x0a" * 32
    unsigned = Vote(PREVOTE, 1, 0, x, NOW, chain.keys[me].address, me, b"", b"\0" * 64, b"")
    signer = _signer_that_signed(chain, me, unsigned)
    d = Driver(ConsensusMachine(config(), chain.state, signer, FakeVerifier()))
    d.start()
    block = chain.block(proposer=chain.proposer(0))
    effects = d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    (refused,) = of_type(effects, SigningRefused)
    assert (refused.height, refused.round, refused.step) == (1, 0, Step.PREVOTE)
    assert refused.reason
    assert [(v.kind, v.round, v.block_hash) for v in votes_out(effects)] == [(PREVOTE, 0, x)]


def test_a_vote_the_guard_refuses_as_a_regression_is_reported_and_not_sent() -> None:
    """The guard last signed a precommit at (1, 0): a prevote at (1, 0) is a regression.
    It is reported and nothing is sent."""
    chain = Chain()
    me = chain.not_proposer()
    unsigned = Vote(PRECOMMIT, 1, 0, NIL, NOW, chain.keys[me].address, me, b"", b"\0" * 64, b"")
    signer = _signer_that_signed(chain, me, unsigned)
    d = Driver(ConsensusMachine(config(), chain.state, signer, FakeVerifier()))
    d.start()
    effects = d.feed(TimeoutFired(1, 0, Step.PROPOSE))
    (refused,) = of_type(effects, SigningRefused)
    assert (refused.height, refused.round, refused.step) == (1, 0, Step.PREVOTE)
    assert refused.reason
    assert votes_out(effects) == []


# ---------------------------------------------------------------------------- late answers


def test_answers_for_another_height_round_or_block_are_ignored() -> None:
    """The application's answers that do not match what the machine asked: a verdict on a
    block it does not hold, a prepared block for another round, an extension for another
    block, a finalization of another height: none changes anything."""
    chain = Chain()
    me = chain.proposer(0)
    machine = chain.machine(me)
    effects = machine.start(NOW)
    assert machine.step == Step.PROPOSE
    # a prepared proposal for another round or height
    for stale in (ProposalPrepared(1, 1, (b"x=1",)), ProposalPrepared(2, 0, (b"x=1",))):
        assert machine.handle(stale, NOW) == []
    effects = machine.handle(ProposalPrepared(1, 0, (b"x=1",)), NOW)
    (proposed,) = of_type(effects, BroadcastProposal)
    b = proposed.proposal.block_hash
    # the same answer again is not a second proposal
    assert machine.handle(ProposalPrepared(1, 0, (b"y=1",)), NOW) == []
    # a verdict on a block the node does not hold
    unknown = b"\x0b" * 32
    assert machine.handle(ProposalProcessed(1, unknown, True), NOW) == []
    others = _others(chain, me)
    machine.handle(chain.prevote(others[0], 0, b), NOW)
    effects = machine.handle(chain.prevote(others[1], 0, b), NOW)
    (asked,) = of_type(effects, RequestExtendVote)
    # an extension for another block, or another height, is not signed
    assert machine.handle(VoteExtended(1, 0, unknown, b"e"), NOW) == []
    assert machine.handle(VoteExtended(2, 0, b, b"e"), NOW) == []
    effects = machine.handle(VoteExtended(1, 0, b, b"e"), NOW)
    assert [(v.kind, v.block_hash, v.extension) for v in votes_out(effects)] == [
        (PRECOMMIT, b, b"e")
    ]
    # a finalization before any decision, or of another height, moves nothing
    assert machine.handle(BlockFinalized(1, b, b"app"), NOW) == []
    assert machine.height == 1
    effects = []
    for i in others[:2]:
        for request in of_type(
            machine.handle(chain.precommit(i, 0, b), NOW), RequestVerifyVoteExtension
        ):
            effects += machine.handle(VoteExtensionVerified(request.vote, True), NOW)
    assert of_type(effects, Decide)
    assert machine.handle(BlockFinalized(2, b, b"app"), NOW) == []
    assert machine.height == 1
    assert machine.handle(BlockFinalized(1, unknown, b"app"), NOW) == []
    assert machine.height == 1
    machine.handle(BlockFinalized(1, b, b"app"), NOW)
    assert machine.height == 2


# ---------------------------------------------------------------------------- time, heights


def test_a_node_whose_clock_is_behind_votes_one_millisecond_after_the_block_time() -> None:
    """BFT time: a vote's timestamp is after this height's block time (the genesis time
    here), whatever the local clock says; otherwise it is the local clock."""
    chain = Chain()
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.now = 5  # far behind
    d.start()
    block = chain.block(proposer=chain.proposer(0))
    effects = d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    (prevote,) = votes_out(effects)
    assert prevote.timestamp_ms == chain.state.last_block_time_ms + 1
    d.now = NOW
    effects = d.feed(TimeoutFired(1, 0, Step.PREVOTE))
    assert [v.timestamp_ms for v in votes_out(effects)] in ([], [NOW])


def test_with_a_commit_timeout_the_next_height_starts_at_round_0_when_it_fires() -> None:
    chain = Chain()
    me = chain.not_proposer()
    d = Driver(chain.machine(me, commit_ms=1000))
    d.start()
    block = chain.block(proposer=chain.proposer(0))
    b = block.block_id()
    d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    d.feed(*(chain.prevote(i, 0, b) for i in _others(chain, me)))
    effects = d.feed(*(chain.precommit(i, 0, b) for i in _others(chain, me)))
    assert d.machine.height == 2 and d.machine.step == Step.NEW_HEIGHT
    (timeout,) = [t for t in of_type(effects, ScheduleTimeout) if t.height == 2]
    assert (timeout.round, timeout.step, timeout.duration_ms) == (0, Step.NEW_HEIGHT, 1000)
    d.feed(TimeoutFired(2, 0, Step.NEW_HEIGHT))
    assert (d.machine.height, d.machine.round, d.machine.step) == (2, 0, Step.PROPOSE)


def test_a_verdict_for_a_block_the_node_does_not_hold_yet_is_not_taken() -> None:
    """An answer accepting block B arrives before the node holds B (late from elsewhere,
    or duplicated): when B comes, the node asks the application again, and its verdict
    (here: refused) is the one that counts, so the node prevotes nil."""
    chain = Chain()
    me = chain.not_proposer()
    block = chain.block(proposer=chain.proposer(0))
    b = block.block_id()
    d = Driver(chain.machine(me), reject=[b])
    d.start()
    assert d.feed(ProposalProcessed(1, b, True)) == []
    effects = d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    assert [e.block for e in of_type(effects, RequestProcessProposal)] == [block]
    assert [(v.kind, v.block_hash) for v in votes_out(effects)] == [(PREVOTE, NIL)]


def test_a_block_delivered_twice_is_put_to_the_application_once() -> None:
    chain = Chain()
    d = Driver(chain.machine(chain.not_proposer()))
    d.start()
    block = chain.block(proposer=chain.proposer(0))
    effects = d.feed(BlockReceived(block), BlockReceived(block))
    assert len(of_type(effects, RequestProcessProposal)) == 1


def test_only_the_first_proposal_of_a_round_counts() -> None:
    """An equivocating proposer sends two proposals for round 0: the node prevotes the
    first, whatever the second says."""
    chain = Chain()
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    first = chain.block((b"a=1",), proposer=chain.proposer(0))
    second = chain.block((b"b=2",), proposer=chain.proposer(0))
    d.feed(BlockReceived(second), ProposalReceived(chain.proposal(first, 0)))
    effects = d.feed(ProposalReceived(chain.proposal(second, 0)))
    assert votes_out(effects) == []
    effects = d.feed(BlockReceived(first))
    assert [(v.kind, v.block_hash) for v in votes_out(effects)] == [(PREVOTE, first.block_id())]


def test_a_proposal_up_to_max_round_skip_rounds_ahead_is_kept() -> None:
    """With max_round_skip 2, at round 0 the proposal of round 2 is kept and that of
    round 3 dropped: at round 2 the node prevotes the kept one, at round 3 it has no
    proposal and waits in propose."""
    chain = Chain()
    me = chain.not_proposer((0, 2, 3))
    d = Driver(chain.machine(me, max_round_skip=2))
    d.start()
    kept = chain.block((b"k=1",), proposer=chain.proposer(2))
    dropped = chain.block((b"d=1",), proposer=chain.proposer(3))
    d.feed(BlockReceived(kept), ProposalReceived(chain.proposal(kept, 2)))
    d.feed(BlockReceived(dropped), ProposalReceived(chain.proposal(dropped, 3)))
    for r in (0, 1):
        d.feed(TimeoutFired(1, r, Step.PROPOSE), TimeoutFired(1, r, Step.PREVOTE))
        effects = d.feed(TimeoutFired(1, r, Step.PRECOMMIT))
    assert d.machine.round == 2
    assert [(v.round, v.block_hash) for v in votes_out(effects)] == [(2, kept.block_id())]
    d.feed(TimeoutFired(1, 2, Step.PREVOTE), TimeoutFired(1, 2, Step.PRECOMMIT))
    assert (d.machine.round, d.machine.step) == (3, Step.PROPOSE)


def test_a_prevote_carrying_an_extension_signature_is_not_counted() -> None:
    """Only a non-nil precommit carries an extension: a prevote with an extension
    signature (but no extension) is refused, so three prevotes with one of them forged
    that way are not a polka."""
    chain = Chain()
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    block = chain.block(proposer=chain.proposer(0))
    b = block.block_id()
    d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    others = _others(chain, me)
    odd = chain.vote(others[1], PREVOTE, 0, b)
    odd = dataclasses.replace(odd, extension_signature=b"\x02" * 64)
    effects = d.feed(chain.prevote(others[0], 0, b), VoteReceived(odd))
    assert not [v for v in votes_out(effects) if v.kind == PRECOMMIT]
    assert not of_type(effects, RequestExtendVote)


def test_a_verification_answer_for_a_precommit_never_asked_about_is_ignored() -> None:
    chain = Chain()
    me = chain.not_proposer()
    machine = chain.machine(me)
    machine.start(NOW)
    other = _others(chain, me)[0]
    vote = chain.vote(other, PRECOMMIT, 0, b"\x0b" * 32)
    assert machine.handle(VoteExtensionVerified(vote, True), NOW) == []
    effects = machine.handle(VoteReceived(vote), NOW)
    assert [e.vote for e in of_type(effects, RequestVerifyVoteExtension)] == [vote]


def test_a_conflicting_precommit_is_evidence_even_when_its_extension_is_refused() -> None:
    """Validator 0 precommits A and then B at (1, 0): the two signatures prove the double
    sign whatever the application thinks of B's extension."""
    chain = Chain()
    me = chain.not_proposer()
    machine = chain.machine(me)
    machine.start(NOW)
    other = _others(chain, me)[0]
    a = chain.vote(other, PRECOMMIT, 0, b"\x0a" * 32)
    b = chain.vote(other, PRECOMMIT, 0, b"\x0b" * 32)
    for request in of_type(machine.handle(VoteReceived(a), NOW), RequestVerifyVoteExtension):
        machine.handle(VoteExtensionVerified(request.vote, True), NOW)
    effects = machine.handle(VoteReceived(b), NOW)
    for request in of_type(effects, RequestVerifyVoteExtension):
        effects += machine.handle(VoteExtensionVerified(request.vote, False), NOW)
    (evidence,) = of_type(effects, BroadcastEvidence)
    assert {evidence.evidence.vote_a, evidence.evidence.vote_b} == {a, b}


def test_the_proposer_of_each_height_follows_the_weighted_round_robin() -> None:
    """Four validators of equal power take turns: the proposers of round 0 at heights 1 to
    4 are four different validators, in the order of the set's priorities (each height
    moves the priorities on by one round)."""
    chain = Chain()
    cluster = Cluster(chain, commit_ms=1)
    cluster.start()
    cluster.run_until_height(4)
    proposers = [cluster.blocks[h].header.proposer for h in range(1, 5)]
    assert len(set(proposers)) == 4
    expected = []
    validators = chain.state.validators
    for _ in range(4):
        expected.append(validators.proposer_for_round(0))
        validators = validators.increment(1)
    assert proposers == expected


def test_the_block_request_at_a_later_height_carries_its_bft_time_and_last_commit() -> None:
    """At height 2 the proposer asks the application for a block with the height's BFT
    time (the weighted median of the last commit's precommit times) and that commit."""
    chain = Chain()
    cluster = Cluster(chain, commit_ms=1)
    cluster.start()
    cluster.run_until_height(2)
    requests = [e for _, e in cluster.effects if isinstance(e, RequestPrepareProposal)]
    (request,) = [r for r in requests if r.height == 2]
    block = cluster.blocks[2]  # what the proposer built: the same time and commit
    assert request.last_commit is not None and request.last_commit == block.last_commit
    assert request.last_commit.height == 1
    assert request.time_ms == block.header.time_ms
    validators = chain.state.validators  # the set never changes here
    assert request.time_ms == weighted_median_time(request.last_commit, validators)
    assert request.time_ms > chain.state.last_block_time_ms


def test_a_refused_precommit_is_reported_as_a_precommit() -> None:
    """Before a restart the node precommitted X at (1, 0); its prevote timeout now asks
    for a nil precommit there: refused, and reported for the precommit step; the
    precommit it signed, for X, is its precommit."""
    chain = Chain()
    me = chain.not_proposer()
    x = b"\x0a" * 32
    unsigned = Vote(PRECOMMIT, 1, 0, x, NOW, chain.keys[me].address, me, b"e", b"\0" * 64, b"")
    signer = _signer_that_signed(chain, me, unsigned)
    d = Driver(ConsensusMachine(config(), chain.state, signer, FakeVerifier()))
    d.start()
    d.feed(TimeoutFired(1, 0, Step.PROPOSE))
    effects = d.feed(TimeoutFired(1, 0, Step.PREVOTE))
    (refused,) = of_type(effects, SigningRefused)
    assert (refused.height, refused.round, refused.step) == (1, 0, Step.PRECOMMIT)
    assert [(v.kind, v.block_hash) for v in votes_out(effects)] == [(PRECOMMIT, x)]
