"""Duplicate-vote evidence, at the edge ``make mutate`` found unguarded: both votes name the
same validator at the same slot of the set."""

from __future__ import annotations

import dataclasses

from appchaind.chain.types import PREVOTE
from appchaind.consensus.evidence import evidence_id, make_evidence, verify_duplicate_vote
from appchaind.consensus.sim.keys import CHAIN_ID, FakeVerifier

from .harness import Chain

A, B = b"\x0a" * 32, b"\x0b" * 32


def test_evidence_whose_votes_name_different_slots_is_refused() -> None:
    """A vote's slot (validator_index) is not signed, so anyone can change it in a real
    double sign. Evidence whose second vote names another slot is refused: otherwise the
    one offence would have another encoding, another evidence id, and could be committed
    (and punished) once per slot."""
    chain = Chain()
    validators = chain.state.validators
    a, b = chain.vote(1, PREVOTE, 0, A), chain.vote(1, PREVOTE, 0, B)
    honest = make_evidence(a, b)
    assert verify_duplicate_vote(honest, validators, CHAIN_ID, FakeVerifier().verify) is None
    moved = make_evidence(a, dataclasses.replace(b, validator_index=2))
    assert evidence_id(moved) != evidence_id(honest)
    assert verify_duplicate_vote(moved, validators, CHAIN_ID, FakeVerifier().verify) is not None
