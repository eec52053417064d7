"""A validator whose disk fills (issue 16's storage faults): it stops before signing or
acknowledging anything it could not store, says the disk is full and what to do, and,
once space is freed and it is started again, resumes with everything it committed."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import plyvel
import pytest

from appchaind.chain import types
from appchaind.chain.crypto import PrivateKey
from appchaind.errors import StartupError
from appchaind.localnet.processes import Localnet
from appchaind.localnet.soak import _Disks, disks_available
from appchaind.node import clock
from appchaind.node.run import _is_disk_full, _leaves
from tests.conftest import IN_CI


def test_a_full_disk_is_recognised_where_it_hides_in_the_errors() -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise full
        except OSError:
            raise RuntimeError("the write of the WAL failed") from None
    except RuntimeError as wrapped:
        wrapped.__context__ = full  # what `raise ... from None` keeps as the context
        group = BaseExceptionGroup("tasks", [ValueError("other"), ExceptionGroup("in", [wrapped])])
    assert any(_is_disk_full(exc) for exc in _leaves(group))
    assert _is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    leveldb = plyvel.IOError("IO error: /data/000012.log: No space left on device")
    assert _is_disk_full(leveldb)
    assert not _is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not any(_is_disk_full(e) for e in _leaves(BaseExceptionGroup("x", [ValueError()])))


def test_the_test_clock_offset_is_read_when_a_node_starts_and_a_bad_one_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(clock.OFFSET_ENV, "-30000")
    try:
        assert clock.configure_from_environment() == -30_000
        import time

        assert abs(clock.now_ms() + 30_000 - time.time() * 1000) < 5_000
        monkeypatch.setenv(clock.OFFSET_ENV, "soon")
        with pytest.raises(StartupError, match="APPCHAIND_TEST_CLOCK_OFFSET_MS='soon' is not"):
            clock.configure_from_environment()
    finally:
        monkeypatch.delenv(clock.OFFSET_ENV)
        assert clock.configure_from_environment() == 0


@pytest.mark.slow
def test_a_validator_stops_on_a_full_disk_and_resumes_with_what_it_committed(
    tmp_path: Path,
) -> None:
    why_not = disks_available()
    if why_not is not None:
        if IN_CI:
            pytest.fail(f"CI runs as root: {why_not}")
        pytest.skip(why_not)
    net = Localnet(tmp_path / "net", 1, spare_nodes=0, chain_id="disk-net")
    disks = _Disks(net, size_mb=64)  # the soak's small data filesystem, as its disk fault
    data = disks.dirs[0]
    try:
        net.start(0)
        net.wait_height([0], 2)
        raw = net.faucet_tx(PrivateKey.generate(), 5)
        found = net.commit_tx(0, raw)
        # Every free byte of the data filesystem taken: the next write fails with ENOSPC.
        disks.fill(0)
        assert os.statvfs(data).f_bavail == 0
        proc = net.procs.pop(0)
        assert proc.wait(timeout=60) == 1  # stopped by itself, not hanging
        log = (net.homes[0] / "node.log").read_text()
        assert "disk_full" in log
        assert f"error: stopped: the disk holding {net.homes[0]} is full" in log
        assert "free space on that filesystem" in log and "Traceback" not in log
        stopped_at = max(int(line.split("height=")[1].split()[0])
                         for line in log.splitlines() if " committed height=" in line)  # fmt: skip
        disks.free(0)
        net.start(0)
        net.wait_height([0], stopped_at + 2)
        again = net.get(0, f"/tx/{types.tx_hash(raw).hex()}")
        assert again["height"] == found["height"]
    finally:
        net.close()
        disks.close()
