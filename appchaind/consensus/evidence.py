"""Duplicate-vote evidence and BFT time: the checks every validator runs on a proposed block,
and the pool of verified evidence waiting to be committed (:class:`EvidencePool`).

Evidence is canonical: ``vote_a.block_hash < vote_b.block_hash`` (nil, b"",
sorts first), so the same offence has one encoding and one hash.
"""

from __future__ import annotations

from typing import Protocol

from appchaind.chain import codec, crypto
from appchaind.chain.types import (
    COMMIT_ABSENT,
    MAX_EVIDENCE,
    VOTE_KINDS,
    Commit,
    DuplicateVoteEvidence,
    Vote,
)
from appchaind.consensus.state import ChainState
from appchaind.consensus.validators import ValidatorSet

__all__ = [
    "EvidencePool",
    "SignatureCheck",
    "make_evidence",
    "evidence_id",
    "verify_duplicate_vote",
    "weighted_median_time",
]


class SignatureCheck(Protocol):
    """Checks one signature (the machine passes its verifier's, the node's one cache)."""

    def __call__(self, public_key: bytes, message: bytes, signature: bytes) -> bool: ...


def make_evidence(vote_1: Vote, vote_2: Vote) -> DuplicateVoteEvidence:
    """Evidence of two conflicting votes, in canonical order."""
    if vote_2.block_hash < vote_1.block_hash:
        vote_1, vote_2 = vote_2, vote_1
    return DuplicateVoteEvidence(vote_1, vote_2)


def evidence_id(evidence: DuplicateVoteEvidence) -> bytes:
    """SHA-256 of the canonical evidence (its identity in pools and in committed-evidence lists)."""
    return crypto.sha256(codec.encode(evidence))


def verify_duplicate_vote(
    evidence: DuplicateVoteEvidence,
    validators: ValidatorSet,
    chain_id: str,
    check: SignatureCheck,
) -> str | None:
    """None when the evidence is valid against the set of its height, else the reason.

    Valid means: same validator, height, round and kind; different block hashes
    in canonical order; the validator is in ``validators`` at the slot the votes
    name; both vote signatures verify.
    """
    a, b = evidence.vote_a, evidence.vote_b
    if a.kind not in VOTE_KINDS or a.kind != b.kind:
        return "the votes are of different kinds"
    if a.height != b.height or a.round != b.round:
        return "the votes are for different heights or rounds"
    if a.validator != b.validator or a.validator_index != b.validator_index:
        return "the votes are from different validators"
    if not a.block_hash < b.block_hash:
        return "the votes are for the same block or not in canonical order"
    index = validators.index_of(a.validator)
    if index < 0 or index != a.validator_index:
        return "the validator was not in the set at that height"
    public_key = validators.validators[index].public_key
    for vote in (a, b):
        if not check(public_key, vote.sign_bytes(chain_id), vote.signature):
            return "a vote signature does not verify"
    return None


def weighted_median_time(commit: Commit, validators: ValidatorSet) -> int:
    """BFT time: the power-weighted median of the commit's precommit timestamps (ms).

    CometBFT's MedianTime: absent slots are skipped; timestamps sorted
    ascending; the median is the first whose cumulative weight reaches half
    of the present power (integer division). With less than 1/3 of the power
    faulty, the result lies between timestamps of correct validators.
    """
    weighted = sorted(
        (sig.timestamp_ms, validators.validators[i].power)
        for i, sig in enumerate(commit.signatures)
        if sig.flag != COMMIT_ABSENT
    )
    median = sum(w for _, w in weighted) // 2
    for time_ms, weight in weighted:
        if median <= weight:
            return time_ms
        median -= weight
    return weighted[-1][0] if weighted else 0


class EvidencePool:
    """Verified duplicate-vote evidence not yet committed, oldest first: what this node saw
    itself (two votes of one validator for one step) or received, for gossip and for the
    blocks it proposes. Evidence is kept while it is fresh: its height plus
    ``max_age`` is above the chain's height."""

    def __init__(self, chain_id: str, max_age: int, check: SignatureCheck) -> None:
        self.chain_id = chain_id
        self.max_age = max_age
        self._check = check
        self._pending: dict[bytes, DuplicateVoteEvidence] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def pending(self) -> tuple[DuplicateVoteEvidence, ...]:
        return tuple(self._pending.values())

    def for_block(self, height: int) -> tuple[DuplicateVoteEvidence, ...]:
        """What a block at ``height`` carries: evidence of earlier heights, at most
        ``MAX_EVIDENCE``."""
        return tuple(ev for ev in self._pending.values() if ev.vote_a.height < height)[
            :MAX_EVIDENCE
        ]

    def _known(self, key: bytes, state: ChainState) -> bool:
        return key in self._pending or any(key == e for _, e in state.committed_evidence)

    def record(self, vote_1: Vote, vote_2: Vote, state: ChainState) -> DuplicateVoteEvidence | None:
        """Two conflicting votes this node checked itself: the new evidence (to broadcast),
        or None when it is known already."""
        evidence = make_evidence(vote_1, vote_2)
        key = evidence_id(evidence)
        if self._known(key, state):
            return None
        self._pending[key] = evidence
        return evidence

    def receive(self, evidence: DuplicateVoteEvidence, state: ChainState) -> None:
        """Evidence from a peer: kept if new and valid before the next height."""
        key = evidence_id(evidence)
        if self._known(key, state):
            return
        if self.problem(evidence, state.height + 1, state) is None:
            self._pending[key] = evidence

    def problem(
        self, evidence: DuplicateVoteEvidence, before_height: int, state: ChainState
    ) -> str | None:
        """Why ``evidence`` is not valid in a block below ``before_height``, or None."""
        height = evidence.vote_a.height
        if height >= before_height:
            return "evidence from the future"
        if not self.fresh(evidence, state):
            return "evidence too old"
        validators = state.validators_at(height)
        if validators is None:
            return "no validator set known for that height"
        return verify_duplicate_vote(evidence, validators, self.chain_id, self._check)

    def fresh(self, evidence: DuplicateVoteEvidence, state: ChainState) -> bool:
        return evidence.vote_a.height + self.max_age > state.height

    def new_height(self, state: ChainState) -> None:
        """At a new height: drops what is committed (``state.committed_evidence``) or stale."""
        committed = {e for _, e in state.committed_evidence}
        for key in [
            k for k, ev in self._pending.items() if k in committed or not self.fresh(ev, state)
        ]:
            del self._pending[key]
