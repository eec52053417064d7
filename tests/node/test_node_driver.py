"""In-process tests of the node's driver: mode switches, block sync input, gossip limits."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import trio
import trio.testing

from appchaind.chain import types
from appchaind.chain.codes import Code
from appchaind.chain.crypto import PrivateKey
from appchaind.home import demo_genesis, init_home
from appchaind.node import blocksync as blocksync_module
from appchaind.node import mempool_gossip as mempool_gossip_module
from appchaind.node.blocksync import PeerState
from appchaind.node.collector import MetricsCollector
from appchaind.node.kvapp import kv_app_factory
from appchaind.node.mempool import AddResult
from appchaind.node.messages import (
    BLOCKSYNC_MESSAGES,
    MEMPOOL_MESSAGES,
    BlockResponse,
    NoBlockResponse,
    RoundStatus,
    TxsMessage,
    VoteMessage,
    decode_message,
    encode_message,
)
from appchaind.node.node import Node, _SwitchMode
from p2p.peers import Channel, PeerMisbehaved

CHAIN = "driver-test"


def make_node(
    tmp_path: Path,
    other_power: int = 6,
    *,
    keys: tuple[PrivateKey, PrivateKey] | None = None,
    name: str = "home",
    validator: bool = True,
    mempool: dict[str, object] | None = None,
) -> tuple[Node, PrivateKey]:
    """A validator (power 10, the first proposer) and one other validator (not running)."""
    me, other = keys or (PrivateKey.generate(), PrivateKey.generate())
    genesis = demo_genesis(
        CHAIN, [("me", me, 10), ("other", other, other_power)], [], "2024-01-01T00:00:00Z"
    )
    init_home(
        tmp_path / name,
        moniker="me",
        chain_id=CHAIN,
        genesis_time="2024-01-01T00:00:00Z",
        genesis_doc=genesis,
        validator_key=me,
        config_overrides={
            "p2p": {"listen_address": "127.0.0.1:0"},
            "rpc": {"listen_address": "127.0.0.1:0"},
            "http": {"enabled": False},
            "node": {"validator": validator},
            "mempool": mempool or {},
        },
    )
    return Node(tmp_path / name, app_factory=kv_app_factory), other


def _now() -> int:
    return int(time.time() * 1000)


async def drain(node: Node) -> None:
    """Runs the consensus loop until no event is waiting."""
    while True:
        try:
            event = node._events_recv.receive_nowait()
        except trio.WouldBlock:
            await trio.sleep(0.01)
            try:
                event = node._events_recv.receive_nowait()
            except trio.WouldBlock:
                return
        if isinstance(event, _SwitchMode):
            await node._switch_mode(event)
        else:
            assert node._machine is not None
            await node._perform(node._machine.handle(event, _now()))


async def test_mode_switch_at_the_same_height_keeps_the_lock(tmp_path: Path) -> None:
    """A peer that claims a far height puts the node in sync mode and leaves: back in
    consensus at the same height, the node must still know its votes and its lock (the
    WAL holds them), or it could prevote another block after precommitting one."""
    node, other = make_node(tmp_path)
    try:
        async with trio.open_nursery() as nursery:
            node._nursery = nursery
            nursery.start_soon(node.verifier.run)
            machine = node._machine = node._new_machine(with_signer=True)
            await node._perform(machine.start(_now()))
            await drain(node)
            proposal = machine._proposals.get(0)
            assert proposal is not None, "the validator with most power proposes round 0"
            prevote = types.sign_vote(
                other, CHAIN, kind=types.PREVOTE, height=1, round=0,
                block_hash=proposal.block_hash, timestamp_ms=_now(), validator_index=1,
            )  # fmt: skip
            node.consensus_gossip.on_message(None, VoteMessage(prevote))  # type: ignore[arg-type]
            await drain(node)
            assert machine.locked_round == 0
            await node._switch_mode(_SwitchMode(True, 100))
            await drain(node)
            await node._switch_mode(_SwitchMode(False, 1))
            await drain(node)
            assert node._machine is not machine
            assert node._machine.height == 1
            assert node._machine.locked_round == 0
            assert node._machine.locked_block_hash == proposal.block_hash
            # Replays re-send our messages but log each only once.
            records = list(node.wal.replay())
            assert len(records) == len(set(records))
            nursery.cancel_scope.cancel()
    finally:
        node.wal.close()
        node.store.close()


async def test_tx_gossip_batches_fit_in_a_frame(tmp_path: Path) -> None:
    """Accepted txs are gossiped in batches that fit the p2p frame limit (a batch over it
    cannot be sent at all)."""
    node, _other = make_node(tmp_path)
    try:
        sent: list[bytes] = []
        node.peers.broadcast = lambda channel, payload, exclude=None: sent.append(payload)  # type: ignore[method-assign]
        txs = [bytes([i % 256]) * 16_000 for i in range(600)]  # ~9.6 MB of txs
        node.mempool_gossip.outbox = list(txs)
        while node.mempool_gossip.outbox:
            node.mempool_gossip.gossip_batch()
        limit = node.config.p2p.max_frame_bytes
        assert sent and all(1 + len(p) <= limit for p in sent)
        got = [tx for p in sent for tx in decode_message(MEMPOOL_MESSAGES, p, limit).txs]  # type: ignore[attr-defined]
        assert got == txs
    finally:
        node.wal.close()
        node.store.close()


async def test_a_peers_tx_flood_is_bounded_and_never_stalls_its_connection(
    tmp_path: Path,
) -> None:
    """Each TxsMessage must not start a task that nothing bounds (a peer flooding tx
    messages faster than they are verified would grow tasks and held txs without limit),
    and must not make the peer's reader wait either: the same connection carries that
    peer's votes and proposals. Beyond the admission slots a message is dropped, counted
    in ``appchaind_mempool_gossip_dropped_txs_total``."""
    node, _other = make_node(tmp_path)
    release = trio.Event()
    in_flight = 0
    most = 0
    calls = 0

    async def slow_add_many(raws):  # type: ignore[no-untyped-def]
        nonlocal in_flight, most, calls
        calls += 1
        in_flight += 1
        most = max(most, in_flight)
        await release.wait()
        in_flight -= 1
        return [AddResult(False, b"", Code.ALREADY_KNOWN, "test") for _ in raws]

    node.mempool.add_many = slow_add_many  # type: ignore[method-assign]
    payload = encode_message(TxsMessage((b"\x01" * 100, b"\x02" * 100)))
    peer = SimpleNamespace(node_id="flooder")
    try:
        async with trio.open_nursery() as nursery:
            node._nursery = nursery
            await nursery.start(node.mempool_gossip.run)
            for _ in range(1000):  # the reader never waits: all 1,000 are handled at once
                await node._on_peer_message(peer, Channel.MEMPOOL, payload)  # type: ignore[arg-type]
            await trio.sleep(0.1)
            slots = mempool_gossip_module.MAX_GOSSIP_TASKS
            assert most == slots
            assert node.mempool_gossip.dropped_total == 2 * (1000 - slots)
            MetricsCollector(node).collect()
            dropped = node.metrics.registry.get_sample_value(
                "appchaind_mempool_gossip_dropped_txs_total", {"chain_id": CHAIN}
            )
            assert dropped == 2 * (1000 - slots)
            release.set()
            await wait_for(lambda: in_flight == 0)
            # Slots free again: the next message is admitted, not dropped.
            await node._on_peer_message(peer, Channel.MEMPOOL, payload)  # type: ignore[arg-type]
            await wait_for(lambda: calls == slots + 1)
            assert node.mempool_gossip.dropped_total == 2 * (1000 - slots)
            nursery.cancel_scope.cancel()
    finally:
        node.wal.close()
        node.store.close()


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def test_block_sync_ignores_unasked_responses_and_refetches_a_bad_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Block sync keeps only responses it asked that peer for (unasked ones would pile up
    in memory), and a response whose commit does not decide the height is dropped and the
    height fetched again from another peer (it used to block that height for good)."""
    monkeypatch.setattr(blocksync_module, "SYNC_REQUEST_TIMEOUT_S", 0.3)
    me, other = PrivateKey.generate(), PrivateKey.generate()
    source, _ = make_node(tmp_path, other_power=1, keys=(me, other), name="source")
    syncing, _ = make_node(tmp_path, other_power=1, keys=(me, other), name="sync", validator=False)
    try:
        async with trio.open_nursery() as nursery:
            for node in (source, syncing):
                node._nursery = nursery
                nursery.start_soon(node.verifier.run)
            nursery.start_soon(source._consensus_loop)
            with trio.fail_after(20):
                await source.wait_committed(6)
            responses = {
                h: encode_message(BlockResponse(source.store.block(h), source.store.commit(h)))
                for h in range(1, 7)
            }
            good1 = source.store.commit(1)
            assert good1 is not None
            sigs = tuple(
                replace(sig, signature=bytes(64)) if sig.signature else sig
                for sig in good1.signatures
            )
            bad1 = encode_message(
                BlockResponse(source.store.block(1), replace(good1, signatures=sigs))
            )

            # A peer nobody asked sends blocks: nothing is kept.
            stranger = SimpleNamespace(node_id="stranger")
            for h in range(2, 7):
                await syncing._on_peer_message(stranger, Channel.BLOCKSYNC, responses[h])  # type: ignore[arg-type]
            assert syncing.blocksync._blocks == {}

            requests: list[tuple[str, int]] = []

            def send_to(node_id: str, channel: int, payload: bytes) -> bool:
                message = decode_message(BLOCKSYNC_MESSAGES, payload, 1 << 20)
                requests.append((node_id, message.height))  # type: ignore[attr-defined]
                return True

            syncing.peers.send_to = send_to  # type: ignore[method-assign]
            # Synced blocks are written without an fsync each (none was acknowledged to
            # anyone; the OS keeps them through a process crash); decided ones with one.
            writes: list[tuple[bool, bool]] = []
            real_write = syncing.store.write

            def write(batch: object, *, sync: bool = True) -> None:
                writes.append((syncing.syncing, sync))
                real_write(batch, sync=sync)  # type: ignore[arg-type]

            syncing.store.write = write  # type: ignore[method-assign]
            for name in ("p", "q"):
                syncing.blocksync.peer_states[name] = PeerState(latest_height=6)
            nursery.start_soon(syncing._consensus_loop)
            answered = 0
            with trio.fail_after(15):
                while syncing.latest_height < 6:
                    syncing.blocksync.step()
                    for node_id, h in requests[answered:]:
                        payload = bad1 if (h == 1 and node_id == requests[0][0]) else responses[h]
                        peer = SimpleNamespace(node_id=node_id)
                        await syncing._on_peer_message(peer, Channel.BLOCKSYNC, payload)  # type: ignore[arg-type]
                    answered = len(requests)
                    await trio.sleep(0.05)
            assert syncing.store.block(6) == source.store.block(6)
            assert (True, False) in writes
            assert all(fsynced != in_sync for in_sync, fsynced in writes), writes
            nursery.cancel_scope.cancel()
    finally:
        for node in (source, syncing):
            node.wal.close()
            node.store.close()


