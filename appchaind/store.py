"""The node's LevelDB: blocks, commits, application state, indexes and metadata.

One LevelDB per node home (``data/leveldb``), with namespaced key prefixes:

=========  ===========================================================
``b/``     block by height (8-byte big-endian height) -> canonical Block
``h/``     block hash -> height
``c/``     commit that decided the block at a height -> canonical Commit
``s/``     application state (the application owns what is under it)
``i/``     indexes (e.g. ``i/tx/`` + tx hash -> height, index)
``m/``     metadata (latest height, genesis hash, ...)
=========  ===========================================================

Writes that belong together go through one :class:`WriteBatch`, applied
atomically and fsynced once (``sync=True``). A second process opening the same
home is refused with "node already running with home ..." (an advisory lock
on ``data/node.lock``), not a LevelDB traceback.

Damage is refused, never repaired behind the operator's back: reads verify
LevelDB's block checksums, and a corruption LevelDB reports (a garbled table, a
missing manifest), a LevelDB directory without its ``CURRENT`` file (opening it
would make a new, empty database over the old tables) or a store holding blocks
but no genesis hash raise :class:`StoreDamaged`, whose one line says what to do.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import plyvel

from appchaind.chain import codec
from appchaind.chain.types import Block, Commit
from appchaind.errors import StartupError

__all__ = ["Store", "StoreError", "StoreDamaged", "AlreadyRunning", "WriteBatch", "height_key"]

BLOCKS = b"b/"
HASHES = b"h/"
COMMITS = b"c/"
STATE = b"s/"
INDEXES = b"i/"
META = b"m/"

_LATEST_HEIGHT = META + b"latest_height"
_GENESIS_HASH = META + b"genesis_hash"


def height_key(height: int) -> bytes:
    """8-byte big-endian height: keys sort in height order."""
    return height.to_bytes(8, "big")


class StoreError(Exception):
    """The store cannot be used; the message says why and what to do."""


class AlreadyRunning(StoreError):
    """Another process holds this home's lock."""


class StoreDamaged(StoreError, StartupError):
    """The data directory is damaged: the node stops (at start, or when it meets the
    damage while running) with one line naming what is wrong and what to do."""

    def __init__(self, data_dir: Path, problem: str) -> None:
        super().__init__(
            f"the data directory {data_dir} is damaged ({problem}); restore it from a backup, "
            f"or sync a fresh one: move {Path(data_dir) / 'leveldb'} aside and start the node "
            "again (keep sign_state.json, which stops a validator from signing twice)"
        )


class WriteBatch:
    """Puts and deletes applied together, atomically, by :meth:`Store.write`."""

    __slots__ = ("_puts", "_deletes")

    def __init__(self) -> None:
        self._puts: dict[bytes, bytes] = {}
        self._deletes: set[bytes] = set()

    def put(self, key: bytes, value: bytes) -> None:
        self._deletes.discard(key)
        self._puts[key] = value

    def delete(self, key: bytes) -> None:
        self._puts.pop(key, None)
        self._deletes.add(key)

    def __len__(self) -> int:
        return len(self._puts) + len(self._deletes)

    def put_block(self, block: Block, commit: Commit | None) -> None:
        """Stages a block (and the commit that decided it, when known) by height and hash."""
        height = block.header.height
        self.put(BLOCKS + height_key(height), codec.encode(block))
        self.put(HASHES + block.block_id(), height_key(height))
        if commit is not None:
            self.put(COMMITS + height_key(height), codec.encode(commit))
        self.put(_LATEST_HEIGHT, height_key(height))


