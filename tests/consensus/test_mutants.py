"""Rules of the consensus machine that mutation testing (``make mutate``) found unguarded:
what evidence a node keeps (not too old, once) and a block may carry (of earlier heights),
that a last commit is for the previous block at the previous height, that messages for the
next height are kept until the node gets there, and what ``statistics()`` reports.

Four validators of power 1: 2f+1 is 3 votes.
"""

from __future__ import annotations

import dataclasses

from appchaind.chain import crypto
from appchaind.chain.types import (
    COMMIT_ABSENT,
    COMMIT_BLOCK,
    PRECOMMIT,
    PREVOTE,
    Block,
    Commit,
    CommitSig,
    DuplicateVoteEvidence,
    Header,
    Proposal,
    commit_hash,
    evidence_hash,
)
from appchaind.consensus.config import Step
from appchaind.consensus.effects import BroadcastProposal, BroadcastVote, RequestProcessProposal
from appchaind.consensus.events import (
    BlockReceived,
    EvidenceReceived,
    ProposalReceived,
    TimeoutFired,
    VoteReceived,
)
from appchaind.consensus.evidence import make_evidence, weighted_median_time
from appchaind.consensus.machine import NIL
from appchaind.consensus.sim.keys import CHAIN_ID, RawSigner
from appchaind.consensus.state import ChainState

from .harness import NOW, Chain, Cluster, Driver, of_type, votes_out

A, B = b"\x0a" * 32, b"\x0b" * 32


def _equivocation(chain: Chain, height: int, index: int = 1):  # type: ignore[no-untyped-def]
    """Validator ``index`` prevoted two blocks in round 0 of ``height``."""
    return make_evidence(
        chain.vote(index, PREVOTE, 0, A, height=height),
        chain.vote(index, PREVOTE, 0, B, height=height),
    )


def _height_2(chain: Chain, **overrides: int) -> ChainState:
    """The chain after a perfect network of ``chain``'s validators decided height 1."""
    cluster = Cluster(chain, commit_ms=1, **overrides)  # stops before round 0 of height 2
    cluster.start()
    state = cluster.drivers[0].machine.state
    assert state.height == 2 and state.last_commit is not None
    return state


def test_received_evidence_is_kept_once_and_counted() -> None:
    chain = Chain()
    d = Driver(chain.machine(0))
    d.start()
    evidence = _equivocation(chain, height=1)
    d.feed(EvidenceReceived(evidence), EvidenceReceived(evidence))
    assert d.machine.pending_evidence() == (evidence,)
    assert d.machine.statistics().pending_evidence == 1


def test_a_block_may_carry_evidence_of_earlier_heights_only() -> None:
    """Evidence of the block's own height is from the future for the block (received
    evidence of the current height is kept: it goes into a later block)."""
    chain = Chain()
    evidence = _equivocation(chain, height=1)
    good = chain.block(proposer=chain.proposer(0))
    block = dataclasses.replace(
        good,
        header=dataclasses.replace(good.header, evidence_hash=evidence_hash((evidence,))),
        evidence=(evidence,),
    )
    d = Driver(chain.machine(chain.not_proposer()))
    d.start()
    effects = d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
    assert not of_type(effects, RequestProcessProposal)
    assert [v.block_hash for v in votes_out(effects)] == [NIL]
    d.feed(EvidenceReceived(evidence))
    assert d.machine.pending_evidence() == (evidence,)


def test_evidence_exactly_evidence_max_age_old_is_too_old() -> None:
    """Evidence of height h is accepted while h + evidence_max_age > the node's height."""
    chain = Chain()
    state = _height_2(chain)
    fresh = Driver(chain.machine(0, state=state, evidence_max_age=2))
    fresh.feed(EvidenceReceived(_equivocation(chain, height=1)))
    assert len(fresh.machine.pending_evidence()) == 1  # 1 + 2 > 2
    stale = Driver(chain.machine(0, state=state, evidence_max_age=1))
    stale.feed(EvidenceReceived(_equivocation(chain, height=1)))
    assert stale.machine.pending_evidence() == ()  # 1 + 1 = 2: too old


def _commit(chain: Chain, state: ChainState, height: int, block_hash: bytes) -> Commit:
    """Every validator's correctly signed precommit for ``block_hash`` at ``height`` (in the
    round that decided height 1), as a commit of that height and block."""
    assert state.last_commit is not None
    round = state.last_commit.round
    sigs = []
    for i in range(len(chain.keys)):
        vote = chain.vote(i, PRECOMMIT, round, block_hash, height=height)
        sigs.append(
            CommitSig(
                COMMIT_BLOCK,
                vote.validator,
                vote.timestamp_ms,
                vote.signature,
                vote.extension,
                vote.extension_signature,
            )  # fmt: skip
        )
    return Commit(height, round, block_hash, tuple(sigs))


