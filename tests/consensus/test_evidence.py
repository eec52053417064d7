"""Duplicate-vote evidence: what every validator checks before accepting it in a block."""

from __future__ import annotations

import dataclasses

from appchaind.chain.types import PRECOMMIT, PREVOTE
from appchaind.consensus.evidence import evidence_id, make_evidence, verify_duplicate_vote
from appchaind.consensus.sim.keys import CHAIN_ID, FakeVerifier

from .harness import Chain

A, B = b"\x0a" * 32, b"\x0b" * 32


def _check(chain: Chain, a, b) -> str | None:  # type: ignore[no-untyped-def]
    return verify_duplicate_vote(
        make_evidence(a, b), chain.state.validators, CHAIN_ID, FakeVerifier().verify
    )


def test_valid_evidence_is_canonical_and_verifies() -> None:
    chain = Chain()
    a, b = chain.vote(1, PREVOTE, 0, A), chain.vote(1, PREVOTE, 0, b"")
    assert make_evidence(a, b) == make_evidence(b, a)  # nil sorts first
    assert evidence_id(make_evidence(a, b)) == evidence_id(make_evidence(b, a))
    assert _check(chain, a, b) is None


def test_evidence_needs_the_same_height_round_kind_and_validator() -> None:
    chain = Chain()
    a = chain.vote(1, PREVOTE, 0, A)
    assert _check(chain, a, chain.vote(1, PREVOTE, 1, B)) is not None
    assert _check(chain, a, chain.vote(1, PRECOMMIT, 0, B)) is not None
    assert _check(chain, a, chain.vote(2, PREVOTE, 0, B)) is not None
    assert _check(chain, a, chain.vote(1, PREVOTE, 0, A)) is not None  # same block: no offence


def test_evidence_needs_valid_signatures_and_a_member_of_the_set() -> None:
    chain = Chain()
    a, b = chain.vote(1, PREVOTE, 0, A), chain.vote(1, PREVOTE, 0, B)
    assert _check(chain, a, dataclasses.replace(b, signature=b"\x01" * 64)) is not None
    other = Chain((1, 1, 1, 1, 1))  # a different set: the vote's slot and key do not match
    stranger_a, stranger_b = other.vote(4, PREVOTE, 0, A), other.vote(4, PREVOTE, 0, B)
    assert _check(chain, stranger_a, stranger_b) is not None
