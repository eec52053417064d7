"""Multi-process tests of the node on loopback: agreement, crashes, sync, halts, hostile peers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from appchaind.chain.crypto import PrivateKey
from appchaind.localnet.processes import Localnet

pytestmark = pytest.mark.slow


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Localnet]:
    localnet = Localnet(tmp_path / "net")
    try:
        yield localnet
    finally:
        localnet.close()


def blocks_agree(net: Localnet, nodes: list[int], upto: int) -> None:
    """Every node reports the same block hash and app hash at every height up to ``upto``."""
    for h in range(1, upto + 1):
        seen = {
            (b["hash"], b["header"]["app_hash"]) for b in (net.get(i, f"/block/{h}") for i in nodes)
        }
        assert len(seen) == 1, f"nodes disagree at height {h}: {seen}"


def test_four_validators_commit_and_agree(net: Localnet) -> None:
    net.start_all()
    net.wait_height([0, 1, 2, 3], 20)
    blocks_agree(net, [0, 1, 2, 3], 20)
    statuses = [net.status(i) for i in range(4)]
    assert all(s is not None and s["peers"] == 3 for s in statuses)
    # The app hash reported for a height is the one the next block's header carries.
    s = statuses[0]
    assert s is not None
    following = net.get(0, f"/block/{s['height'] + 1}") if net.height(0) > s["height"] else None
    if following is not None:
        assert following["header"]["app_hash"] == s["app_hash"]
    metrics = net.get_text(0, "/metrics")
    for name in (
        "appchaind_consensus_height",
        "appchaind_consensus_rounds",
        "appchaind_consensus_block_interval_seconds",
        "appchaind_mempool_size",
        "appchaind_p2p_peers",
        "appchaind_blocksync_syncing",
    ):
        assert name in metrics
    # The exposition parses with prometheus-client's own parser; a metric named *_total is
    # a counter (promtool check metrics flags a gauge so named), and the running totals
    # of p2p bytes are counters that have counted.
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    for family in families.values():
        if any(s.name.endswith("_total") for s in family.samples):
            assert family.type == "counter", family.name
    for name in ("appchaind_p2p_peer_receive_bytes", "appchaind_p2p_peer_send_bytes"):
        assert families[name].type == "counter" and families[name].samples[0].value > 0
    for name in ("appchaind_p2p_peers_dropped", "appchaind_rpc_dropped_subscribers"):
        assert families[name].type == "counter"
    promtool = shutil.which("promtool")
    if promtool is not None:
        check = subprocess.run(
            [promtool, "check", "metrics"], input=metrics, capture_output=True, text=True
        )
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr
    # The daemon runs the GC schedule: a full collection at start, a young one per commit.
    counts = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("appchaind_state_gc_pause_seconds_count")
    ]
    assert counts and counts[0] >= 20


def test_kill_one_validator_then_it_catches_up_and_votes(net: Localnet) -> None:
    net.start_all()
    net.wait_height([0, 1, 2, 3], 5)
    net.kill(3)
    stopped_at = net.height(0)
    net.wait_height([0, 1, 2], stopped_at + 10)
    net.start(3)
    target = net.height(0) + 5
    net.wait_height([0, 1, 2, 3], target)
    # It votes again: its address signs a later commit. A commit holds the first +2/3 of
    # precommits its proposer saw, so on a loaded machine the restarted validator's vote
    # may be left out of many commits in a row; look block by block, up to 60 of them.
    address = PrivateKey.load(net.homes[3] / "validator_key.json").address.hex()
    first = net.height(0) + 1
    for height in range(first, first + 60):
        net.wait_height([0], height)
        if address in net.get(0, f"/block/{height}")["last_commit"]["signers"]:
            break
    else:
        raise AssertionError(f"validator 3 signed none of blocks {first}..{first + 59}")
    blocks_agree(net, [0, 3], target)


def test_kill_all_under_load_then_resume_without_loss(net: Localnet) -> None:
    net.start_all()
    net.wait_height([0, 1, 2, 3], 3)
    key = PrivateKey(b"\x42" * 32)
    committed: list[str] = []
    pending: list[str] = []
    for n in range(60):
        result = net.submit(n % 4, net.faucet_tx(key, 1_000_000 + n))
        assert result["code"] == 0, result
        pending.append(result["tx_hash"])
        time.sleep(0.02)
        for h in list(pending):
            try:
                net.get(0, f"/tx/{h}")
            except Exception:
                continue
            committed.append(h)
            pending.remove(h)
    assert committed, "no tx was committed before the kill"
    height_before = net.height(0)
    for i in range(4):
        net.kill(i)
    net.start_all()
    net.wait_height([0, 1, 2, 3], height_before + 5)
    for h in committed:
        for i in range(4):
            assert net.get(i, f"/tx/{h}")["code"] == 0
    tip = min(net.height(i) for i in range(4))
    blocks_agree(net, [0, 1, 2, 3], tip)
    # No validator signed conflicting votes: no duplicate-vote evidence in any block, and in
    # each WAL (written across the kill and restart) one vote per height/round/kind.
    for h in range(1, tip + 1):
        block = net.get(0, f"/block/{h}")
        assert block["evidence"] == []
    for i in range(4):
        signed: dict[tuple[int, int, int], bytes] = {}
        for vote in net.own_votes_in_wal(i):
            key = (vote.height, vote.round, vote.kind)
            assert signed.setdefault(key, vote.block_hash) == vote.block_hash, (i, key)


def test_new_full_node_syncs_from_genesis_and_follows(net: Localnet) -> None:
    net.start_all()
    net.wait_height([0, 1, 2, 3], 30)
    full = net.add_full_node()
    started = time.monotonic()
    net.start(full)
    net.wait_until(lambda: net.height(full) >= net.height(0) - 1, "the full node reaching the tip")
    elapsed = time.monotonic() - started
    caught_up_at = net.height(full)
    print(f"full node synced {caught_up_at} blocks in {elapsed:.1f} s")
    net.wait_height([full], caught_up_at + 5)
    blocks_agree(net, [0, full], caught_up_at)


def test_three_of_four_stopped_halts_without_fork_then_resumes(net: Localnet) -> None:
    net.start_all()
    net.wait_height([0, 1, 2, 3], 5)
    for i in (1, 2, 3):
        net.stop(i)
    halted = net.height(0)
    time.sleep(2)
    assert net.height(0) <= halted + 1  # at most the block already decided
    for i in (1, 2, 3):
        net.start(i)
    net.wait_height([0, 1, 2, 3], halted + 5)
    blocks_agree(net, [0, 1, 2, 3], halted + 5)


def test_hostile_p2p_traffic_only_costs_the_offender(net: Localnet) -> None:
    net.start_all()
    net.wait_height([0, 1, 2, 3], 3)
    port = net.nodes[0].p2p_port
    # Garbage, a bogus handshake, an oversized frame header, and a flood of idle connections.
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(os.urandom(8192))
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"\x00" * 32 + (10**9).to_bytes(4, "big") + os.urandom(64))
    flood = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
    try:
        before = net.height(0)
        net.wait_height([0, 1, 2, 3], before + 5)
    finally:
        for s in flood:
            s.close()
    assert net.status(0)["peers"] == 3


def test_start_errors_are_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    from appchaind.localnet.processes import free_base_port

    base = free_base_port(1)
    home = tmp_path / "h"
    subprocess.run(
        [sys.executable, "-m", "appchaind.cli", "init", "--home", str(home)],
        check=True,
        capture_output=True,
    )
    config = home / "config.toml"
    text = config.read_text()
    for offset in range(4):  # p2p, RPC, HTTP, builder ports: none of the defaults
        text = text.replace(f"127.0.0.1:{26600 + offset}", f"127.0.0.1:{base + offset}")
    config.write_text(text)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", base))
        busy.listen()
        proc = subprocess.run(
            [sys.executable, "-m", "appchaind.cli", "start", "--home", str(home)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{base}" in proc.stderr
    assert "p2p.listen_address" in proc.stderr
    assert "Traceback" not in proc.stderr
    # A WAL damaged in the middle stops the node with the file and the offset, not a traceback.
    (home / "data" / "cs.wal").write_bytes(b"\x00\x00\x00\x05\x00\x00\x00\x00hello" + b"\x00" * 20)
    proc = subprocess.run(
        [sys.executable, "-m", "appchaind.cli", "start", "--home", str(home)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "cs.wal is corrupted at byte 0" in proc.stderr
    assert "Traceback" not in proc.stderr
    # A frame limit too small for the chain's blocks is named with the value to use.
    config.write_text(text.replace("max_frame_bytes = 16777216", "max_frame_bytes = 1048576"))
    proc = subprocess.run(
        [sys.executable, "-m", "appchaind.cli", "start", "--home", str(home)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "p2p.max_frame_bytes = 1048576 cannot carry this chain's blocks" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_peer_relaying_a_forged_vote_is_dropped(net: Localnet) -> None:
    import trio

    from appchaind.chain import types
    from appchaind.consensus.validators import ValidatorSet
    from appchaind.node.messages import VoteMessage, encode_message
    from config.genesis import load_genesis
    from p2p.peers import Channel
    from p2p.transport import PeerError, handshake

    net.start_all()
    net.wait_height([0, 1, 2, 3], 3)
    genesis = load_genesis(net.homes[0] / "genesis.json")
    validators = ValidatorSet.from_genesis(genesis.validator_set())
    signer = PrivateKey.load(net.homes[1] / "validator_key.json")
    index = validators.index_of(signer.address)
    stranger = PrivateKey(b"\x55" * 32)

    async def attack() -> str:
        stream = await trio.open_tcp_stream("127.0.0.1", net.nodes[0].p2p_port)
        conn = await handshake(stream, stranger, net.chain_id)
        # Forged prevotes for the next few heights: whichever is near the node's height when
        # it arrives is checked (a signature from the right validator, but zeroed).
        frames = []
        for height in range(net.height(0), net.height(0) + 5):
            vote = types.sign_vote(
                signer, net.chain_id, kind=types.PREVOTE, height=height, round=0,
                block_hash=b"", timestamp_ms=1, validator_index=index,
            )  # fmt: skip
            forged = types.Vote(
                vote.kind, vote.height, vote.round, vote.block_hash, vote.timestamp_ms,
                vote.validator, vote.validator_index, b"", bytes(64), b"",
            )  # fmt: skip
            frames.append(bytes([Channel.CONSENSUS]) + encode_message(VoteMessage(forged)))
        with trio.fail_after(30):
            try:
                for frame in frames:
                    await conn.send_frame(frame)
                while True:
                    await conn.receive_frame()
            except (PeerError, trio.BrokenResourceError, trio.ClosedResourceError):
                return "dropped"

    assert trio.run(attack) == "dropped"
    log = (net.homes[0] / "node.log").read_text()
    assert "invalid signature on a vote" in log
    before = net.height(0)
    net.wait_height([0, 1, 2, 3], before + 3)
