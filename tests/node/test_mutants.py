"""Rules of the WAL, the double-sign guard and its file store that mutation testing (``make
mutate``) found unguarded: a record is synced by default, an empty log stays empty (also when
reopened), the size limit and a header-only record at the edges, a torn record claiming an
impossible length, one save per new signature, the log's and the store's private files in
directories they create, and what a refused proposal hands back."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from appchaind.chain import types
from appchaind.consensus import wal
from appchaind.consensus.privval import FileSignStateStore
from appchaind.consensus.signer import DoubleSignRefused, GuardedSigner, MemorySignStateStore
from appchaind.consensus.wal import WAL
from tests.node.test_wal_privval import BLOCK_A, BLOCK_B, KEY, proposal, vote


def test_an_append_is_synced_unless_told_otherwise(tmp_path: Path) -> None:
    log = WAL(tmp_path / "wal")
    log.append(b"one")
    log.append(b"two")
    log.append(b"three", sync=False)
    log.sync()
    assert (log.records_appended, log.fsyncs) == (3, 3)


def test_reset_empties_a_log_once_and_an_empty_log_costs_nothing(tmp_path: Path) -> None:
    log = WAL(tmp_path / "wal")
    log.reset()  # already empty: nothing to make durable
    assert log.fsyncs == 0
    log.append(b"height 1")
    log.reset()  # the file and its directory are synced
    assert log.fsyncs == 1 + 2 and list(log.replay()) == []
    log.reset()
    assert log.fsyncs == 3
    log.reset(b"height 2")
    log.reset()  # what reset(payload) wrote is emptied too
    assert log.fsyncs == 3 + 2 + 2 and list(WAL(tmp_path / "wal").replay()) == []


def test_a_reopened_log_knows_whether_it_is_empty(tmp_path: Path) -> None:
    WAL(tmp_path / "empty").close()
    log = WAL(tmp_path / "empty")
    log.reset()
    assert log.fsyncs == 0  # nothing to make durable
    full = WAL(tmp_path / "full")
    full.append(b"height 5")
    full.close()
    log = WAL(tmp_path / "full")
    log.reset()
    assert log.fsyncs == 2 and list(WAL(tmp_path / "full").replay()) == []


def test_the_log_is_private_in_a_directory_it_creates(tmp_path: Path) -> None:
    path = tmp_path / "data" / "cs.wal" / "wal"
    WAL(path).append(b"x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_record_may_be_exactly_the_size_limit_and_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wal, "MAX_RECORD_BYTES", 8)
    log = WAL(tmp_path / "wal")
    log.append(b"8 bytes!")
    log.append(b"")  # a header and no payload
    with pytest.raises(ValueError, match="exceeds"):
        log.append(b"9 bytes!!")
    log.close()
    log.close()  # closing twice is harmless
    assert list(WAL(tmp_path / "wal").replay()) == [b"8 bytes!", b""]


def test_a_torn_last_record_claiming_an_impossible_length_is_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wal, "MAX_RECORD_BYTES", 8)
    log = WAL(tmp_path / "wal")
    log.append(b"first")
    log.close()
    with (tmp_path / "wal").open("ab") as f:
        f.write((9).to_bytes(4, "big") + b"\0\0\0\0" + b"garbage")
    log = WAL(tmp_path / "wal")
    assert list(log.replay()) == [b"first"]
    assert log.truncated_bytes == 8 + 7


def test_the_guard_saves_once_per_new_signature() -> None:
    store = MemorySignStateStore()
    signer = GuardedSigner(KEY, "chain", store)
    assert store.saves == 0
    first = vote(signer, types.PREVOTE, 3, 0, BLOCK_A)
    assert vote(signer, types.PREVOTE, 3, 0, BLOCK_A) == first  # the same vote again
    assert store.saves == 1
    vote(signer, types.PRECOMMIT, 3, 0, BLOCK_A)
    assert store.saves == 2


def test_a_proposal_refused_for_another_pol_round_hands_back_the_one_signed() -> None:
    signer = GuardedSigner(KEY, "chain", MemorySignStateStore())
    signed = proposal(signer, 4, 1, BLOCK_B)
    again = types.Proposal(4, 1, 0, BLOCK_B, 1, KEY.address, b"\x00" * 64)
    with pytest.raises(DoubleSignRefused, match="another pol_round") as refused:
        signer.sign_proposal(again)
    assert refused.value.signed == signed


def test_the_sign_state_file_is_private_in_a_directory_the_store_creates(tmp_path: Path) -> None:
    path = tmp_path / "data" / "validator" / "sign_state.json"
    store = FileSignStateStore(path)
    signer = GuardedSigner(KEY, "chain", store)
    vote(signer, types.PREVOTE, 7, 0, BLOCK_A)
    vote(signer, types.PRECOMMIT, 7, 0, BLOCK_A)
    assert store.saves == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["sign_state.json"]
    assert FileSignStateStore(path).load().hrs() == (7, 0, 3)


def test_a_closed_log_takes_no_more_records(tmp_path: Path) -> None:
    """After close() (even twice), an append fails instead of writing anywhere."""
    log = WAL(tmp_path / "wal")
    log.append(b"one")
    log.close()
    with pytest.raises(OSError):
        log.append(b"two")
    log.close()
    with pytest.raises(OSError):
        log.append(b"three")
    assert list(WAL(tmp_path / "wal").replay()) == [b"one"]