def _well_formed(
    chain: Chain,
    state: ChainState,
    commit: Commit,
    evidence: tuple[DuplicateVoteEvidence, ...] = (),
) -> bool:
    """Whether a non-proposer at height 2 finds round 0's proposal well formed (asks the
    application and prevotes it) when its block carries ``commit`` as its last commit and
    ``evidence``, the header agreeing with them (time, hashes)."""
    assert state.last_validators is not None
    proposer = chain.proposer(0, state)
    me = next(i for i in range(len(chain.keys)) if i != proposer)
    txs = (b"h2=1",)
    header = Header(
        chain_id=CHAIN_ID,
        height=2,
        time_ms=weighted_median_time(commit, state.last_validators),
        last_block_id=state.last_block_id,
        last_commit_hash=commit_hash(commit),
        data_hash=crypto.merkle_root(list(txs)),
        validators_hash=state.validators.hash(),
        next_validators_hash=state.next_validators.hash(),
        app_hash=state.app_hash,
        proposer=chain.keys[proposer].address,
        evidence_hash=evidence_hash(evidence),
    )
    block = Block(header, txs, evidence, commit)
    unsigned = Proposal(2, 0, -1, block.block_id(), NOW, header.proposer, b"\0" * 64)
    proposal = RawSigner(chain.keys[proposer]).sign_proposal(unsigned)
    d = Driver(chain.machine(me, state=state))
    d.start()
    effects = d.feed(BlockReceived(block), ProposalReceived(proposal))
    prevotes = [v.block_hash for v in votes_out(effects)]
    if of_type(effects, RequestProcessProposal):
        assert prevotes == [block.block_id()]
        return True
    assert prevotes == [NIL]
    return False


def test_a_last_commit_must_be_for_the_previous_block_at_the_previous_height() -> None:
    """Every validator signed each of these commits correctly; only the first is for the
    block decided at height 1 and signed at height 1."""
    chain = Chain()
    state = _height_2(chain)
    assert _well_formed(chain, state, _commit(chain, state, 1, state.last_block_id))
    assert not _well_formed(chain, state, _commit(chain, state, 1, B))  # another block
    assert not _well_formed(chain, state, _commit(chain, state, 2, state.last_block_id))


def test_statistics_report_the_machine_as_it_is() -> None:
    chain = Chain()
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    d.feed(chain.prevote((me + 1) % 4, 0, NIL), chain.prevote((me + 2) % 4, 0, NIL))
    stats = d.machine.statistics()
    assert (stats.height, stats.round, stats.step) == (1, 0, Step.PROPOSE)
    assert (stats.locked_round, stats.valid_round) == (-1, -1)
    assert stats.votes_counted == 2 and stats.signatures_verified == 2
    assert stats.pending_evidence == 0


def test_messages_for_the_next_height_are_kept_until_the_node_gets_there() -> None:
    """A node still deciding height 1 receives height 2's proposal, block and two prevotes;
    once it has decided height 1 and starts height 2, it prevotes that block and, with the
    two prevotes kept, precommits it, without being sent any of them again."""
    chain = Chain()
    cluster = Cluster(chain, commit_ms=1)  # decides height 1, then waits to start height 2
    cluster.start()
    state = cluster.drivers[0].machine.state
    proposer = chain.proposer(0, state)
    me = next(i for i in range(len(chain.keys)) if i not in (proposer, chain.proposer(0)))
    height_2 = cluster.drivers[proposer].feed(TimeoutFired(2, 0, Step.NEW_HEIGHT))
    (proposed,) = of_type(height_2, BroadcastProposal)
    third = next(i for i in range(len(chain.keys)) if i not in (proposer, me))
    cluster.drivers[third].feed(TimeoutFired(2, 0, Step.NEW_HEIGHT))
    prevotes = votes_out(height_2) + votes_out(
        cluster.drivers[third].feed(
            BlockReceived(proposed.block), ProposalReceived(proposed.proposal)
        )
    )
    assert [(v.height, v.kind) for v in prevotes] == [(2, PREVOTE)] * 2
    height_1 = [
        e
        for i, e in cluster.effects
        if i != me and isinstance(e, BroadcastProposal | BroadcastVote)
        and (e.proposal.height if isinstance(e, BroadcastProposal) else e.vote.height) == 1
    ]  # fmt: skip
    d = Driver(chain.machine(me))  # commit_ms 0: height 2 starts as soon as 1 is decided
    d.start()
    d.feed(BlockReceived(proposed.block), ProposalReceived(proposed.proposal))  # early
    d.feed(*(VoteReceived(v) for v in prevotes))  # early too
    effects = []
    for effect in height_1:
        if isinstance(effect, BroadcastProposal):
            effects += d.feed(BlockReceived(effect.block), ProposalReceived(effect.proposal))
        else:
            effects += d.feed(VoteReceived(effect.vote))
    assert d.machine.height == 2
    block_hash = proposed.block.block_id()
    mine_at_2 = [(v.kind, v.block_hash) for v in votes_out(effects) if v.height == 2]
    assert mine_at_2 == [(PREVOTE, block_hash), (PRECOMMIT, block_hash)]  # with the two kept


