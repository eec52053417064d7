"""Rules of the consensus machine that a one-line change could break without the other tests
noticing (issue 19): what a proof-of-lock round must hold, what a last commit must hold, the
vote extension's signature, and the exact 2/3 boundary.

Four validators of power 1 unless said otherwise: 2f+1 is 3 votes, f+1 is 2 votes.
"""

from __future__ import annotations

import dataclasses

import pytest

from appchaind.chain import crypto
from appchaind.chain.types import (
    COMMIT_BLOCK,
    COMMIT_NIL,
    PRECOMMIT,
    Block,
    Commit,
    CommitSig,
    Header,
    Proposal,
    Vote,
    commit_hash,
    evidence_hash,
)
from appchaind.consensus.config import Step
from appchaind.consensus.effects import (
    Decide,
    Effect,
    RequestProcessProposal,
    RequestVerifyVoteExtension,
)
from appchaind.consensus.events import BlockReceived, ProposalReceived, VoteReceived
from appchaind.consensus.evidence import weighted_median_time
from appchaind.consensus.machine import NIL
from appchaind.consensus.sim.keys import CHAIN_ID, RawSigner
from appchaind.consensus.state import ChainState

from .harness import NOW, Chain, Cluster, Driver, config, of_type, votes_out

BAD_SIGNATURE = b"\x01" * 64


def _others(chain: Chain, me: int) -> list[int]:
    return [i for i in range(len(chain.keys)) if i != me]


def _receive_proposal(
    chain: Chain, d: Driver, round: int = 0, txs: tuple[bytes, ...] = (b"a=1",), pol_round: int = -1
) -> tuple[Block, list[Effect]]:
    block = chain.block(txs, proposer=chain.proposer(round))
    effects = d.feed(
        BlockReceived(block), ProposalReceived(chain.proposal(block, round, pol_round))
    )
    return block, effects


def _to_round(chain: Chain, d: Driver, me: int, round: int) -> None:
    """Moves the node to ``round`` by f+1 nil precommits from that round (line 55)."""
    helpers = _others(chain, me)[:2]
    d.feed(chain.precommit(helpers[0], round, NIL), chain.precommit(helpers[1], round, NIL))
    assert d.machine.round == round


def _with_bad_extension_signature(vote: Vote) -> Vote:
    """The same precommit, its vote signature intact, its extension signature garbage."""
    return dataclasses.replace(vote, extension_signature=BAD_SIGNATURE)


# ---------------------------------------------------------------------------- rule 1: line 28


@pytest.mark.parametrize(
    "round_1_prevotes",
    [
        pytest.param({0: NIL, 1: NIL, 2: NIL}, id="a-polka-for-nil"),
        pytest.param({0: b"C", 1: b"C", 2: b"C"}, id="a-polka-for-another-value"),
        pytest.param({0: b"B"}, id="one-prevote-for-the-value"),
        pytest.param({0: b"B", 1: NIL, 2: b"C"}, id="any-polka-with-one-prevote-for-the-value"),
    ],
)
def test_proof_of_lock_round_needs_2f1_prevotes_for_the_proposed_value_line_28(
    round_1_prevotes: dict[int, bytes],
) -> None:
    """Line 28: ⟨PROPOSAL, h, r, v, vr⟩ AND 2f+1 ⟨PREVOTE, h, vr, id(v)⟩. A node locked on A
    at round 0 gets B re-proposed at round 2 with vr = 1: it may unlock (line 29) only on a
    polka for B in round 1, not on a polka for nil or for another value, nor on one prevote."""
    chain = Chain()
    me = chain.not_proposer((0, 1, 2))
    d = Driver(chain.machine(me))
    d.start()
    block_a, _ = _receive_proposal(chain, d)
    others = _others(chain, me)
    d.feed(*(chain.prevote(i, 0, block_a.block_id()) for i in others[:2]))
    assert d.machine.locked_round == 0
    _to_round(chain, d, me, 2)
    block_b = chain.block((b"b=2",), proposer=chain.proposer(1))
    b = block_b.block_id()
    c = chain.block((b"c=3",), proposer=chain.proposer(1)).block_id()
    named = {b"B": b, b"C": c, NIL: NIL}
    d.feed(*(chain.prevote(others[i], 1, named[v]) for i, v in round_1_prevotes.items()))
    effects = d.feed(
        BlockReceived(block_b), ProposalReceived(chain.proposal(block_b, 2, pol_round=1))
    )
    # No justification for B yet: the node waits in propose (line 28 has not fired).
    assert votes_out(effects) == []
    assert (d.machine.step, d.machine.locked_round) == (Step.PROPOSE, 0)
    # The polka for B arrives: now line 28 fires and the node prevotes B (line 30). (Those
    # that prevoted something else in round 1 equivocate: each block they voted for counts
    # them, see votes.py.)
    helpers = [others[i] for i in range(3) if round_1_prevotes.get(i) != b"B"]
    effects = d.feed(*(chain.prevote(i, 1, b) for i in helpers))
    assert [(v.round, v.block_hash) for v in votes_out(effects)] == [(2, b)]