async def test_a_peer_that_claims_blocks_it_does_not_serve_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One RoundStatus claiming a far height put the node in block sync (no voting) for as
    long as the liar stayed connected: it never had to deliver. A peer that does not answer
    a block request in time, or answers "no block" for a height it claimed, is dropped."""
    monkeypatch.setattr(blocksync_module, "SYNC_REQUEST_TIMEOUT_S", 0.1)
    node, _other = make_node(tmp_path)
    closed: dict[str, str] = {}

    def make_peer(node_id: str) -> SimpleNamespace:
        return SimpleNamespace(
            node_id=node_id,
            send=lambda channel, payload: True,
            close=lambda reason: closed.setdefault(node_id, reason),
        )

    try:
        for name in ("silent", "denier"):
            node.peers.peers[name] = make_peer(name)  # type: ignore[assignment]
            status = RoundStatus(10**9, 0, 1, 10**9, 1)
            node.consensus_gossip.on_message(node.peers.peers[name], status)  # type: ignore[arg-type]
        node.blocksync.step()
        assert node.syncing
        asked = {h: who for h, (who, _t) in node.blocksync._requested.items()}
        denied = next(h for h, who in asked.items() if who == "denier")
        with pytest.raises(PeerMisbehaved):
            node.blocksync.on_message(node.peers.peers["denier"], NoBlockResponse(denied))  # type: ignore[arg-type]
        await trio.sleep(0.2)
        node.blocksync.step()
        assert "silent" in closed
    finally:
        node.wal.close()
        node.store.close()


def _failures(node: Node, port: str, reason: str) -> float:
    value = node.metrics.registry.get_sample_value(
        "appchaind_connections_failed_total",
        {"chain_id": CHAIN, "port": port, "reason": reason},
    )
    return value or 0.0


async def test_a_bug_admitting_one_peers_gossip_is_contained(tmp_path: Path) -> None:
    """A failure while admitting a peer's gossiped txs ends that batch only: the node's
    nursery keeps running, the failure is counted, and the admission slot is released
    (more messages than there are slots all get through)."""
    node, _other = make_node(tmp_path)

    async def broken_add_many(raws: object) -> list[AddResult]:
        raise KeyError("a bug in admission")

    node.mempool.add_many = broken_add_many  # type: ignore[method-assign]
    payload = encode_message(TxsMessage((b"\x01" * 100,)))
    peer = SimpleNamespace(node_id="gossiper")
    messages = 3 * mempool_gossip_module.MAX_GOSSIP_TASKS
    try:
        async with trio.open_nursery() as nursery:
            node._nursery = nursery
            await nursery.start(node.mempool_gossip.run)
            for _ in range(messages):
                await node._on_peer_message(peer, Channel.MEMPOOL, payload)  # type: ignore[arg-type]
                await trio.testing.wait_all_tasks_blocked()  # the failed batch let go its slot
            await wait_for(lambda: _failures(node, "mempool_gossip", "internal") == messages)
            nursery.cancel_scope.cancel()
    finally:
        node.wal.close()
        node.store.close()


async def test_a_failing_commit_listener_does_not_stop_the_node(tmp_path: Path) -> None:
    """A commit listener (the RPC streams' feed) that raises is contained: the block is
    committed already, the node goes on committing, and the failure is counted."""
    node, _other = make_node(tmp_path, other_power=1)  # 10 of 11: this node commits alone

    def broken_listener(block: types.Block, hashes: list[bytes], result: object) -> None:
        raise ValueError("a bug in one subscriber's view")

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            node.on_commit.insert(0, broken_listener)
            start = node.latest_height
            with trio.fail_after(60):
                await node.wait_committed(start + 3)
            assert _failures(node, "commit_listener", "internal") >= 3
            nursery.cancel_scope.cancel()
    finally:
        node.wal.close()
        node.store.close()


async def test_the_collector_feeds_the_mempools_totals_into_counters(tmp_path: Path) -> None:
    """Refusals, evictions and re-checks the mempool counts reach their Prometheus counters
    (once each: a second scrape adds only what happened since the first)."""
    from appchaind.node.collector import MetricsCollector

    node, _other = make_node(tmp_path)
    try:
        collector = MetricsCollector(node)

        def sample(name: str) -> float:
            value = node.metrics.registry.get_sample_value(name, {"chain_id": CHAIN})
            return value or 0.0

        pool = node.mempool
        pool.rejected_total, pool.evicted_total, pool.rechecked_total = 3, 2, 7
        collector.collect()
        collector.collect()
        assert sample("appchaind_mempool_failed_txs_total") == 3
        assert sample("appchaind_mempool_evicted_txs_total") == 2
        assert sample("appchaind_mempool_recheck_times_total") == 7
        pool.evicted_total = 5
        collector.collect()
        assert sample("appchaind_mempool_evicted_txs_total") == 5
    finally:
        node.wal.close()
        node.store.close()


async def test_a_local_block_size_caps_own_proposals_not_others(tmp_path: Path) -> None:
    """[mempool] max_block_txs is this node's choice for its own proposals: a proposal
    from another validator is judged by the chain's limit (genesis), or a node configured
    lower would prevote nil on valid blocks and could stall the chain."""
    node, _other = make_node(tmp_path, mempool={"max_block_txs": 2})
    assert node.genesis.params.max_block_txs > 2
    assert node.consensus_config.max_block_txs == node.genesis.params.max_block_txs
    assert node.budget.proposal_txs() == 2  # its own proposals: at most 2 txs


def test_own_votes_and_proposals_skip_peers_more_than_a_height_behind(tmp_path: Path) -> None:
    """A peer far behind catches up by block sync: our messages of a height it cannot
    use would only fill its send queue (a fast chain's filled a syncing peer's in
    under a second, and the peer was dropped again and again)."""
    node, _ = make_node(tmp_path)
    sent: dict[str, list[bytes]] = {}

    class _Peer:
        def __init__(self, name: str) -> None:
            self.name = name

        def send(self, channel: int, payload: bytes) -> bool:
            sent.setdefault(self.name, []).append(payload)
            return True

    try:
        for name in ("syncing", "previous", "current", "unknown"):
            node.peers.peers[name] = _Peer(name)  # type: ignore[assignment]
        heights = {"syncing": 7, "previous": 9, "current": 10}
        for name, height in heights.items():
            node.blocksync.peer_states[name] = PeerState(height=height)
        node._broadcast_consensus(b"vote", 10)
        assert sorted(sent) == ["current", "previous", "unknown"]
    finally:
        node.peers.peers.clear()
        node.store.close()
