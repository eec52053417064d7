"""Commits, BFT time, evidence and round skips at their edges, found unguarded by ``make
mutate`` (docs/mutation-report.md): a decision's commit records nil precommits (they count
in the next block's time and the next height checks their signatures), the weighted median
halves the power with integer division (CometBFT's MedianTime), evidence already committed
is not taken up again, and the f+1 of line 55 counts each validator once.
"""

from __future__ import annotations

from appchaind.chain.types import (
    COMMIT_ABSENT,
    COMMIT_BLOCK,
    COMMIT_NIL,
    PRECOMMIT,
    Commit,
    CommitSig,
)
from appchaind.consensus.blocks import check_commit, make_commit
from appchaind.consensus.config import Step
from appchaind.consensus.events import EvidenceReceived
from appchaind.consensus.evidence import evidence_id, weighted_median_time
from appchaind.consensus.machine import NIL
from appchaind.consensus.state import ChainState
from appchaind.consensus.votes import VoteSet

from .harness import Chain, Driver, config
from .test_mutants import _equivocation

B = b"\x0b" * 32


def test_a_decisions_commit_records_each_precommit_nil_ones_included() -> None:
    """Of seven validators, 0-4 precommitted B, 5 nil and 6 said nothing: five
    COMMIT_BLOCK slots, one COMMIT_NIL slot carrying validator 5's timestamp and signature,
    one absent slot; the next height accepts the commit."""
    chain = Chain((1,) * 7)
    validators = chain.state.validators
    precommits = VoteSet(PRECOMMIT, 0, len(validators))
    votes = {i: chain.vote(i, PRECOMMIT, 0, B if i < 5 else NIL) for i in range(6)}
    for i, vote in votes.items():
        precommits.add(i, vote, 1)
    commit = make_commit(1, 0, B, precommits, validators)
    flags = [s.flag for s in commit.signatures]
    assert flags == [COMMIT_BLOCK] * 5 + [COMMIT_NIL, COMMIT_ABSENT]
    nil = commit.signatures[5]
    assert nil == CommitSig(
        COMMIT_NIL, votes[5].validator, votes[5].timestamp_ms, votes[5].signature, b"", b""
    )
    state = ChainState(
        chain_id=chain.state.chain_id,
        height=2,
        validators=validators,
        next_validators=validators,
        last_validators=validators,
        last_block_id=B,
        last_block_time_ms=chain.state.last_block_time_ms,
        last_commit=commit,
        app_hash=b"",
        validator_history=((1, validators), (2, validators)),
        committed_evidence=(),
    )

    signed = {v.validator: v.signature for v in votes.values()}

    def vote_ok(vote, public_key):  # type: ignore[no-untyped-def]
        return vote.signature == signed[vote.validator]

    assert check_commit(commit, validators, state, config(), vote_ok) is None


def test_the_weighted_median_halves_the_present_power_with_integer_division() -> None:
    """Three validators of power 1 at 10, 20 and 30 ms: half of 3 is 1 (integer division),
    reached by the first timestamp."""
    chain = Chain((1, 1, 1))
    validators = chain.state.validators
    sigs = tuple(
        CommitSig(COMMIT_BLOCK, a, t, b"\1" * 64, b"", b"")
        for a, t in zip(validators.addresses, (10, 20, 30), strict=True)
    )
    assert weighted_median_time(Commit(1, 0, B, sigs), validators) == 10


def test_evidence_already_committed_is_not_taken_up_again() -> None:
    """Evidence a decided block carried (in the state's committed evidence) that a peer
    sends again is not pending: no later block may carry it twice."""
    chain = Chain()
    evidence = _equivocation(chain, height=1)
    s = chain.state
    state = ChainState(
        chain_id=s.chain_id,
        height=s.height,
        validators=s.validators,
        next_validators=s.next_validators,
        last_validators=s.last_validators,
        last_block_id=s.last_block_id,
        last_block_time_ms=s.last_block_time_ms,
        last_commit=s.last_commit,
        app_hash=s.app_hash,
        validator_history=s.validator_history,
        committed_evidence=((1, evidence_id(evidence)),),
    )
    d = Driver(chain.machine(0, state=state))
    d.start()
    d.feed(EvidenceReceived(evidence))
    assert d.machine.pending_evidence() == ()


def test_a_round_skip_needs_f_plus_1_distinct_validators_not_two_votes_of_one() -> None:
    """Line 55: one validator's prevote and precommit of round 2 are one validator (power
    1 of 4), not f+1: the node stays at round 0; a second validator's vote makes f+1."""
    chain = Chain()
    me = chain.not_proposer()
    d = Driver(chain.machine(me))
    d.start()
    a, b = [i for i in range(4) if i != me][:2]
    d.feed(chain.prevote(a, 2, NIL), chain.precommit(a, 2, NIL))
    assert (d.machine.round, d.machine.step) == (0, Step.PROPOSE)
    d.feed(chain.prevote(b, 2, NIL))
    assert d.machine.round == 2
