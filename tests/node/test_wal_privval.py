"""The consensus WAL (torn tails recovered, corrupted middles refused) and the
double-sign guard (nothing contradicting what was signed, across restarts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appchaind.chain import types
from appchaind.chain.crypto import PrivateKey
from appchaind.consensus.privval import FileSignStateStore, file_signer
from appchaind.consensus.signer import DoubleSignRefused, GuardedSigner
from appchaind.consensus.wal import WAL, WALCorrupted

KEY = PrivateKey(b"\x11" * 32)
BLOCK_A = b"\xaa" * 32
BLOCK_B = b"\xbb" * 32


def test_wal_round_trip_and_reset(tmp_path: Path) -> None:
    wal = WAL(tmp_path / "wal")
    assert list(wal.replay()) == []
    for i in range(5):
        wal.append(f"record {i}".encode(), sync=i % 2 == 0)
    wal.close()
    wal = WAL(tmp_path / "wal")
    assert list(wal.replay()) == [f"record {i}".encode() for i in range(5)]
    wal.reset(b"height 7")
    wal.append(b"after")
    wal.close()
    assert list(WAL(tmp_path / "wal").replay()) == [b"height 7", b"after"]


@given(cut=st.integers(1, 7 + 8))
def test_wal_torn_last_record_is_recovered(
    tmp_path_factory: pytest.TempPathFactory, cut: int
) -> None:
    path = tmp_path_factory.mktemp("wal") / "wal"
    wal = WAL(path)
    wal.append(b"first")
    wal.append(b"second!")
    wal.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - cut])  # the last record (8 + 7 bytes) torn
    wal = WAL(path)
    assert list(wal.replay()) == [b"first"]
    assert wal.truncated_bytes == len(data) - cut - (8 + 5)
    wal.append(b"third")
    wal.close()
    assert list(WAL(path).replay()) == [b"first", b"third"]


def test_wal_bad_checksum_on_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    wal = WAL(tmp_path / "wal")
    wal.append(b"first")
    wal.append(b"second")
    wal.close()
    data = bytearray((tmp_path / "wal").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "wal").write_bytes(bytes(data))
    assert list(WAL(tmp_path / "wal").replay()) == [b"first"]


def test_wal_corrupted_middle_stops_with_a_clear_message(tmp_path: Path) -> None:
    wal = WAL(tmp_path / "wal")
    for payload in (b"one", b"two", b"three"):
        wal.append(payload)
    wal.close()
    data = bytearray((tmp_path / "wal").read_bytes())
    data[9] ^= 0xFF  # inside the first record's payload
    (tmp_path / "wal").write_bytes(bytes(data))
    with pytest.raises(
        WALCorrupted, match="corrupted at byte 0 .*checksum mismatch.*move the file aside"
    ):
        list(WAL(tmp_path / "wal").replay())


def test_wal_survives_kill_9_mid_append(tmp_path: Path) -> None:
    # A child appends records as fast as it can and is killed with SIGKILL; whatever it
    # reported as synced is there, and the log replays (torn tail cut) without error.
    script = (
        "import sys\nfrom pathlib import Path\nfrom appchaind.consensus.wal import WAL\n"
        f"w = WAL(Path({str(tmp_path / 'wal')!r}))\nlist(w.replay())\n"
        "i = 0\nwhile True:\n"
        "    w.append(b'x' * 3000 + str(i).encode(), sync=True)\n"
        "    print(i, flush=True)\n    i += 1\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acknowledged = -1
    for line in proc.stdout:
        acknowledged = int(line)
        if acknowledged >= 200:
            break
    proc.kill()
    proc.wait()
    records = list(WAL(tmp_path / "wal").replay())
    assert len(records) >= acknowledged + 1
    for i, record in enumerate(records):
        assert record == b"x" * 3000 + str(i).encode()


def new_signer(tmp_path: Path) -> GuardedSigner:
    return file_signer(KEY, "chain", tmp_path / "sign_state.json")


def vote(
    signer: GuardedSigner, kind: int, height: int, round: int, block: bytes, ts: int = 1
) -> types.Vote:
    template = types.Vote(
        kind, height, round, block, ts, KEY.address, 0,
        b"ext" if kind == types.PRECOMMIT and block else b"", b"\x00" * 64, b"",
    )  # fmt: skip
    return signer.sign_vote(template)


def proposal(signer: GuardedSigner, height: int, round: int, block: bytes) -> types.Proposal:
    return signer.sign_proposal(
        types.Proposal(height, round, -1, block, 1, KEY.address, b"\x00" * 64)
    )


def test_file_signer_refuses_conflicting_votes_across_restarts(tmp_path: Path) -> None:
    signer = new_signer(tmp_path)
    v1 = vote(signer, types.PREVOTE, 5, 0, BLOCK_A, ts=100)
    assert v1.verify_signature("chain", KEY.public_key)
    # A restarted validator re-signing the same vote gets the identical vote back.
    signer = new_signer(tmp_path)
    assert vote(signer, types.PREVOTE, 5, 0, BLOCK_A, ts=999) == v1
    with pytest.raises(DoubleSignRefused):
        vote(signer, types.PREVOTE, 5, 0, BLOCK_B)
    with pytest.raises(DoubleSignRefused):
        vote(new_signer(tmp_path), types.PREVOTE, 5, 0, b"")
    # Moving forward is fine; going back is not, even after a restart.
    vote(signer, types.PRECOMMIT, 5, 0, BLOCK_A)
    with pytest.raises(DoubleSignRefused):
        vote(new_signer(tmp_path), types.PREVOTE, 5, 0, BLOCK_A)
    vote(signer, types.PREVOTE, 5, 1, BLOCK_B)
    with pytest.raises(DoubleSignRefused):
        proposal(new_signer(tmp_path), 5, 1, BLOCK_B)
    p = proposal(new_signer(tmp_path), 6, 0, BLOCK_A)
    assert p.verify_signature("chain", KEY.public_key)
    assert proposal(new_signer(tmp_path), 6, 0, BLOCK_A) == p


def test_sign_state_is_durable_before_the_signature_is_returned(tmp_path: Path) -> None:
    store = FileSignStateStore(tmp_path / "sign_state.json")
    signer = GuardedSigner(KEY, "chain", store)
    vote(signer, types.PREVOTE, 9, 2, BLOCK_A)
    assert store.saves == 1
    assert FileSignStateStore(tmp_path / "sign_state.json").load().hrs() == (9, 2, 2)


def test_unreadable_sign_state_refuses_to_sign(tmp_path: Path) -> None:
    (tmp_path / "sign_state.json").write_text("{broken")
    with pytest.raises(DoubleSignRefused, match="unreadable"):
        new_signer(tmp_path)


def _consensus_records() -> list[bytes]:
    """A vote and a proposal with its block, as the node logs them (real msgpack, with
    runs of zero bytes inside)."""
    from appchaind.node.messages import ProposalMessage, VoteMessage, encode_message

    header = types.Header(
        "chain", 7, 7000, b"\x00" * 32, b"\x00" * 32, b"\x00" * 32, b"\x00" * 32,
        b"\x00" * 32, b"", KEY.address, b"\x00" * 32,
    )  # fmt: skip
    block = types.Block(header, (b"\x00" * 40, b"tx-two"), (), None)
    prop = types.Proposal(7, 0, -1, block.block_id(), 7000, KEY.address, b"\x00" * 64)
    prevote = types.Vote(
        types.PREVOTE, 7, 0, block.block_id(), 7001, KEY.address, 0, b"", b"\x00" * 64, b""
    )
    return [encode_message(VoteMessage(prevote)), encode_message(ProposalMessage(prop, block))]


def test_wal_cut_at_every_byte_of_the_last_record_keeps_the_records_before_it(
    tmp_path: Path,
) -> None:
    first, last = _consensus_records()
    wal = WAL(tmp_path / "wal")
    wal.append(first)
    wal.append(last)
    wal.close()
    whole = (tmp_path / "wal").read_bytes()
    good = 8 + len(first)
    for cut in range(good, len(whole)):
        (tmp_path / "wal").write_bytes(whole[:cut])
        wal = WAL(tmp_path / "wal")
        assert list(wal.replay()) == [first], cut
        assert (tmp_path / "wal").stat().st_size == good
        wal.close()


def test_wal_last_frame_torn_inside_is_cut(tmp_path: Path) -> None:
    # The file reached its full length but part of the last frame never got to disk
    # (zeros where the payload should be): its checksum fails and nothing follows it.
    first, last = _consensus_records()
    wal = WAL(tmp_path / "wal")
    wal.append(first)
    wal.append(last)
    wal.close()
    data = bytearray((tmp_path / "wal").read_bytes())
    data[-len(last) // 2 :] = bytes(len(last) // 2)
    (tmp_path / "wal").write_bytes(bytes(data))
    assert list(WAL(tmp_path / "wal").replay()) == [first]


@pytest.mark.parametrize("length", [b"\x00\x00\x7f\x00", b"\x7f\xff\xff\xff"])
def test_wal_garbled_length_in_the_middle_is_not_taken_for_a_torn_tail(
    tmp_path: Path, length: bytes
) -> None:
    # A length that points past the end of the file (or beyond any record) looks like a
    # torn last write; the intact records after it say it is not, and cutting there
    # would drop this height's votes (the validator's lock with them).
    wal = WAL(tmp_path / "wal")
    for payload in _consensus_records() + [b"three"]:
        wal.append(payload)
    wal.close()
    before = (tmp_path / "wal").read_bytes()
    (tmp_path / "wal").write_bytes(length + before[4:])
    with pytest.raises(WALCorrupted, match="corrupted at byte 0 .*(short record|record length)"):
        list(WAL(tmp_path / "wal").replay())
    assert (tmp_path / "wal").read_bytes() == length + before[4:]  # nothing was cut
