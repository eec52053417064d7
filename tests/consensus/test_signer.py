"""The double-sign guard: persisted before release, never two different messages per step."""

from __future__ import annotations

import dataclasses

import pytest

from appchaind.chain import crypto
from appchaind.chain.types import PRECOMMIT, PREVOTE, Proposal, Vote
from appchaind.consensus.config import Step
from appchaind.consensus.signer import (
    DoubleSignRefused,
    Ed25519Verifier,
    GuardedSigner,
    LastSignState,
    MemorySignStateStore,
)

CHAIN = "guard-chain"
KEY = crypto.PrivateKey(b"\x05" * 32)


def _vote(kind: int, height: int, round: int, block_hash: bytes, ts: int = 1) -> Vote:
    ext = b"x" if kind == PRECOMMIT and block_hash else b""
    return Vote(kind, height, round, block_hash, ts, KEY.address, 0, ext, b"\0" * 64, b"")


class CheckingStore(MemorySignStateStore):
    """Records what was durable at each save, to check the order: save, then release."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[LastSignState] = []

    def save(self, state: LastSignState) -> None:
        super().save(state)
        self.history.append(state)


def test_signatures_verify_with_ed25519() -> None:
    signer = GuardedSigner(KEY, CHAIN, MemorySignStateStore())
    vote = signer.sign_vote(_vote(PRECOMMIT, 1, 0, b"\1" * 32))
    assert vote.verify_signature(CHAIN, KEY.public_key)
    verifier = Ed25519Verifier()
    assert verifier.verify(KEY.public_key, vote.sign_bytes(CHAIN), vote.signature)
    assert not verifier.verify(KEY.public_key, vote.sign_bytes("other"), vote.signature)


def test_state_is_saved_before_the_signature_is_returned() -> None:
    store = CheckingStore()
    signer = GuardedSigner(KEY, CHAIN, store)
    vote = signer.sign_vote(_vote(PREVOTE, 5, 2, b"\1" * 32))
    assert store.history[-1].signed == vote
    assert store.history[-1].hrs() == (5, 2, int(Step.PREVOTE))


def test_same_step_same_block_returns_the_stored_vote() -> None:
    signer = GuardedSigner(KEY, CHAIN, MemorySignStateStore())
    first = signer.sign_vote(_vote(PREVOTE, 5, 2, b"\1" * 32, ts=10))
    again = signer.sign_vote(_vote(PREVOTE, 5, 2, b"\1" * 32, ts=99))
    assert again == first


def test_conflicting_vote_at_the_same_step_is_refused() -> None:
    signer = GuardedSigner(KEY, CHAIN, MemorySignStateStore())
    first = signer.sign_vote(_vote(PREVOTE, 5, 2, b"\1" * 32))
    with pytest.raises(DoubleSignRefused) as refused:
        signer.sign_vote(_vote(PREVOTE, 5, 2, b""))
    assert refused.value.signed == first


def test_regressions_are_refused_even_after_a_restart() -> None:
    store = MemorySignStateStore()
    GuardedSigner(KEY, CHAIN, store).sign_vote(_vote(PRECOMMIT, 5, 2, b"\1" * 32))
    restarted = GuardedSigner(KEY, CHAIN, store)
    for kind, height, round in ((PREVOTE, 5, 2), (PRECOMMIT, 5, 1), (PRECOMMIT, 4, 9)):
        with pytest.raises(DoubleSignRefused):
            restarted.sign_vote(_vote(kind, height, round, b"\2" * 32))
    restarted.sign_vote(_vote(PREVOTE, 5, 3, b""))  # forward is fine


def test_proposals_are_guarded_too() -> None:
    signer = GuardedSigner(KEY, CHAIN, MemorySignStateStore())
    proposal = Proposal(3, 0, -1, b"\1" * 32, 1, KEY.address, b"\0" * 64)
    signed = signer.sign_proposal(proposal)
    assert signed.verify_signature(CHAIN, KEY.public_key)
    assert signer.sign_proposal(proposal) == signed
    with pytest.raises(DoubleSignRefused):
        signer.sign_proposal(dataclasses.replace(proposal, block_hash=b"\2" * 32))
    with pytest.raises(DoubleSignRefused):
        signer.sign_proposal(dataclasses.replace(proposal, pol_round=0))
