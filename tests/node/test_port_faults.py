"""A socket-level fault matrix against every listening port of a running validator.

A 4-validator localnet of real processes; node 0 is attacked on its RPC, HTTP and p2p
ports, one fault at a time: resets before sending, after a partial frame, while a
response or a stream is being written, with a ``broadcast_tx`` commit waiter pending;
half-closes mid-frame; clients that never read; bursts of 500 connects and resets.
After each fault the attacked node must still be running, answer on every port, and
keep committing with its peers. (Before the connection guard, the first reset on the
RPC port stopped the whole validator.)
"""

from __future__ import annotations

import re
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from appchaind.chain.crypto import PrivateKey
from appchaind.localnet.processes import Localnet
from appchaind.rpc.protocol import request_frame
from p2p.transport import handshake

pytestmark = pytest.mark.slow

TARGET = 0
BURST = 500


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    localnet = Localnet(tmp_path_factory.mktemp("faults") / "net", spare_nodes=0)
    localnet.start_all()
    try:
        localnet.wait_height([0, 1, 2, 3], 2)
        yield localnet
    finally:
        localnet.close()


# ---------------------------------------------------------------------- socket tools


def _connect(port: int, *, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    return sock


def _reset(sock: socket.socket) -> None:
    """Closes with an RST instead of a FIN (SO_LINGER on, timeout 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _read_until_closed(sock: socket.socket, limit_s: float = 30.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = bytearray()
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return bytes(received)


def _status_frame(request_id: int = 1) -> bytes:
    return request_frame(request_id, "status", {})


def _rpc_port(net: Localnet) -> int:
    return net.nodes[TARGET].rpc_port


def _http_port(net: Localnet) -> int:
    return net.nodes[TARGET].http_port


def _p2p_port(net: Localnet) -> int:
    return net.nodes[TARGET].p2p_port


def _rpc_status(net: Localnet) -> dict[str, object]:
    """A status request answered on a fresh RPC connection."""
    from appchaind.rpc.protocol import FrameDecoder, unpack

    sock = _connect(_rpc_port(net))
    try:
        sock.sendall(_status_frame(7))
        decoder = FrameDecoder(1 << 20)
        while True:
            chunk = sock.recv(65536)
            assert chunk, "the RPC port closed the connection without answering status"
            payloads = decoder.feed(chunk)
            if payloads:
                kind, request_id, error, result = unpack(payloads[0], 1 << 20)
                assert (kind, request_id, error) == (1, 7, None), (kind, request_id, error)
                return result
    finally:
        sock.close()


def _metric(net: Localnet, name: str, **labels: str) -> float:
    text = net.get_text(TARGET, "/metrics")
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.index("}")]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _markets(net: Localnet) -> list[str]:
    return [m["market"] for m in net.get(TARGET, "/markets")["markets"]]


def _node_log(net: Localnet, tail: int = 3000) -> str:
    """The attacked node's log (its last ``tail`` characters; 0: all of it)."""
    text = (net.homes[TARGET] / "node.log").read_text()
    return text[-tail:] if tail else text


def assert_node_serves(net: Localnet, since_height: int) -> None:
    """Node 0 is running, answers on RPC, HTTP and p2p, and commits with its peers."""
    proc = net.procs[TARGET]
    assert proc.poll() is None, f"node {TARGET} exited ({proc.returncode}):\n{_node_log(net)}"
    status = _rpc_status(net)
    assert status["chain_id"] == net.chain_id
    assert net.status(TARGET) is not None, "the HTTP port does not answer /status"
    net.wait_height([0, 1, 2, 3], since_height + 2)
    assert proc.poll() is None, f"node {TARGET} exited:\n{_node_log(net)}"
    # A contained bug is still a bug: no connection may have ended on one.
    bugs = [line for line in _node_log(net, 0).splitlines() if "reason=internal" in line]
    assert not bugs, f"a connection ended on a bug in the node:\n{bugs[0]}"
    # p2p: its peers are still connected to it (it commits with them) and it accepts anew.
    peers = net.get(TARGET, "/net_info")["n_peers"]
    assert peers >= 3, f"node {TARGET} has {peers} peers"
    _connect(_p2p_port(net)).close()


def _restart_if_stopped(net: Localnet) -> None:
    """Restarts node 0 if an earlier fault stopped it (or left it not answering)."""
    end = time.monotonic() + 10
    while net.procs[TARGET].poll() is None and time.monotonic() < end:
        if net.status(TARGET) is not None:
            return
        time.sleep(0.2)
    net.kill(TARGET)
    net.start(TARGET)
    net.wait_until(lambda: net.status(TARGET) is not None, f"node {TARGET} restarted")


# ---------------------------------------------------------------------- RPC faults


def rpc_status_then_reset(net: Localnet) -> None:
    """The issue's reproduction: one valid request, then a reset."""
    sock = _connect(_rpc_port(net))
    sock.sendall(_status_frame())
    _reset(sock)


def rpc_status_read_then_reset(net: Localnet) -> None:
    sock = _connect(_rpc_port(net))
    sock.sendall(_status_frame())
    assert sock.recv(65536)
    _reset(sock)


def rpc_reset_before_sending(net: Localnet) -> None:
    _reset(_connect(_rpc_port(net)))


def rpc_reset_after_partial_frame(net: Localnet) -> None:
    sock = _connect(_rpc_port(net))
    data = _status_frame()
    sock.sendall(data[: len(data) // 2])
    time.sleep(0.2)
    _reset(sock)


def rpc_reset_while_responses_written(net: Localnet) -> None:
    """Many large replies queued (100-level books, pipelined) to a client with a tiny
    receive buffer, which then resets."""
    sock = _connect(_rpc_port(net), rcvbuf=1024)
    markets = _markets(net)
    requests = b"".join(
        request_frame(i, "book", {"market": markets[i % len(markets)], "depth": 100})
        for i in range(1, 400)
    )
    sock.sendall(requests)
    time.sleep(0.5)
    _reset(sock)


def rpc_reset_while_streaming(net: Localnet) -> None:
    """Subscribed to every stream; reset once blocks have been published to it."""
    sock = _connect(_rpc_port(net), rcvbuf=1024)
    markets = _markets(net)
    subscriptions = [request_frame(1, "subscribe", {"stream": "blocks"})]
    for i, symbol in enumerate(markets):
        subscriptions.append(
            request_frame(10 + i, "subscribe", {"stream": "book", "market": symbol})
        )
        subscriptions.append(
            request_frame(20 + i, "subscribe", {"stream": "trades", "market": symbol})
        )
    sock.sendall(b"".join(subscriptions))
    net.wait_height([TARGET], net.height(TARGET) + 3)
    _reset(sock)


def rpc_reset_with_commit_waiter(net: Localnet) -> None:
    """A ``broadcast_tx`` in commit mode, reset while its reply waits for the commit; the
    tx still commits."""
    key = PrivateKey.generate()
    raw = net.faucet_tx(key, 1_000_000)
    sock = _connect(_rpc_port(net))
    sock.sendall(request_frame(1, "broadcast_tx", {"tx": raw, "mode": "commit"}))
    time.sleep(0.05)
    _reset(sock)
    from appchaind.chain import types

    tx_hash = types.tx_hash(raw).hex()
    net.wait_until(
        lambda: "error" not in _get_or_error(net, f"/tx/{tx_hash}"),
        f"tx {tx_hash} committed after its waiter's client reset",
    )


def _get_or_error(net: Localnet, path: str) -> dict[str, object]:
    import urllib.error

    try:
        return net.get(TARGET, path)
    except urllib.error.HTTPError as exc:
        return {"error": exc.code}


def rpc_half_close_mid_frame(net: Localnet) -> None:
    """Half a request, then shutdown(SHUT_WR): the server closes its side too."""
    sock = _connect(_rpc_port(net))
    data = _status_frame()
    sock.sendall(data[:5])
    sock.shutdown(socket.SHUT_WR)
    _read_until_closed(sock)
    sock.close()


def rpc_half_close_after_request(net: Localnet) -> None:
    """A whole request, then shutdown(SHUT_WR): the reply still comes, then EOF."""
    sock = _connect(_rpc_port(net))
    sock.sendall(_status_frame(3))
    sock.shutdown(socket.SHUT_WR)
    received = _read_until_closed(sock)
    sock.close()
    assert len(received) > 4, "no reply to a request sent before a half-close"


def rpc_subscriber_never_reads(net: Localnet) -> None:
    """Subscribed to blocks and books, never reading, for 10 blocks; the chain commits
    meanwhile (checked by the caller), then the client resets."""
    sock = _connect(_rpc_port(net), rcvbuf=1024)
    markets = _markets(net)
    frames = [request_frame(1, "subscribe", {"stream": "blocks"})]
    frames += [
        request_frame(2 + i, "subscribe", {"stream": "book", "market": s})
        for i, s in enumerate(markets)
    ]
    sock.sendall(b"".join(frames))
    start = net.height(TARGET)
    net.wait_height([0, 1, 2, 3], start + 10)
    _rpc_status(net)
    _reset(sock)


def rpc_burst(net: Localnet) -> None:
    _burst(_rpc_port(net), _status_frame())


# ---------------------------------------------------------------------- HTTP faults


_GET_METRICS = b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n"


def http_reset_before_sending(net: Localnet) -> None:
    _reset(_connect(_http_port(net)))


def http_reset_after_partial_request(net: Localnet) -> None:
    sock = _connect(_http_port(net))
    sock.sendall(_GET_METRICS[:12])
    time.sleep(0.2)
    _reset(sock)


def http_reset_while_response_written(net: Localnet) -> None:
    sock = _connect(_http_port(net), rcvbuf=1024)
    sock.sendall(_GET_METRICS * 50)
    time.sleep(0.5)
    _reset(sock)


def http_half_close_mid_request(net: Localnet) -> None:
    sock = _connect(_http_port(net))
    sock.sendall(_GET_METRICS[:20])
    sock.shutdown(socket.SHUT_WR)
    _read_until_closed(sock)
    sock.close()


def http_client_never_reads(net: Localnet) -> None:
    """Pipelined requests whose replies are never read, held open for 5 blocks."""
    sock = _connect(_http_port(net), rcvbuf=1024)
    sock.sendall(_GET_METRICS * 200)
    net.wait_height([0, 1, 2, 3], net.height(TARGET) + 5)
    _reset(sock)


def http_garbage(net: Localnet) -> None:
    sock = _connect(_http_port(net))
    sock.sendall(b"\x00\xff garbage \r\n\r\n" * 10)
    _read_until_closed(sock)
    sock.close()


def http_burst(net: Localnet) -> None:
    _burst(_http_port(net), _GET_METRICS)


# ---------------------------------------------------------------------- p2p faults


def p2p_reset_before_sending(net: Localnet) -> None:
    _reset(_connect(_p2p_port(net)))


def p2p_reset_mid_handshake(net: Localnet) -> None:
    sock = _connect(_p2p_port(net))
    sock.sendall(b"\x01" * 16)  # half an ephemeral key
    time.sleep(0.2)
    _reset(sock)


def p2p_reset_while_node_writes(net: Localnet) -> None:
    """Our ephemeral key sent, the node's auth frame on its way: reset."""
    sock = _connect(_p2p_port(net), rcvbuf=1024)
    sock.sendall(PrivateKey.generate().public_key[:32])
    _reset(sock)


def p2p_half_close_mid_handshake(net: Localnet) -> None:
    sock = _connect(_p2p_port(net))
    sock.sendall(b"\x02" * 10)
    sock.shutdown(socket.SHUT_WR)
    _read_until_closed(sock)
    sock.close()


def _as_peer(net: Localnet, then: Callable[[trio.SocketStream, object], object]) -> None:
    """Connects as a new peer (a full handshake with a fresh node key), then runs ``then``."""

    async def main() -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", _p2p_port(net))
        conn = await handshake(stream, PrivateKey.generate(), net.chain_id)
        await then(stream, conn)  # type: ignore[misc]

    trio.run(main)


def p2p_peer_reset_after_partial_frame(net: Localnet) -> None:
    async def then(stream: trio.SocketStream, conn: object) -> None:
        await stream.send_all(struct.pack(">I", 1000) + b"\x00" * 100)
        await trio.sleep(0.2)
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        stream.socket.close()

    _as_peer(net, then)


def p2p_peer_never_reads(net: Localnet) -> None:
    """A handshaken peer that reads nothing for 5 blocks, then resets."""

    async def then(stream: trio.SocketStream, conn: object) -> None:
        start = net.height(TARGET)
        while net.height(TARGET) < start + 5:
            await trio.sleep(0.1)
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        stream.socket.close()

    _as_peer(net, then)


def p2p_burst(net: Localnet) -> None:
    _burst(_p2p_port(net), b"\x03" * 20)


# ---------------------------------------------------------------------- bursts


def _burst(port: int, partial: bytes) -> None:
    """BURST connections: each sends nothing, or part of a message, then resets."""
    for i in range(BURST):
        try:
            sock = _connect(port)
        except OSError:
            continue  # the accept queue was full: that is the kernel's back-pressure
        if i % 2:
            try:
                sock.sendall(partial[: 1 + i % max(1, len(partial) - 1)])
            except OSError:
                pass
        _reset(sock)


FAULTS = [
    rpc_status_then_reset,
    rpc_status_read_then_reset,
    rpc_reset_before_sending,
    rpc_reset_after_partial_frame,
    rpc_reset_while_responses_written,
    rpc_reset_while_streaming,
    rpc_reset_with_commit_waiter,
    rpc_half_close_mid_frame,
    rpc_half_close_after_request,
    rpc_subscriber_never_reads,
    rpc_burst,
    http_reset_before_sending,
    http_reset_after_partial_request,
    http_reset_while_response_written,
    http_half_close_mid_request,
    http_client_never_reads,
    http_garbage,
    http_burst,
    p2p_reset_before_sending,
    p2p_reset_mid_handshake,
    p2p_reset_while_node_writes,
    p2p_half_close_mid_handshake,
    p2p_peer_reset_after_partial_frame,
    p2p_peer_never_reads,
    p2p_burst,
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.__name__ for f in FAULTS])
def test_node_survives(net: Localnet, fault: Callable[[Localnet], None]) -> None:
    _restart_if_stopped(net)  # each fault is judged on its own, not on an earlier one's
    assert_node_serves(net, net.height(TARGET))
    height = net.height(TARGET)
    fault(net)
    assert_node_serves(net, height)


def test_failures_are_logged_and_counted(net: Localnet) -> None:
    """A reset on the RPC port is one log line naming the port, the peer and the reason,
    and a count in appchaind_connections_failed_total."""
    _restart_if_stopped(net)
    before = _metric(net, "appchaind_connections_failed_total", port="rpc", reason="reset")
    # The reply is read first, so the reset reaches a server waiting in recv(): a reset
    # racing the accept queue or the reply's write could be seen as another reason.
    rpc_status_read_then_reset(net)
    net.wait_until(
        lambda: (
            _metric(net, "appchaind_connections_failed_total", port="rpc", reason="reset") > before
        ),
        "the RPC reset counted in metrics",
        deadline_s=30,
    )
    log = Path(net.homes[TARGET] / "node.log").read_text()
    lines = [
        line for line in log.splitlines() if "connection_failed" in line and "port=rpc" in line
    ]
    assert lines, "no connection_failed line for the RPC port"
    assert re.search(r"peer=127\.0\.0\.1:\d+ reason=reset", lines[-1]), lines[-1]
    assert "Traceback" not in log
    assert_node_serves(net, net.height(TARGET))
