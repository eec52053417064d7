"""Keys and signers of the simulation: hash "signatures" for fast runs, and the unguarded
signer byzantine validators use. (Runs with real signatures use ed25519 keys and the
node's verifier.)"""

from __future__ import annotations

import dataclasses

from appchaind.chain import crypto
from appchaind.chain.types import PRECOMMIT, Proposal, Vote
from appchaind.consensus.signer import SigningKey

__all__ = ["CHAIN_ID", "FakeKey", "FakeVerifier", "RawSigner", "fake_signature"]

CHAIN_ID = "sim-chain"


def fake_signature(public_key: bytes, message: bytes) -> bytes:
    """The simulator's cheap stand-in for ed25519 (unforgeable only because nobody tries)."""
    digest = crypto.sha256(public_key + message)
    return digest + digest


class FakeKey:
    """A signing key for fast runs: signatures are hashes (see :func:`fake_signature`)."""

    def __init__(self, seed: bytes) -> None:
        self.public_key = crypto.sha256(b"fake-key" + seed)
        self.address = crypto.address_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return fake_signature(self.public_key, message)


class FakeVerifier:
    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return signature == fake_signature(public_key, message)


class RawSigner:
    """A byzantine validator's signer: no guard, signs anything."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key

    @property
    def public_key(self) -> bytes:
        return self._key.public_key

    @property
    def address(self) -> bytes:
        return self._key.address

    def sign_vote(self, vote: Vote) -> Vote:
        signature = self._key.sign(vote.sign_bytes(CHAIN_ID))
        ext_sig = b""
        if vote.kind == PRECOMMIT and vote.block_hash:
            ext_sig = self._key.sign(vote.extension_sign_bytes(CHAIN_ID))
        return dataclasses.replace(vote, signature=signature, extension_signature=ext_sig)

    def sign_proposal(self, proposal: Proposal) -> Proposal:
        return dataclasses.replace(
            proposal, signature=self._key.sign(proposal.sign_bytes(CHAIN_ID))
        )
