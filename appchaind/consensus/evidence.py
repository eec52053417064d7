"""Duplicate-vote evidence and BFT time: the checks every validator runs on a proposed block.

Evidence is canonical: ``vote_a.block_hash < vote_b.block_hash`` (nil, b"",
sorts first), so the same offence has one encoding and one hash.
"""

from __future__ import annotations

from typing import Protocol

from appchaind import codec, crypto
from appchaind.consensus.validators import ValidatorSet
from appchaind.types import (
    COMMIT_ABSENT,
    VOTE_KINDS,
    Commit,
    DuplicateVoteEvidence,
    Vote,
)

__all__ = [
    "SignatureCheck",
    "make_evidence",
    "evidence_id",
    "verify_duplicate_vote",
    "weighted_median_time",
]


class SignatureCheck(Protocol):
    """Checks one signature (the machine passes its cached verifier)."""

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