def test_a_block_carries_each_piece_of_evidence_once_and_only_if_it_verifies() -> None:
    chain = Chain()
    state = _height_2(chain)
    commit = _commit(chain, state, 1, state.last_block_id)
    evidence = _equivocation(chain, height=1)
    forged = dataclasses.replace(
        evidence, vote_b=dataclasses.replace(evidence.vote_b, signature=b"\x01" * 64)
    )
    assert _well_formed(chain, state, commit, (evidence,))
    assert not _well_formed(chain, state, commit, (evidence, evidence))
    assert not _well_formed(chain, state, commit, (forged,))


def test_an_absent_last_commit_slot_carries_nothing() -> None:
    """Three signed slots are +2/3 on their own; the fourth, absent, may not carry a
    signature, an extension, an extension signature or a timestamp."""
    chain = Chain()
    state = _height_2(chain)
    commit = _commit(chain, state, 1, state.last_block_id)
    absent = CommitSig(COMMIT_ABSENT, commit.signatures[3].validator, 0, b"", b"", b"")
    assert _well_formed(chain, state, dataclasses.replace(
        commit, signatures=commit.signatures[:3] + (absent,)
    ))  # fmt: skip
    for carried in (
        {"signature": b"\x01" * 64}, {"extension": b"x"}, {"extension_signature": b"\x01"},
        {"timestamp_ms": 1},
    ):  # fmt: skip
        slot = dataclasses.replace(absent, **carried)
        signatures = commit.signatures[:3] + (slot,)
        assert not _well_formed(chain, state, dataclasses.replace(commit, signatures=signatures))


def test_votes_of_an_unknown_kind_slot_or_too_far_a_round_are_dropped() -> None:
    chain = Chain()
    me = chain.not_proposer()
    d = Driver(chain.machine(me, max_round_skip=2))
    d.start()
    other = (me + 1) % 4
    vote = chain.vote(other, PREVOTE, 0, A)
    for dropped in (
        dataclasses.replace(vote, kind=3),
        dataclasses.replace(vote, validator_index=4),  # one past the last slot
        chain.vote(other, PREVOTE, 3, A),  # round 0 + max_round_skip 2 < 3
    ):
        d.feed(VoteReceived(dropped))
    assert d.machine.statistics().votes_counted == 0
    d.feed(VoteReceived(chain.vote(other, PREVOTE, 2, A)))  # exactly max_round_skip ahead
    assert d.machine.statistics().votes_counted == 1


def test_a_proposal_needs_a_pol_round_from_minus_one_to_below_its_round() -> None:
    chain = Chain()
    me = chain.not_proposer()
    block = chain.block(proposer=chain.proposer(1))
    for pol_round, kept in ((-2, False), (1, False), (0, True), (-1, True)):
        d = Driver(chain.machine(me))
        d.start()
        proposal = chain.proposal(block, 1, pol_round=pol_round)
        d.feed(BlockReceived(block), ProposalReceived(proposal))
        helpers = [i for i in range(4) if i != me][:2]
        d.feed(*(chain.precommit(i, 1, NIL) for i in helpers))  # f+1 of round 1: go there
        assert d.machine.round == 1
        assert (proposal in d.machine.gossip()) == kept, pol_round


def test_a_block_may_hold_exactly_max_block_txs() -> None:
    chain = Chain()
    me = chain.not_proposer()
    for txs, valid in (((b"a=1",), True), ((b"a=1", b"b=2"), False)):
        d = Driver(chain.machine(me, max_block_txs=1))
        d.start()
        block = chain.block(txs, proposer=chain.proposer(0))
        effects = d.feed(BlockReceived(block), ProposalReceived(chain.proposal(block, 0)))
        assert bool(of_type(effects, RequestProcessProposal)) == valid
