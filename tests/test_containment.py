"""The connection guard: what one connection raises ends that connection, not the node.

In process, on loopback: reasons read from naked and grouped exceptions, cancellation
passing through untouched, and a listener that keeps serving after its handlers fail.
The same guard on a running validator's ports: tests/node/test_port_faults.py.
"""

from __future__ import annotations

import logging
import socket
import struct

import pytest
import trio

from appchaind.containment import REASONS, ConnectionGuard, failure_reason
from appchaind.errors import StartupError


class _Garbage(Exception):
    """Stands for a port's protocol error."""


def _broken_by(cause: OSError) -> trio.BrokenResourceError:
    try:
        try:
            raise cause
        except OSError as exc:
            raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc
    except trio.BrokenResourceError as broken:
        return broken


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (_broken_by(ConnectionResetError(104, "reset")), "reset"),
        (ExceptionGroup("nursery", [_broken_by(ConnectionResetError(104, "r"))]), "reset"),
        (_broken_by(BrokenPipeError(32, "pipe")), "broken_pipe"),
        (trio.BrokenResourceError("gone"), "broken"),
        (trio.ClosedResourceError(), "closed"),
        (trio.TooSlowError(), "timeout"),
        (TimeoutError(), "timeout"),
        (OSError(22, "invalid"), "os_error"),
        (_Garbage("bad frame"), "protocol"),
        (KeyError("a bug"), "internal"),
        # A bug raised beside a connection fault is never hidden by it.
        (ExceptionGroup("n", [trio.ClosedResourceError(), ValueError("bug")]), "internal"),
        (ExceptionGroup("n", [ExceptionGroup("inner", [trio.TooSlowError()])]), "timeout"),
    ],
)
def test_reasons(exc: BaseException, reason: str) -> None:
    assert reason in REASONS
    assert failure_reason(exc, (_Garbage,))[0] == reason


async def test_run_contains_a_nursery_group_and_counts_it() -> None:
    seen: list[tuple[str, str]] = []
    guard = ConnectionGuard("rpc", on_failure=lambda port, reason: seen.append((port, reason)))

    async def handler() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            raise _broken_by(ConnectionResetError(104, "Connection reset by peer"))

    assert await guard.run(handler, peer="127.0.0.1:5") is None
    assert seen == [("rpc", "reset")]
    assert guard.statistics().failures["reset"] == 1
    assert sum(guard.statistics().failures.values()) == 1

    async def fine() -> int:
        return 7

    assert await guard.run(fine) == 7


async def test_cancellation_passes_through() -> None:
    """The node stopping is not a connection failure: Cancelled is never swallowed."""
    guard = ConnectionGuard("rpc")
    reached_after = False
    with trio.move_on_after(0.01) as scope:
        await guard.run(trio.sleep_forever)
        reached_after = True
    assert scope.cancelled_caught and not reached_after
    assert sum(guard.statistics().failures.values()) == 0


async def test_base_exceptions_pass_through() -> None:
    guard = ConnectionGuard("rpc")

    async def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await guard.run(interrupted)


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def test_listener_keeps_serving_after_failing_connections() -> None:
    """A handler bug, a reset and a protocol error each end one connection; the listener
    goes on, names each peer, and serves the next connection normally."""
    guard = ConnectionGuard("test", protocol_errors=(_Garbage,))
    peers: list[str] = []

    async def handler(stream: trio.SocketStream, peer: str) -> None:
        peers.append(peer)
        data = await stream.receive_some(100)
        if data == b"bug":
            raise KeyError("a bug in one request's handling")
        if data == b"garbage":
            raise _Garbage("unparseable")
        await stream.send_all(b"ok:" + data)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(guard.serve_listeners, handler, listeners)

        def client(payload: bytes | None) -> bytes:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            if payload is None:
                _reset(sock)
                return b""
            sock.sendall(payload)
            reply = sock.recv(100)
            sock.close()
            return reply

        assert await trio.to_thread.run_sync(client, b"bug") == b""
        assert await trio.to_thread.run_sync(client, None) == b""
        assert await trio.to_thread.run_sync(client, b"garbage") == b""
        assert await trio.to_thread.run_sync(client, b"hello") == b"ok:hello"
        while sum(guard.statistics().failures.values()) < 3:
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    failures = guard.statistics().failures
    assert failures["internal"] == 1
    assert failures["protocol"] == 1
    assert failures["reset"] == 1
    assert all(p.startswith("127.0.0.1:") for p in peers)


async def test_a_listener_that_cannot_accept_stops_with_one_line() -> None:
    """Not a connection's failure: the listening socket itself is unusable (shut down
    under it, so accept(2) fails with EINVAL), so serving ends with a StartupError whose
    one-line message says what to do."""
    guard = ConnectionGuard("test")
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listeners[0].socket.shutdown(socket.SHUT_RDWR)

    async def handler(stream: trio.SocketStream, peer: str) -> None:
        raise AssertionError("no connection can arrive")

    with pytest.raises(BaseExceptionGroup) as caught:
        await guard.serve_listeners(handler, listeners)
    matched, rest = caught.value.split(StartupError)
    assert matched is not None and rest is None
    leaf = matched.exceptions[0]
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    assert "test port stopped accepting" in str(leaf) and "\n" not in str(leaf)


def test_a_flood_of_refusals_is_counted_each_but_logged_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Connections refused over a port's limits: each counted (the metric's hook too),
    logged once per REFUSAL_LOG_S with the number refused since the last line."""
    import appchaind.containment as containment

    now = [1000.0]
    monkeypatch.setattr(containment.time, "monotonic", lambda: now[0])
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("appchaind.containment")
    logger.addHandler(handler)
    seen: list[tuple[str, str]] = []
    guard = ConnectionGuard("http", on_failure=lambda port, reason: seen.append((port, reason)))
    try:
        for i in range(500):
            guard.refuse(f"127.0.0.1:{40000 + i}", "too many HTTP connections (limit 5)")
        now[0] += containment.REFUSAL_LOG_S
        guard.refuse("127.0.0.1:1", "too many HTTP connections (limit 5)")
    finally:
        logger.removeHandler(handler)
    assert guard.statistics().failures["refused"] == 501
    assert seen == [("http", "refused")] * 501
    lines = [r.fields for r in records if r.getMessage() == "connection_refused"]  # type: ignore[attr-defined]
    assert [(f["refused"], f["refused_total"]) for f in lines] == [(1, 1), (500, 501)]
    assert lines[0]["why"] == "too many HTTP connections (limit 5)" and lines[0]["port"] == "http"
