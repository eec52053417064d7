"""Signing with a double-sign guard, and signature verification.

The machine signs through a :class:`Signer` synchronously, at the moment a rule
of the algorithm fires. :class:`GuardedSigner` is CometBFT's FilePV logic:

* it remembers the last signed ``(height, round, step)`` and the message it signed;
* it refuses to sign at a lower ``(height, round, step)`` (a regression);
* at the same ``(height, round, step)`` it returns the message it already
  signed when the request is for the same block (so a restarted node replaying
  its WAL re-sends the very same vote), and refuses anything else;
* it calls ``store.save(state)`` **before** the signature is returned. A node
  makes ``save`` write and fsync the state, so no signature ever leaves the
  process that the node would not remember after ``kill -9``.

Steps are :class:`~appchaind.consensus.config.Step` values: PROPOSE = 1,
PREVOTE = 2, PRECOMMIT = 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from appchaind.chain import crypto
from appchaind.chain.types import PRECOMMIT, PREVOTE, Proposal, Vote
from appchaind.consensus.config import Step

__all__ = [
    "DoubleSignRefused",
    "SigningKey",
    "Signer",
    "LastSignState",
    "SignStateStore",
    "MemorySignStateStore",
    "GuardedSigner",
    "Verifier",
    "Ed25519Verifier",
]


class DoubleSignRefused(Exception):
    """The signer will not sign: it would conflict with what it signed before.

    ``signed`` is what the signer already signed at the very same
    height/round/step (None on a regression to an earlier one): a machine that
    lost its memory in a crash may adopt that message as its own, since it
    has already been released.
    """

    def __init__(self, reason: str, signed: Vote | Proposal | None = None) -> None:
        super().__init__(reason)
        self.signed = signed


class SigningKey(Protocol):
    """A key that signs raw bytes (``appchaind.chain.crypto.PrivateKey`` is one)."""

    @property
    def public_key(self) -> bytes: ...

    @property
    def address(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


class Signer(Protocol):
    """What the machine signs with. Both methods take an unsigned template
    (signature fields zero or empty) and return the signed message, or raise
    :class:`DoubleSignRefused`. The returned message may be an earlier signed
    copy (same block, earlier timestamp)."""

    @property
    def public_key(self) -> bytes: ...

    @property
    def address(self) -> bytes: ...

    def sign_vote(self, vote: Vote) -> Vote: ...

    def sign_proposal(self, proposal: Proposal) -> Proposal: ...


@dataclass(frozen=True, slots=True)
class LastSignState:
    """The last thing the validator signed, and at which height/round/step."""

    height: int
    round: int
    step: Step
    signed: Vote | Proposal

    def hrs(self) -> tuple[int, int, int]:
        return (self.height, self.round, int(self.step))


class SignStateStore(Protocol):
    """Durable storage of the last-sign state. ``save`` returns only once the state is durable."""

    def load(self) -> LastSignState | None: ...

    def save(self, state: LastSignState) -> None: ...


class MemorySignStateStore:
    """A store that lives as long as the object (tests; the simulator's "disk")."""

    def __init__(self) -> None:
        self.state: LastSignState | None = None
        self.saves = 0

    def load(self) -> LastSignState | None:
        return self.state

    def save(self, state: LastSignState) -> None:
        self.state = state
        self.saves += 1


class GuardedSigner:
    """Signs votes and proposals for ``chain_id``, never two conflicting ones (see the module doc)."""

    def __init__(self, key: SigningKey, chain_id: str, store: SignStateStore) -> None:
        self._key = key
        self._chain_id = chain_id
        self._store = store
        self._last = store.load()

    @property
    def public_key(self) -> bytes:
        return self._key.public_key

    @property
    def address(self) -> bytes:
        return self._key.address

    def _check(
        self, height: int, round: int, step: Step, block_hash: bytes
    ) -> Vote | Proposal | None:
        """The message to return again, None to sign a new one, or raises on a conflict."""
        last = self._last
        if last is None:
            return None
        hrs = (height, round, int(step))
        if hrs < last.hrs():
            raise DoubleSignRefused(f"height/round/step regression: {hrs} after {last.hrs()}")
        if hrs == last.hrs():
            if last.signed.block_hash == block_hash:
                return last.signed
            raise DoubleSignRefused(f"already signed a different block at {hrs}", last.signed)
        return None

    def sign_vote(self, vote: Vote) -> Vote:
        if vote.kind not in (PREVOTE, PRECOMMIT):
            raise ValueError(f"unknown vote kind {vote.kind}")
        if vote.validator != self._key.address:
            raise ValueError("the vote names another validator")
        step = Step.PREVOTE if vote.kind == PREVOTE else Step.PRECOMMIT
        again = self._check(vote.height, vote.round, step, vote.block_hash)
        if isinstance(again, Vote):
            return again
        signature = self._key.sign(vote.sign_bytes(self._chain_id))
        ext_signature = b""
        if vote.kind == PRECOMMIT and vote.block_hash:
            ext_signature = self._key.sign(vote.extension_sign_bytes(self._chain_id))
        signed = Vote(
            vote.kind, vote.height, vote.round, vote.block_hash, vote.timestamp_ms,
            vote.validator, vote.validator_index, vote.extension, signature, ext_signature,
        )  # fmt: skip
        self._remember(LastSignState(vote.height, vote.round, step, signed))
        return signed

    def sign_proposal(self, proposal: Proposal) -> Proposal:
        if proposal.proposer != self._key.address:
            raise ValueError("the proposal names another proposer")
        again = self._check(proposal.height, proposal.round, Step.PROPOSE, proposal.block_hash)
        if isinstance(again, Proposal):
            if again.pol_round != proposal.pol_round:
                raise DoubleSignRefused("already proposed this block with another pol_round", again)
            return again
        signature = self._key.sign(proposal.sign_bytes(self._chain_id))
        signed = Proposal(
            proposal.height, proposal.round, proposal.pol_round, proposal.block_hash,
            proposal.timestamp_ms, proposal.proposer, signature,
        )  # fmt: skip
        self._remember(LastSignState(proposal.height, proposal.round, Step.PROPOSE, signed))
        return signed

    def _remember(self, state: LastSignState) -> None:
        self._store.save(state)  # durable before the signature is released
        self._last = state


class Verifier(Protocol):
    """Checks one signature over exact bytes. A node injects its one verdict cache,
    :class:`appchaind.chain.signatures.SignatureVerifier`, so nothing is verified twice."""

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool: ...


class Ed25519Verifier:
    """ed25519 via libsodium, remembering nothing (tests and the simulator; a node uses
    :class:`appchaind.chain.signatures.SignatureVerifier`, the same check with the node's cache)."""

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return crypto.verify(public_key, message, signature)
