"""A small deterministic key-value application for testing consensus (as CometBFT's kvstore).

Transactions are ``b"key=value"`` (ASCII letters and digits) or
``b"power:<validator index>:<power>"`` (a validator update, applied at H+2 by
consensus). Anything else makes a block invalid (``process_proposal`` rejects
it). Vote extensions are ``b"ext:<height>"``; a commit carrying any other
extension is rejected too.
"""

from __future__ import annotations

from appchaind.chain import crypto
from appchaind.chain.types import COMMIT_BLOCK, Block, Validator, Vote

__all__ = ["KVApp", "valid_tx"]


def valid_tx(tx: bytes) -> bool:
    """True for a well-formed key=value or power update transaction."""
    if tx.startswith(b"power:"):
        parts = tx.split(b":")
        return len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit() and len(parts[2]) < 6
    key, sep, value = tx.partition(b"=")
    return bool(sep) and key.isalnum() and value.isalnum() and key.isascii() and value.isascii()


class KVApp:
    """The application state of one node. ``public_keys[i]`` is validator i's key (for updates)."""

    def __init__(self, public_keys: tuple[bytes, ...]) -> None:
        self.public_keys = public_keys
        self.store: dict[bytes, bytes] = {}
        self.app_hash = b""
        self.height = 0
        self.mempool: list[bytes] = []

    def snapshot(self) -> tuple[dict[bytes, bytes], bytes, int]:
        """What the node persists with each block."""
        return (dict(self.store), self.app_hash, self.height)

    def restore(self, snapshot: tuple[dict[bytes, bytes], bytes, int]) -> None:
        store, self.app_hash, self.height = snapshot
        self.store = dict(store)

    def prepare_proposal(self, max_txs: int) -> tuple[bytes, ...]:
        return tuple(self.mempool[: min(max_txs, 4)])

    def process_proposal(self, block: Block) -> bool:
        if not all(valid_tx(tx) for tx in block.txs):
            return False
        commit = block.last_commit
        if commit is not None:
            expected = b"ext:%d" % commit.height
            for sig in commit.signatures:
                if sig.flag == COMMIT_BLOCK and sig.extension != expected:
                    return False
        return True

    def extend_vote(self, height: int) -> bytes:
        return b"ext:%d" % height

    def verify_vote_extension(self, vote: Vote) -> bool:
        return vote.extension == b"ext:%d" % vote.height

    def finalize_block(self, block: Block) -> tuple[bytes, tuple[Validator, ...]]:
        """Executes the block; returns the app hash and the validator updates."""
        updates: dict[int, int] = {}
        for tx in block.txs:
            if tx.startswith(b"power:"):
                _, index, power = tx.split(b":")
                if int(index) < len(self.public_keys):
                    updates[int(index)] = int(power)
            else:
                key, _, value = tx.partition(b"=")
                self.store[key] = value
        committed = set(block.txs)
        self.mempool = [tx for tx in self.mempool if tx not in committed]
        self.app_hash = crypto.sha256(self.app_hash + b"\x00".join(block.txs))
        self.height = block.header.height
        return self.app_hash, tuple(
            Validator(self.public_keys[i], updates[i]) for i in sorted(updates)
        )
