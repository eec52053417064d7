"""The soak's fault-injecting TCP proxy (appchaind/localnet/proxy.py, issue 16): bytes
cross it intact and in order whatever the delays, jitter and stalls; a cut connection is
seen as closed at both ends; faults change at run time, in process and over the proxy
process's stdin."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest
import trio

from appchaind.localnet.proxy import NO_FAULTS, Faults, Link, ProxyProcess


async def _echo(stream: trio.SocketStream) -> None:
    """Sends back everything it receives, then half-closes."""
    try:
        while data := await stream.receive_some(65536):
            await stream.send_all(data)
        await stream.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def _echo_server(nursery: trio.Nursery) -> int:
    return await _serve(nursery, _echo)


async def _serve(nursery: trio.Nursery, handler: Callable[[trio.SocketStream], Any]) -> int:
    """Serves ``handler`` on a free loopback port, which it returns."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, handler, listeners)
    return int(listeners[0].socket.getsockname()[1])


async def _proxied(nursery: trio.Nursery, faults: Faults = NO_FAULTS) -> tuple[Link, int]:
    target = await _echo_server(nursery)
    link = Link(("127.0.0.1", 0), ("127.0.0.1", target), seed=7, faults=faults)
    port = await nursery.start(link.run)
    return link, port


async def _read_all(stream: trio.SocketStream) -> bytes:
    received = bytearray()
    while data := await stream.receive_some(65536):
        received += data
    return bytes(received)


async def _closed(stream: trio.SocketStream) -> bool:
    """True once the other end has closed or reset the connection."""
    try:
        while await stream.receive_some(65536):
            pass
    except trio.BrokenResourceError:
        pass
    return True


async def test_bytes_arrive_intact_and_in_order_through_delay_jitter_and_stalls() -> None:
    faults = Faults(delay_ms=20, jitter_ms=30, stall=0.3, stall_ms=40)
    rng = random.Random(1)
    chunks = [rng.randbytes(rng.randrange(1, 5000)) for _ in range(120)]
    async with trio.open_nursery() as nursery:
        link, port = await _proxied(nursery, faults)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        started = trio.current_time()
        async with trio.open_nursery() as inner:
            inner.start_soon(_send_chunks, stream, chunks)
            echoed = await _read_all(stream)
        # Every chunk waited at least the fixed delay, each way: nothing came early.
        assert trio.current_time() - started >= 2 * 0.020
        await stream.aclose()
        nursery.cancel_scope.cancel()
    assert echoed == b"".join(chunks)
    stats = link.stats
    assert stats.connections == 1 and stats.bytes == 2 * len(echoed)
    assert stats.delayed == stats.chunks and stats.stalls > 0 and stats.cuts == 0


async def _send_chunks(stream: trio.SocketStream, chunks: list[bytes]) -> None:
    for chunk in chunks:
        await stream.send_all(chunk)
        await trio.sleep(0.001)  # separate reads at the proxy, so each draws its own faults
    await stream.send_eof()


async def test_a_cut_connection_is_seen_as_closed_at_both_ends() -> None:
    ended = trio.Event()

    async def server(stream: trio.SocketStream) -> None:
        await _closed(stream)
        ended.set()

    async with trio.open_nursery() as nursery:
        target = await _serve(nursery, server)
        link = Link(("127.0.0.1", 0), ("127.0.0.1", target), faults=Faults(cut=1.0))
        port = await nursery.start(link.run)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"first chunk")
        assert await _closed(stream)
        await ended.wait()  # the server's end was closed too
        assert link.stats.cuts == 1
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_faults_change_at_run_time_on_a_live_connection() -> None:
    async with trio.open_nursery() as nursery:
        link, port = await _proxied(nursery)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"ping")
        assert await stream.receive_some(100) == b"ping"
        assert link.stats.delayed == 0
        link.faults = Faults(delay_ms=30)
        started = trio.current_time()
        await stream.send_all(b"slow")
        assert await stream.receive_some(100) == b"slow"
        assert trio.current_time() - started >= 0.060 and link.stats.delayed == 2
        link.faults = Faults(cut=1.0)
        await stream.send_all(b"cut")
        assert await _closed(stream)
        await stream.aclose()
        nursery.cancel_scope.cancel()


def test_bad_faults_are_refused_with_the_setting_named() -> None:
    with pytest.raises(ValueError, match="delay_ms"):
        Faults(delay_ms=-1)
    with pytest.raises(ValueError, match="cut must be a probability"):
        Faults(cut=1.5)
    with pytest.raises(ValueError, match="unknown fault 'loss'"):
        Faults.from_json({"loss": 0.1})


def test_the_proxy_process_forwards_and_takes_its_faults_on_stdin() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    target = server.getsockname()[1]

    def echo_forever() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                while data := conn.recv(65536):
                    conn.sendall(data)

    threading.Thread(target=echo_forever, daemon=True).start()
    proxy = ProxyProcess([(0, "127.0.0.1", target), (0, "127.0.0.1", target)], seed=3)
    try:
        assert len(proxy.ports) == 2 and all(proxy.ports)
        with socket.create_connection(("127.0.0.1", proxy.ports[1]), timeout=30) as client:
            client.sendall(b"hello")
            assert client.recv(100) == b"hello"
            proxy.set(Faults(delay_ms=10, jitter_ms=5), link=1)
            client.sendall(b"again")
            assert client.recv(100) == b"again"
            stats = proxy.stats()
            assert stats[1].delayed == 2 and stats[0].connections == 0
            proxy.set(Faults(cut=1.0))  # every link
            client.sendall(b"x")
            try:
                assert client.recv(100) == b""
            except ConnectionResetError:
                pass
        with pytest.raises(ValueError, match="unknown fault"):
            proxy._ask({"faults": {"loss": 1}})
        with pytest.raises(ValueError, match="link must be null or from 0 to 1"):
            proxy._ask({"link": 5, "faults": {}})
        assert proxy.stats()[1].cuts == 1
    finally:
        proxy.close()
        server.close()
    assert proxy.proc.returncode == 0
