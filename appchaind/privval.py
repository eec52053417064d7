"""The double-sign guard: the validator key signs only through here.

Before a signature leaves this module, the (height, round, step) it is for and
the signed message are written to ``data/sign_state.json`` and fsynced. A
request for an earlier (height, round, step) is refused; a request for the same
one is answered with the message already signed if it is for the same block
(a restart replaying its WAL re-sends the very same vote) and refused if it is
for another. So no crash, restart or bug above this layer can make the
validator sign two different votes or proposals for one height/round/step.

Steps: proposal = 1, prevote = 2, precommit = 3.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from appchaind import codec, types
from appchaind.crypto import PrivateKey

__all__ = [
    "DoubleSignRefused",
    "PrivValidator",
    "SignState",
    "STEP_PROPOSAL",
    "STEP_PREVOTE",
    "STEP_PRECOMMIT",
]

STEP_PROPOSAL = 1
STEP_PREVOTE = 2
STEP_PRECOMMIT = 3
_STEP_OF_VOTE = {types.PREVOTE: STEP_PREVOTE, types.PRECOMMIT: STEP_PRECOMMIT}


class DoubleSignRefused(Exception):
    """Signing this would contradict (or precede) something this validator already signed."""


@dataclass(frozen=True, slots=True)
class SignState:
    """The last thing signed. ``block_hash`` is b"" for nil; ``signed`` is its canonical bytes."""

    height: int
    round: int
    step: int
    block_hash: bytes
    signed: bytes

    def hrs(self) -> tuple[int, int, int]:
        return (self.height, self.round, self.step)


class PrivValidator:
    """Signs votes and proposals with the validator key, never contradicting itself."""

    def __init__(self, key: PrivateKey, state_path: Path, chain_id: str) -> None:
        self.key = key
        self.address = key.address
        self.chain_id = chain_id
        self.path = Path(state_path)
        self.state = self._load()

    def _load(self) -> SignState | None:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise DoubleSignRefused(
                f"{self.path} is unreadable ({exc}); refusing to sign without knowing what was "
                "signed last. Restore it, or (only if sure) remove it."
            ) from None
        return SignState(
            doc["height"], doc["round"], doc["step"], bytes.fromhex(doc["block_hash"]),
            bytes.fromhex(doc["signed"]),
        )  # fmt: skip

    def _persist(self, state: SignState) -> None:
        tmp = self.path.with_suffix(".tmp")
        doc = {
            "height": state.height, "round": state.round, "step": state.step,
            "block_hash": state.block_hash.hex(), "signed": state.signed.hex(),
        }  # fmt: skip
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(doc))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self.state = state

    def _check(self, hrs: tuple[int, int, int], block_hash: bytes) -> bytes | None:
        """The previously signed bytes to re-send, None to sign anew, or DoubleSignRefused."""
        last = self.state
        if last is None or hrs > last.hrs():
            return None
        if hrs < last.hrs():
            raise DoubleSignRefused(
                f"asked to sign height/round/step {hrs}, but {last.hrs()} was already signed"
            )
        if block_hash != last.block_hash:
            raise DoubleSignRefused(
                f"asked to sign {block_hash.hex() or 'nil'} at height/round/step {hrs}, but "
                f"{last.block_hash.hex() or 'nil'} was already signed there"
            )
        return last.signed

    def sign_vote(
        self,
        *,
        kind: int,
        height: int,
        round: int,
        block_hash: bytes,
        timestamp_ms: int,
        validator_index: int,
        extension: bytes = b"",
    ) -> types.Vote:
        """A signed vote, fsynced as the last signed state before it is returned."""
        hrs = (height, round, _STEP_OF_VOTE[kind])
        previous = self._check(hrs, block_hash)
        if previous is not None:
            return codec.decode(types.Vote, previous)
        vote = types.sign_vote(
            self.key, self.chain_id, kind=kind, height=height, round=round,
            block_hash=block_hash, timestamp_ms=timestamp_ms, validator_index=validator_index,
            extension=extension,
        )  # fmt: skip
        self._persist(SignState(height, round, hrs[2], block_hash, codec.encode(vote)))
        return vote

    def sign_proposal(
        self, *, height: int, round: int, pol_round: int, block_hash: bytes, timestamp_ms: int
    ) -> types.Proposal:
        """A signed proposal, fsynced as the last signed state before it is returned."""
        hrs = (height, round, STEP_PROPOSAL)
        previous = self._check(hrs, block_hash)
        if previous is not None:
            return codec.decode(types.Proposal, previous)
        proposal = types.sign_proposal(
            self.key, self.chain_id, height=height, round=round, pol_round=pol_round,
            block_hash=block_hash, timestamp_ms=timestamp_ms,
        )  # fmt: skip
        self._persist(SignState(height, round, STEP_PROPOSAL, block_hash, codec.encode(proposal)))
        return proposal
