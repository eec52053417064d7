"""Peer connections on loopback: handshake, channels, and hostile input that must only
cost the offender its connection."""

from __future__ import annotations

import os
import socket

import pytest
import trio
import trio.testing

from appchaind.chain.crypto import PrivateKey
from p2p.peers import WRITE_COALESCE_BYTES, Channel, Peer, PeerManager, PeerMisbehaved
from p2p.transport import PeerError, handshake

CHAIN = "p2p-test"


def make_manager(key: PrivateKey, inbox: list, peers: list[str] | None = None, **kw) -> PeerManager:
    async def on_message(peer: Peer, channel: int, payload: bytes) -> None:
        if payload == b"poison":
            raise PeerMisbehaved("sent poison")
        if payload == b"trips a bug":
            raise KeyError("a bug in one message's handling")
        inbox.append((peer.node_id, channel, payload))

    return PeerManager(
        node_key=key, chain_id=CHAIN, listen_host="127.0.0.1", listen_port=0,
        persistent_peers=peers or [], on_message=on_message, dial_backoff_min_ms=20,
        dial_backoff_max_ms=200, handshake_timeout_ms=kw.pop("handshake_timeout_ms", 2000), **kw,
    )  # fmt: skip


async def wait_until(predicate, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def test_handshake_in_memory_and_wrong_expected_id() -> None:
    a, b, c = PrivateKey(b"\x01" * 32), PrivateKey(b"\x02" * 32), PrivateKey(b"\x03" * 32)
    s1, s2 = trio.testing.memory_stream_pair()
    results: dict[str, object] = {}

    async def side(name, stream, key, expected):
        try:
            results[name] = await handshake(stream, key, CHAIN, expected_node_id=expected)
        except PeerError as exc:
            results[name] = exc

    async with trio.open_nursery() as n:
        n.start_soon(side, "a", s1, a, c.address.hex())  # expects c, gets b
        n.start_soon(side, "b", s2, b, None)
    assert isinstance(results["a"], PeerError)
    assert "dialled" in str(results["a"])


async def test_chain_id_mismatch_is_refused() -> None:
    a, b = PrivateKey(b"\x01" * 32), PrivateKey(b"\x02" * 32)
    s1, s2 = trio.testing.memory_stream_pair()
    errors = []

    async def side(stream, key, chain):
        try:
            await handshake(stream, key, chain)
        except PeerError as exc:
            errors.append(str(exc))

    async with trio.open_nursery() as n:
        n.start_soon(side, s1, a, "chain-a")
        n.start_soon(side, s2, b, "chain-b")
    assert any("on chain" in e for e in errors)


async def test_three_nodes_connect_and_exchange_messages() -> None:
    keys = [PrivateKey(bytes([i + 10]) * 32) for i in range(3)]
    inboxes: list[list] = [[], [], []]
    managers = [make_manager(keys[i], inboxes[i]) for i in range(2)]
    async with trio.open_nursery() as nursery:
        ports = [await nursery.start(m.run) for m in managers]
        # Node 2 dials the others as persistent peers.
        peers = [f"{keys[i].address.hex()}@127.0.0.1:{ports[i]}" for i in range(2)]
        managers.append(make_manager(keys[2], inboxes[2], peers))
        await nursery.start(managers[2].run)
        await wait_until(lambda: len(managers[2].peers) == 2)
        managers[2].broadcast(Channel.CONSENSUS, b"vote")
        await wait_until(lambda: all(inboxes[i] for i in range(2)))
        assert inboxes[0] == [(keys[2].address.hex(), Channel.CONSENSUS, b"vote")]
        assert managers[0].statistics().peers == 1
        nursery.cancel_scope.cancel()


async def _one_connected_pair(nursery, **kw):
    a, b = PrivateKey(b"\x21" * 32), PrivateKey(b"\x22" * 32)
    inbox_a: list = []
    ma = make_manager(a, inbox_a, **kw)
    port = await nursery.start(ma.run)
    mb = make_manager(b, [], [f"{a.address.hex()}@127.0.0.1:{port}"], **kw)
    await nursery.start(mb.run)
    await wait_until(lambda: len(ma.peers) == 1)
    return ma, mb, inbox_a, port, a


async def test_misbehaving_peer_is_dropped_and_redialled() -> None:
    async with trio.open_nursery() as nursery:
        ma, mb, inbox_a, _port, a = await _one_connected_pair(nursery)
        mb.send_to(a.address.hex(), Channel.MEMPOOL, b"poison")
        await wait_until(lambda: ma.dropped_total >= 1)
        # The persistent peer comes back after back-off, and good messages flow again.
        await wait_until(lambda: len(mb.peers) == 1 and len(ma.peers) == 1)
        await wait_until(
            lambda: mb.send_to(a.address.hex(), Channel.MEMPOOL, b"fine") and bool(inbox_a)
        )
        assert inbox_a[-1][2] == b"fine"
        nursery.cancel_scope.cancel()


async def test_a_bug_handling_one_peers_message_ends_that_peer_only() -> None:
    """An unexpected exception from the node's handler of one peer's message closes that
    peer (counted as an internal failure), not the peer manager or the node."""
    async with trio.open_nursery() as nursery:
        ma, mb, inbox_a, _port, a = await _one_connected_pair(nursery)
        mb.send_to(a.address.hex(), Channel.MEMPOOL, b"trips a bug")
        await wait_until(lambda: ma.guard.statistics().failures["internal"] == 1)
        await wait_until(lambda: len(mb.peers) == 1 and len(ma.peers) == 1)
        await wait_until(
            lambda: mb.send_to(a.address.hex(), Channel.MEMPOOL, b"fine") and bool(inbox_a)
        )
        assert inbox_a[-1][2] == b"fine"
        nursery.cancel_scope.cancel()


async def test_garbage_wrong_handshake_oversized_frame_and_flood() -> None:
    async with trio.open_nursery() as nursery:
        ma, mb, inbox_a, port, a = await _one_connected_pair(nursery)
        dropped_before = ma.dropped_total

        # 1. Garbage instead of a handshake.
        s = await trio.open_tcp_stream("127.0.0.1", port)
        await s.send_all(os.urandom(4096))
        await wait_until(lambda: ma.dropped_total > dropped_before)
        await s.aclose()

        # 2. A proper handshake, then an oversized frame header.
        stranger = PrivateKey(b"\x33" * 32)
        s = await trio.open_tcp_stream("127.0.0.1", port)
        conn = await handshake(s, stranger, CHAIN)
        before = ma.dropped_total
        await s.send_all((ma.max_frame_bytes + 1000).to_bytes(4, "big") + b"\x00" * 64)
        await wait_until(lambda: ma.dropped_total > before)
        await conn.aclose()

        # 3. A valid connection that sends a forged (unauthenticated) frame.
        s = await trio.open_tcp_stream("127.0.0.1", port)
        conn = await handshake(s, stranger, CHAIN)
        before = ma.dropped_total
        await s.send_all((100).to_bytes(4, "big") + os.urandom(100))
        await wait_until(lambda: ma.dropped_total > before)
        await conn.aclose()

        # 4. A flood of idle connections: at most 2 × max_inbound_peers handshakes at once.
        ma.max_inbound_peers = 5
        socks = []
        for _ in range(60):
            sock = socket.create_connection(("127.0.0.1", port))
            socks.append(sock)
        await trio.sleep(0.2)
        assert 0 < ma.statistics().handshakes_in_progress <= 10
        for sock in socks:
            sock.close()

        # Through all of it the real peer stayed connected and keeps talking.
        await wait_until(lambda: len(ma.peers) >= 1)
        assert mb.send_to(a.address.hex(), Channel.CONSENSUS, b"still here")
        await wait_until(lambda: any(m[2] == b"still here" for m in inbox_a))
        nursery.cancel_scope.cancel()


async def test_slow_peer_is_dropped_when_its_queue_fills() -> None:
    async with trio.open_nursery() as nursery:
        ma, mb, inbox_a, _port, a = await _one_connected_pair(nursery)
        peer = mb.peers[a.address.hex()]
        # Queue far more than the queue holds without yielding: the peer must be dropped.
        results = [
            peer.send(Channel.CONSENSUS, b"x" * 10) for _ in range(mb.send_queue_messages + 10)
        ]
        assert results[-1] is False
        assert peer.closed_reason is not None and "too slow" in peer.closed_reason
        nursery.cancel_scope.cancel()


async def test_messages_queued_together_go_out_in_one_write_and_arrive_whole_in_order() -> None:
    """500 messages queued without yielding (as a busy node queues votes, gossip and block
    requests) reach the peer complete and in order, in a few writes of at most about the
    coalescing limit each (750 KB: three or four), not one write per message."""
    async with trio.open_nursery() as nursery:
        ma, mb, inbox_a, _port, a = await _one_connected_pair(nursery)
        peer = mb.peers[a.address.hex()]
        writes: list[int] = []
        stream = peer.conn._stream
        send_all = stream.send_all

        async def counting_send_all(data: bytes) -> None:
            writes.append(len(data))
            await send_all(data)

        stream.send_all = counting_send_all  # type: ignore[method-assign]
        sizes = [1 + (i * 7919) % 3000 for i in range(500)]
        sent = [bytes([i % 256]) * size for i, size in enumerate(sizes)]
        assert all(peer.send(Channel.MEMPOOL, message) for message in sent)
        await wait_until(lambda: len(inbox_a) == len(sent))
        assert [m[2] for m in inbox_a] == sent
        assert 3 <= len(writes) <= 4
        assert max(writes) < WRITE_COALESCE_BYTES * 11 // 10
        assert sum(writes) == sum(len(m) + 1 + 4 + 16 for m in sent)  # channel, length, tag
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("count", [1])
async def test_unknown_channel_is_misbehaviour(count: int) -> None:
    async with trio.open_nursery() as nursery:
        ma, mb, inbox_a, port, a = await _one_connected_pair(nursery)
        stranger = PrivateKey(b"\x44" * 32)
        s = await trio.open_tcp_stream("127.0.0.1", port)
        conn = await handshake(s, stranger, CHAIN)
        await wait_until(lambda: stranger.address.hex() in ma.peers)
        await conn.send_frame(bytes([99]) + b"hello")
        await wait_until(lambda: stranger.address.hex() not in ma.peers)
        assert not any(m[0] == stranger.address.hex() for m in inbox_a)
        nursery.cancel_scope.cancel()


async def test_a_message_too_big_for_a_frame_is_refused_not_fatal() -> None:
    """Our own message over the frame limit (e.g. a large tx batch) must not raise out of the
    peer's writer task, which would take the whole peer manager (and the node) down."""
    async with trio.open_nursery() as nursery:
        ma, mb, inbox_a, _port, a = await _one_connected_pair(nursery, max_frame_bytes=2048)
        assert mb.send_to(a.address.hex(), Channel.MEMPOOL, b"x" * 2048) is False
        assert mb.send_to(a.address.hex(), Channel.MEMPOOL, b"fine")
        await wait_until(lambda: bool(inbox_a))
        assert inbox_a == [(mb.node_id, Channel.MEMPOOL, b"fine")]
        assert len(mb.peers) == 1
        nursery.cancel_scope.cancel()


async def test_inbound_limit_holds_when_handshakes_finish_together() -> None:
    async with trio.open_nursery() as nursery:
        inbox: list = []
        hub = make_manager(PrivateKey(b"\x61" * 32), inbox, max_inbound_peers=2)
        port = await nursery.start(hub.run)
        conns = []

        async def connect(i: int) -> None:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            try:
                conns.append(await handshake(stream, PrivateKey(bytes([0x70 + i]) * 32), CHAIN))
            except (PeerError, trio.BrokenResourceError):
                pass  # refused: the hub is full

        async with trio.open_nursery() as dialers:
            for i in range(6):
                dialers.start_soon(connect, i)
        await trio.sleep(0.3)
        assert sum(1 for p in hub.peers.values() if not p.outbound) <= 2
        for conn in conns:
            await conn.aclose()
        nursery.cancel_scope.cancel()
