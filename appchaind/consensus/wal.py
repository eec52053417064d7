"""The consensus write-ahead log: length- and checksum-framed records in one file.

Record layout: ``[u32 big-endian payload length][u32 CRC-32 of the payload][payload]``.

* ``append(payload, sync=True)`` writes a record and, with ``sync``, fsyncs before
  returning, so a message the node sends after appending is on disk first.
* ``replay()`` yields every record's payload from the start. A torn last record
  (a crash in the middle of a write: short header, short payload, or a bad
  checksum on the very last record) is cut off and the log continues from the
  last good record. A bad record followed by more data means the file was
  corrupted in the middle: :class:`WALCorrupted` stops the node with the file,
  offset and what to do, because silently skipping consensus history could
  make a validator double-sign. A bad record whose length reaches past the end
  of the file is a torn tail only if no intact record follows it: a garbled
  length in the middle also points past the end, and the records after it
  (a chain of intact, non-empty records ending exactly at the end of the file)
  give it away. Empty records are not evidence: the node never writes one, and
  zeros are what a torn write often leaves.
* ``reset(payload)`` atomically replaces the log with one record (used when a
  height is committed: older records are no longer needed).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from appchaind.errors import StartupError

__all__ = ["WAL", "WALCorrupted", "MAX_RECORD_BYTES"]

MAX_RECORD_BYTES = 64 * 1024 * 1024
_HEADER = 8


class WALCorrupted(StartupError):
    """The WAL is damaged before its end; the message names the file, the offset and the fix."""


def _frame(payload: bytes) -> bytes:
    if len(payload) > MAX_RECORD_BYTES:
        raise ValueError(f"WAL record of {len(payload)} bytes exceeds {MAX_RECORD_BYTES}")
    return len(payload).to_bytes(4, "big") + zlib.crc32(payload).to_bytes(4, "big") + payload


def _intact_records_after(data: bytes, offset: int) -> int | None:
    """The first position after ``offset`` from which intact, non-empty records follow
    one another to exactly the end of ``data``, or None.

    Every position is a possible record start: its length is read for all positions
    at once (one unpack per 4-byte alignment), those that fit before the end are kept,
    and they are examined from the end: a record is part of such a chain when the
    chain goes on right after it and its checksum holds."""
    size = len(data)
    candidates: list[tuple[int, int]] = []
    for start in range(offset + 1, offset + 5):
        count = (size - _HEADER - 1 - start) // 4 + 1
        if count <= 0:
            continue
        lengths = struct.unpack_from(f">{count}I", data, start)
        positions = range(start, start + 4 * count, 4)
        candidates += [
            (p, n) for p, n in zip(positions, lengths, strict=True) if 0 < n <= size - _HEADER - p
        ]
    candidates.sort(reverse=True)
    reaches_end = {size}
    first = None
    for position, length in candidates:
        end = position + _HEADER + length
        if end in reaches_end and zlib.crc32(data[position + _HEADER : end]) == int.from_bytes(
            data[position + 4 : position + _HEADER], "big"
        ):
            reaches_end.add(position)
            first = position
    return first


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WAL:
    """An append-only record log at ``path``. Call :meth:`replay` before appending."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.truncated_bytes = 0
        self.records_appended = 0
        self.fsyncs = 0
        self._empty = os.fstat(self._fd).st_size == 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def append(self, payload: bytes, *, sync: bool = True) -> None:
        os.write(self._fd, _frame(payload))
        self.records_appended += 1
        self._empty = False
        if sync:
            os.fsync(self._fd)
            self.fsyncs += 1

    def sync(self) -> None:
        os.fsync(self._fd)
        self.fsyncs += 1

    def replay(self) -> Iterator[bytes]:
        """Yields every intact record; cuts a torn tail; raises WALCorrupted on a damaged middle."""
        data = self.path.read_bytes()
        size = len(data)
        offset = 0
        while offset < size:
            problem = None
            if size - offset < _HEADER:
                problem = "short header"
                end = size
            else:
                length = int.from_bytes(data[offset : offset + 4], "big")
                checksum = int.from_bytes(data[offset + 4 : offset + 8], "big")
                end = offset + _HEADER + length
                if length > MAX_RECORD_BYTES:
                    problem = f"impossible record length {length}"
                    end = size
                elif end > size:
                    problem = "short record"
                elif zlib.crc32(data[offset + _HEADER : end]) != checksum:
                    problem = "checksum mismatch"
            if problem is None:
                yield data[offset + _HEADER : end]
                offset = end
                continue
            if end >= size and _intact_records_after(data, offset) is None:
                # A torn write at the end: recover by cutting it off.
                os.truncate(self.path, offset)
                self.truncated_bytes = size - offset
                return
            raise WALCorrupted(
                f"{self.path} is corrupted at byte {offset} of {size} ({problem}) with intact "
                "data after it; move the file aside to start without consensus history "
                "(only safe if this validator has not signed at the current height)"
            )

    def reset(self, payload: bytes | None = None) -> None:
        """Atomically replaces the log with just ``payload`` (or nothing)."""
        if payload is None and self._empty:
            return  # already empty: nothing to make durable
        tmp = self.path.with_suffix(".tmp")
        # Private like the log it replaces (open(tmp, "wb") would give 0666 & ~umask; a
        # temporary file left by a crash keeps its mode unless set again).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            if payload is not None:
                f.write(_frame(payload))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND, 0o600)
        self.fsyncs += 2
        self._empty = payload is None
