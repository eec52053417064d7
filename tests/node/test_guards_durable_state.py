"""The durable state of consensus, at the edges ``make mutate`` found unguarded: a closed
WAL lets go of its file whatever descriptor number it got, 0 included (a daemon started
with stdin closed gets descriptor 0 for the first file it opens); the WAL stays private
after a reset; the sign-state file says what kind of message was signed last; a bad WAL
record with an intact record after it is corruption whatever that record's alignment
and length, and only the bytes after a bad last record decide whether it is a torn tail."""

from __future__ import annotations

import json
import os
import stat
import zlib
from pathlib import Path

import pytest

from appchaind.chain import codec, types
from appchaind.consensus.privval import FileSignStateStore
from appchaind.consensus.signer import GuardedSigner
from appchaind.consensus.wal import WAL, WALCorrupted
from tests.node.test_wal_privval import BLOCK_A, KEY, proposal, vote


def test_closing_the_wal_releases_its_file_even_on_descriptor_0(tmp_path: Path) -> None:
    stdin = os.dup(0)
    os.close(0)
    try:
        wal = WAL(tmp_path / "cs.wal")  # the lowest free descriptor: 0
        wal.append(b"height 1")
        wal.close()
        with pytest.raises(OSError):
            os.fstat(0)
    finally:
        os.dup2(stdin, 0)
        os.close(stdin)


def test_the_log_stays_private_after_a_reset(tmp_path: Path) -> None:
    """The log is created 0600 (tests/node/test_mutants.py); reset() replaces the file, and
    the replacement must be as private."""
    path = tmp_path / "wal"
    log = WAL(path)
    log.append(b"height 1")
    log.reset(b"height 2")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(WAL(path).replay()) == [b"height 2"]


def test_the_sign_state_file_names_the_kind_of_message_signed_last(tmp_path: Path) -> None:
    """sign_state.json is what an operator restores (the refusal to sign without it says
    so): a JSON document of height, round, step, the kind of message ("vote" or
    "proposal") and its canonical bytes in hex."""
    path = tmp_path / "sign_state.json"
    signer = GuardedSigner(KEY, "chain", FileSignStateStore(path))
    signed_vote = vote(signer, types.PREVOTE, 7, 0, BLOCK_A)
    doc = json.loads(path.read_text())
    assert doc["kind"] == "vote"
    assert bytes.fromhex(doc["signed"]) == codec.encode(signed_vote)
    signed_proposal = proposal(signer, 8, 0, BLOCK_A)
    doc = json.loads(path.read_text())
    assert (doc["height"], doc["round"], doc["kind"]) == (8, 0, "proposal")
    assert bytes.fromhex(doc["signed"]) == codec.encode(signed_proposal)


def _frame(payload: bytes, length: int | None = None) -> bytes:
    """A WAL record as the log writes it (``[u32 length][u32 CRC-32][payload]``, big-endian),
    with ``length`` in its header instead of the payload's own when given."""
    header = len(payload) if length is None else length
    return header.to_bytes(4, "big") + zlib.crc32(payload).to_bytes(4, "big") + payload


#: What a garbled record in the middle leaves: a header whose length points past the end
#: of the file, followed by payloads of 4 to 7 bytes (the intact record after it then
#: starts at each of the four alignments), or a header's first 4 bytes alone.
GARBLED = [_frame(b"v" * size, length=0x7F00) for size in range(4, 8)] + [b"\xff" * 4]


@pytest.mark.parametrize("garbled", GARBLED)
def test_one_intact_record_after_a_garbled_one_is_refused_at_any_alignment(
    tmp_path: Path, garbled: bytes
) -> None:
    """A bad record with one intact record after it is corruption, not a torn tail
    (replay raises WALCorrupted and cuts nothing), wherever that record starts, even
    right after the bad header, and however short it is (a payload of 1 byte): cutting
    there would drop the validator's own vote written after it."""
    path = tmp_path / "wal"
    first = _frame(b"height 1")
    damaged = first + garbled + _frame(b"\x01")
    path.write_bytes(damaged)
    with pytest.raises(WALCorrupted, match=f"corrupted at byte {len(first)} of {len(damaged)}"):
        list(WAL(path).replay())
    assert path.read_bytes() == damaged


def test_a_torn_tail_is_judged_by_the_bytes_after_it_only(tmp_path: Path) -> None:
    """Only what follows a bad last record can say it is not a torn tail: an intact
    record before it is not evidence, even one whose payload holds a record header
    whose length and checksum span the rest of the file. The torn record is cut, the
    record before it replayed."""
    path = tmp_path / "wal"
    torn = _frame(b"second vote")[:10]
    inner = b"payload"
    first = _frame(inner + torn)[:8] + inner  # a header spanning inner and torn
    path.write_bytes(_frame(first) + torn)
    log = WAL(path)
    assert list(log.replay()) == [first]
    assert log.truncated_bytes == len(torn)
    assert path.read_bytes() == _frame(first)
