"""The LevelDB store: blocks by height and hash, atomic batches, the home lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from appchaind.chain import crypto, types
from appchaind.store import STATE, AlreadyRunning, Store, StoreError, WriteBatch

KEY = crypto.PrivateKey(b"\x09" * 32)


def make_block(height: int, parent: bytes) -> types.Block:
    txs = (f"tx-{height}".encode(),)
    commit = None
    if height > 1:
        sig = types.CommitSig(types.COMMIT_BLOCK, KEY.address, 1, b"\x01" * 64, b"", b"")
        commit = types.Commit(height - 1, 0, parent, (sig,))
    header = types.Header(
        "c", height, 1000 * height, parent, types.commit_hash(commit),
        crypto.merkle_root(list(txs)), b"\x00" * 32, b"\x00" * 32, b"", KEY.address,
        types.evidence_hash(()),
    )  # fmt: skip
    return types.Block(header, txs, (), commit)


def test_blocks_by_height_and_hash(tmp_path: Path) -> None:
    with Store(tmp_path / "data") as store:
        assert store.latest_height() == 0
        parent = b""
        blocks = []
        for h in range(1, 4):
            block = make_block(h, parent)
            batch = WriteBatch()
            batch.put_block(block, None)
            batch.put(STATE + b"height", str(h).encode())
            store.write(batch)
            blocks.append(block)
            parent = block.block_id()
        assert store.latest_height() == 3
        assert store.block(2) == blocks[1]
        assert store.block_by_hash(blocks[2].block_id()) == blocks[2]
        assert store.block(4) is None
        assert list(store.iterate(STATE)) == [(b"height", b"3")]
    # Reopened, everything is still there.
    with Store(tmp_path / "data") as store:
        assert store.latest_height() == 3
        assert store.block(3) == blocks[2]


def test_write_batch_last_operation_wins(tmp_path: Path) -> None:
    with Store(tmp_path / "data") as store:
        batch = WriteBatch()
        batch.put(STATE + b"a", b"1")
        batch.delete(STATE + b"a")
        batch.put(STATE + b"b", b"1")
        batch.delete(STATE + b"b")
        batch.put(STATE + b"b", b"2")
        store.write(batch)
        assert store.get(STATE + b"a") is None
        assert store.get(STATE + b"b") == b"2"


def test_second_open_in_this_process_is_refused(tmp_path: Path) -> None:
    with (
        Store(tmp_path / "data"),
        pytest.raises(AlreadyRunning, match="node already running with home"),
    ):
        Store(tmp_path / "data")


def test_second_process_gets_a_clear_message(tmp_path: Path) -> None:
    with Store(tmp_path / "data"):
        script = (
            "import sys; from pathlib import Path; from appchaind.store import Store, AlreadyRunning\n"
            f"try:\n    Store(Path({str(tmp_path / 'data')!r}))\n"
            "except AlreadyRunning as e:\n    print(e); sys.exit(3)\n"
        )
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert f"node already running with home {tmp_path}" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_genesis_hash_is_pinned(tmp_path: Path) -> None:
    with Store(tmp_path / "data") as store:
        store.check_genesis(b"\x01" * 32)
        store.check_genesis(b"\x01" * 32)
        with pytest.raises(StoreError, match="genesis hash"):
            store.check_genesis(b"\x02" * 32)