def test_lock_needs_2f1_prevotes_for_the_proposal_not_any_polka_line_36() -> None:
    """Line 36: a node locks v (and precommits it) on 2f+1 prevotes for id(v); a polka for
    another block in the round is only line 34's "any polka"."""
    chain = Chain()
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    block, _ = _receive_proposal(chain, d)  # own prevote for A
    a = block.block_id()
    others = _others(chain, me)
    c = b"\x0c" * 32
    effects = d.feed(*(chain.prevote(i, 0, c) for i in others))
    assert not [v for v in votes_out(effects) if v.kind == PRECOMMIT]
    assert (d.machine.locked_round, d.machine.valid_round) == (-1, -1)
    # Two of them equivocate for A: with its own prevote, a polka for A locks it.
    effects = d.feed(*(chain.prevote(i, 0, a) for i in others[:2]))
    assert [(v.kind, v.block_hash) for v in votes_out(effects)] == [(PRECOMMIT, a)]
    assert d.machine.locked_round == 0


# ---------------------------------------------------------------------------- rules 2, 3: last commit


def _height_2(chain: Chain) -> ChainState:
    """The chain state after a perfect network of ``chain``'s validators decided height 1."""
    cluster = Cluster(chain, commit_ms=1)  # stops after the decision, before height 2
    cluster.start()
    state = cluster.drivers[0].machine.state
    assert state.height == 2 and state.last_commit is not None
    return state


def _slot(chain: Chain, index: int, state: ChainState, flag: int) -> CommitSig:
    """Validator ``index``'s correctly signed precommit of height 1, for the block or nil."""
    assert state.last_commit is not None
    block_hash = state.last_block_id if flag == COMMIT_BLOCK else NIL
    vote = chain.vote(index, PRECOMMIT, state.last_commit.round, block_hash, height=1)
    return CommitSig(
        flag, vote.validator, vote.timestamp_ms, vote.signature, vote.extension,
        vote.extension_signature,
    )  # fmt: skip


def _commit(chain: Chain, state: ChainState, flags: tuple[int, ...]) -> Commit:
    """A last commit for height 1's block whose slot i is validator i's precommit, for the
    block or nil as ``flags[i]`` says."""
    assert state.last_commit is not None
    sigs = tuple(_slot(chain, i, state, flag) for i, flag in enumerate(flags))
    return Commit(1, state.last_commit.round, state.last_block_id, sigs)


def _receive_block_at_2(
    chain: Chain, state: ChainState, commit: Commit
) -> tuple[list[Effect], bytes]:
    """A validator other than the proposer receives height 2's round-0 proposal, a block
    carrying ``commit`` as its last commit (otherwise well formed). Returns the effects of
    the block and proposal, and the block's hash."""
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
        evidence_hash=evidence_hash(()),
    )
    block = Block(header, txs, (), commit)
    unsigned = Proposal(2, 0, -1, block.block_id(), NOW, header.proposer, b"\0" * 64)
    proposal = RawSigner(chain.keys[proposer]).sign_proposal(unsigned)
    d = Driver(chain.machine(me, state=state))
    d.start()
    return d.feed(BlockReceived(block), ProposalReceived(proposal)), block.block_id()


def _accepted(effects: list[Effect], block_hash: bytes) -> bool:
    """Whether the node found the block well formed: it asked the application and prevoted it
    (else it judged it invalid itself and prevoted nil)."""
    prevotes = [v.block_hash for v in votes_out(effects)]
    if of_type(effects, RequestProcessProposal):
        assert prevotes == [block_hash]
        return True
    assert prevotes == [NIL]
    return False


def test_last_commit_needs_2f1_precommits_for_the_block_nil_ones_do_not_count() -> None:
    """The block's last commit: two precommits for the previous block and two nil ones, all
    correctly signed. 4 of 4 signed something, but only 2 of 4 signed the block: not +2/3."""
    chain = Chain()
    state = _height_2(chain)
    two_for_the_block = _commit(chain, state, (COMMIT_BLOCK, COMMIT_BLOCK, COMMIT_NIL, COMMIT_NIL))
    assert not _accepted(*_receive_block_at_2(chain, state, two_for_the_block))
    three_for_the_block = _commit(
        chain, state, (COMMIT_BLOCK, COMMIT_BLOCK, COMMIT_BLOCK, COMMIT_NIL)
    )
    assert _accepted(*_receive_block_at_2(chain, state, three_for_the_block))