class Store:
    """The node's LevelDB under ``data_dir``. Use as a context manager, or call close()."""

    def __init__(self, data_dir: Path, *, home_for_messages: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        home = home_for_messages or self.data_dir.parent
        self._lock_fd = os.open(self.data_dir / "node.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._lock_fd, 32, 0).decode(errors="replace").strip()
            os.close(self._lock_fd)
            pid = f" (pid {holder})" if holder else ""
            raise AlreadyRunning(
                f"node already running with home {home}{pid}; stop it first or use another --home"
            ) from None
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, str(os.getpid()).encode(), 0)
        leveldb = self.data_dir / "leveldb"
        try:
            if leveldb.is_dir() and any(leveldb.iterdir()) and not (leveldb / "CURRENT").exists():
                raise StoreDamaged(self.data_dir, f"{leveldb} has no CURRENT file")
            self._db = plyvel.DB(str(leveldb), create_if_missing=True)
        except plyvel.CorruptionError as exc:
            self._release_lock()
            raise StoreDamaged(self.data_dir, _leveldb_message(exc)) from None
        except plyvel.Error as exc:
            self._release_lock()
            raise StoreError(f"cannot open the LevelDB in {leveldb}: {exc}") from None
        except StoreDamaged:
            self._release_lock()
            raise
        self._closed = False

    def _release_lock(self) -> None:
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.close()
            self._release_lock()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ raw access

    def get(self, key: bytes) -> bytes | None:
        try:
            value: bytes | None = self._db.get(key, verify_checksums=True)
        except plyvel.CorruptionError as exc:
            raise StoreDamaged(self.data_dir, _leveldb_message(exc)) from None
        return value

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(key without prefix, value) for every key under ``prefix``, in key order."""
        n = len(prefix)
        try:
            with self._db.iterator(prefix=prefix, verify_checksums=True) as it:
                for key, value in it:
                    yield key[n:], value
        except plyvel.CorruptionError as exc:
            raise StoreDamaged(self.data_dir, _leveldb_message(exc)) from None

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        """Applies ``batch`` atomically; with ``sync`` it is on disk when this returns."""
        try:
            with self._db.write_batch(transaction=True, sync=sync) as wb:
                for key in batch._deletes:
                    wb.delete(key)
                for key, value in batch._puts.items():
                    wb.put(key, value)
        except plyvel.CorruptionError as exc:
            raise StoreDamaged(self.data_dir, _leveldb_message(exc)) from None

    # ------------------------------------------------------------------ blocks

    def latest_height(self) -> int:
        """Height of the newest stored block, 0 when there is none."""
        raw = self.get(_LATEST_HEIGHT)
        return 0 if raw is None else int.from_bytes(raw, "big")

    def block(self, height: int) -> Block | None:
        raw = self.get(BLOCKS + height_key(height))
        return None if raw is None else codec.decode(Block, raw)

    def block_bytes(self, height: int) -> bytes | None:
        return self.get(BLOCKS + height_key(height))

    def height_of(self, block_hash: bytes) -> int | None:
        raw = self.get(HASHES + block_hash)
        return None if raw is None else int.from_bytes(raw, "big")

    def block_by_hash(self, block_hash: bytes) -> Block | None:
        height = self.height_of(block_hash)
        return None if height is None else self.block(height)

    def commit(self, height: int) -> Commit | None:
        """The commit that decided the block at ``height`` (carried by block height+1, or
        stored alongside the block when it was decided locally)."""
        raw = self.get(COMMITS + height_key(height))
        return None if raw is None else codec.decode(Commit, raw)

    # ------------------------------------------------------------------ genesis

    def check_genesis(self, genesis_hash: bytes) -> None:
        """Records the genesis hash on first use; refuses a data directory from another chain.

        The hash covers the whole genesis document (chain id, time, validators, accounts,
        markets), so a chain restarted under the same chain id is another chain too. Every
        store records it when it is first opened: blocks without it mean damage."""
        stored = self.get(_GENESIS_HASH)
        if stored is None:
            if self.latest_height() > 0:
                raise StoreDamaged(self.data_dir, "it holds blocks but no genesis hash")
            self._db.put(_GENESIS_HASH, genesis_hash, sync=True)
        elif stored != genesis_hash:
            raise StoreError(
                f"{self.data_dir} holds a chain with genesis hash {stored.hex()}, but genesis.json "
                f"hashes to {genesis_hash.hex()}; use the right genesis or an empty data directory"
            )


def _leveldb_message(exc: plyvel.Error) -> str:
    """LevelDB's own words ("Corruption: bad block contents", ...) as text."""
    detail = exc.args[0] if exc.args else exc
    return detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
