"""Durable storage for the double-sign guard (:class:`appchaind.consensus.signer.GuardedSigner`).

``FileSignStateStore`` keeps the last signed (height, round, step) and the
signed message in ``data/sign_state.json``. ``save`` writes a temporary file,
fsyncs it, renames it over the old one and fsyncs the directory, so when it
returns the state survives ``kill -9`` and power loss; the guard calls it
before a signature is released.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from appchaind.chain import codec
from appchaind.chain.crypto import PrivateKey
from appchaind.chain.types import Proposal, Vote
from appchaind.consensus.config import Step
from appchaind.consensus.signer import DoubleSignRefused, GuardedSigner, LastSignState

__all__ = ["FileSignStateStore", "file_signer"]


class FileSignStateStore:
    """The last-sign state in a JSON file, written durably."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.saves = 0

    def load(self) -> LastSignState | None:
        try:
            doc = json.loads(self.path.read_text())
            raw = bytes.fromhex(doc["signed"])
            signed: Vote | Proposal = (
                codec.decode(Vote, raw) if doc["kind"] == "vote" else codec.decode(Proposal, raw)
            )
            return LastSignState(doc["height"], doc["round"], Step(doc["step"]), signed)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, codec.CodecError) as exc:
            raise DoubleSignRefused(
                f"{self.path} is unreadable ({exc}); refusing to sign without knowing what was "
                "signed last. Restore the file; remove it only if this validator has not signed "
                "at the current height."
            ) from None

    def save(self, state: LastSignState) -> None:
        doc = {
            "height": state.height,
            "round": state.round,
            "step": int(state.step),
            "kind": "vote" if isinstance(state.signed, Vote) else "proposal",
            "signed": codec.encode(state.signed).hex(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a temporary file left by a crash keeps its mode otherwise
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
        self.saves += 1


def file_signer(key: PrivateKey, chain_id: str, path: Path) -> GuardedSigner:
    """The validator's signer, guarded by the sign state in ``path``."""
    return GuardedSigner(key, chain_id, FileSignStateStore(path))