def test_last_commit_of_exactly_two_thirds_is_not_enough() -> None:
    """Powers 1, 1, 1: a last commit of two precommits for the previous block and one nil
    one holds exactly 2/3 of the power for the block: the block is invalid; all three make
    it +2/3."""
    chain = Chain((1, 1, 1))
    state = _height_2(chain)
    exactly_two_thirds = _commit(chain, state, (COMMIT_BLOCK, COMMIT_BLOCK, COMMIT_NIL))
    assert not _accepted(*_receive_block_at_2(chain, state, exactly_two_thirds))
    all_three = _commit(chain, state, (COMMIT_BLOCK, COMMIT_BLOCK, COMMIT_BLOCK))
    assert _accepted(*_receive_block_at_2(chain, state, all_three))


def test_last_commit_with_a_bad_vote_extension_signature_is_rejected() -> None:
    """The extended commit carries each validator's oracle prices: a slot whose extension
    signature does not verify makes the block invalid, even when the rest is +2/3."""
    chain = Chain()
    state = _height_2(chain)
    assert state.last_commit is not None
    sigs = [_slot(chain, i, state, COMMIT_BLOCK) for i in range(4)]
    good = Commit(1, state.last_commit.round, state.last_block_id, tuple(sigs))
    assert _accepted(*_receive_block_at_2(chain, state, good))
    sigs[3] = dataclasses.replace(sigs[3], extension_signature=BAD_SIGNATURE)
    forged = dataclasses.replace(good, signatures=tuple(sigs))
    assert not _accepted(*_receive_block_at_2(chain, state, forged))


# ---------------------------------------------------------------------------- rule 3: extensions


def test_precommit_with_a_bad_vote_extension_signature_is_ignored() -> None:
    """A precommit whose vote signature verifies but whose extension signature does not is
    dropped before the application is asked about the extension, and is not counted: three
    such precommits for A do not decide A; the same three correctly signed do."""
    chain = Chain()
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    block, _ = _receive_proposal(chain, d)
    a = block.block_id()
    others = _others(chain, me)
    good = [chain.vote(i, PRECOMMIT, 0, a) for i in others]
    forged = [_with_bad_extension_signature(v) for v in good]
    effects = d.feed(*(VoteReceived(v) for v in forged))
    assert not of_type(effects, RequestVerifyVoteExtension)
    assert not of_type(effects, Decide)
    assert d.machine.statistics().votes_counted == 1  # only its own prevote
    assert of_type(d.feed(*(VoteReceived(v) for v in good)), Decide)


# ---------------------------------------------------------------------------- rule 4: exactly 2/3


def test_exactly_two_thirds_is_not_more_than_two_thirds() -> None:
    cfg = config()
    assert not cfg.two_thirds(2, 3)
    assert cfg.two_thirds(3, 3)
    assert not cfg.two_thirds(20, 30) and cfg.two_thirds(21, 30)
    assert not cfg.one_third(1, 3)
    assert not cfg.one_third(10, 30) and cfg.one_third(11, 30)


def test_two_of_three_prevotes_is_not_a_polka_lines_36_44() -> None:
    """Powers 1, 1, 1: two prevotes for A (its own and one other) are exactly 2/3, so the
    node neither locks nor precommits; the third makes it +2/3."""
    chain = Chain((1, 1, 1))
    me = chain.not_proposer((0,))
    d = Driver(chain.machine(me))
    d.start()
    block, _ = _receive_proposal(chain, d)
    a = block.block_id()
    x, y = _others(chain, me)
    effects = d.feed(chain.prevote(x, 0, a))
    assert not [v for v in votes_out(effects) if v.kind == PRECOMMIT]
    assert (d.machine.locked_round, d.machine.step) == (-1, Step.PREVOTE)
    effects = d.feed(chain.prevote(y, 0, a))
    assert [(v.kind, v.block_hash) for v in votes_out(effects)] == [(PRECOMMIT, a)]


def test_two_of_three_precommits_do_not_decide_line_49() -> None:
    chain = Chain((1, 1, 1))
    me = chain.not_proposer((0,))
    d = Driver(chain.machine(me))
    d.start()
    block, _ = _receive_proposal(chain, d)
    a = block.block_id()
    x, y = _others(chain, me)
    assert not of_type(d.feed(chain.precommit(x, 0, a), chain.precommit(y, 0, a)), Decide)
    assert d.machine.decision is None
    # A polka makes the node precommit A too: 3 of 3 decide.
    assert of_type(d.feed(chain.prevote(x, 0, a), chain.prevote(y, 0, a)), Decide)


def test_one_of_three_from_a_higher_round_is_not_f_plus_1_line_55() -> None:
    chain = Chain((1, 1, 1))
    me = chain.not_proposer((0,))
    d = Driver(chain.machine(me))
    d.start()
    x, y = _others(chain, me)
    d.feed(chain.prevote(x, 4, NIL))
    assert d.machine.round == 0  # exactly 1/3
    d.feed(chain.prevote(y, 4, NIL))
    assert d.machine.round == 4
