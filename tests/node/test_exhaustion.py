"""Resource exhaustion against a running validator (issue 16): connection floods,
slow-loris senders, oversized requests, a peer flooding valid but useless p2p messages,
and mempool floods. Node 0 of a 2-validator localnet of real processes is attacked
(every block needs both validators' votes, so a node slowed by an attack shows at once);
after each attack its blocks keep coming, an honest client still gets its answer or its
tx in, and its memory stays bounded (its RSS, a loose bound: no timing is asserted).

Loopback has a whole /8: the attacker connects from 127.0.0.1, the honest client from
127.0.0.2, two hosts as the per-host connection limits see them.
"""

from __future__ import annotations

import contextlib
import http.client
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from appchaind.chain import types
from appchaind.chain.crypto import PrivateKey
from appchaind.localnet.processes import Localnet
from appchaind.rpc.protocol import FrameDecoder, request_frame, unpack
from tests.node.floods import flood_peer, mempool_flood, submit_until_accepted, sustained_flood

pytestmark = pytest.mark.slow

TARGET = 0
ATTACKER, HONEST = "127.0.0.1", "127.0.0.2"
LIMIT, PER_HOST, TIMEOUT_MS = 60, 30, 2_000
OVERRIDES = {
    "rpc": {
        "max_connections": LIMIT, "max_connections_per_host": PER_HOST,
        "request_timeout_ms": TIMEOUT_MS, "max_message_bytes": 64 * 1024,
    },
    "http": {
        "max_connections": LIMIT, "max_connections_per_host": PER_HOST,
        "request_timeout_ms": TIMEOUT_MS, "max_body_bytes": 64 * 1024,
    },
    "mempool": {"max_txs": 2_000, "max_txs_per_account": 20},
}  # fmt: skip
#: How much a node's RSS may grow over one attack (a loose bound: a leak of what the
#: attacker sent, a connection's buffers kept, would be far above it).
RSS_GROWTH_KB = 256 * 1024


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    localnet = Localnet(
        tmp_path_factory.mktemp("floods") / "net", 2, spare_nodes=0, config_overrides=OVERRIDES
    )
    localnet.start_all()
    try:
        localnet.wait_height([0, 1], 2)
        yield localnet
    finally:
        localnet.close()


@pytest.fixture
def rss(net: Localnet) -> Iterator[None]:
    """Node 0 is alive, committing, within its memory bound after the test."""
    before = _rss_kb(net)
    yield
    assert net.procs[TARGET].poll() is None, _log(net)
    net.wait_height([0, 1], net.height(TARGET) + 2)
    assert _rss_kb(net) < before + RSS_GROWTH_KB, (before, _rss_kb(net))


def _rss_kb(net: Localnet) -> int:
    status = Path(f"/proc/{net.procs[TARGET].pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


def _log(net: Localnet) -> str:
    return (net.homes[TARGET] / "node.log").read_text()


# ---------------------------------------------------------------------- clients


def _connect(port: int, source: str = ATTACKER) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    return sock


def _frames(sock: socket.socket, n: int = 1) -> list[list[object]]:
    """The next ``n`` RPC frames (fewer if the server closes first)."""
    decoder, out = FrameDecoder(1 << 24), []
    while len(out) < n:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        out += [unpack(p, 1 << 24) for p in decoder.feed(data)]
    return out


def _rpc_status(net: Localnet, source: str = HONEST) -> dict[str, object]:
    with _connect(net.nodes[TARGET].rpc_port, source) as sock:
        sock.sendall(request_frame(1, "status", {}))
        (reply,) = _frames(sock)
    assert reply[2] is None, reply
    return reply[3]  # type: ignore[return-value]


def _http_status(net: Localnet, source: str = HONEST) -> int:
    conn = http.client.HTTPConnection(
        "127.0.0.1", net.nodes[TARGET].http_port, timeout=30, source_address=(source, 0)
    )
    try:
        conn.request("GET", "/status")
        return conn.getresponse().status
    finally:
        conn.close()


def _closed(sock: socket.socket, deadline_s: float = 60.0) -> bytes:
    """What the server sent until it closed ``sock`` (fails after ``deadline_s``)."""
    received = bytearray()
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return bytes(received)
        except TimeoutError:
            continue
        if not data:
            return bytes(received)
        received += data
    raise AssertionError(f"the server kept the connection open; it sent {bytes(received)!r}")


# ---------------------------------------------------------------------- connection floods


def _refusals(socks: list[socket.socket], text: bytes, least: int) -> int:
    """How many of ``socks`` the server answered with ``text`` and closed, once at least
    ``least`` were (fails after a generous deadline)."""
    answered: dict[int, bytes] = {}
    end = time.monotonic() + 60
    while sum(text in a for a in answered.values()) < least:
        assert time.monotonic() < end, f"{len(answered)} answered: {list(answered.values())[:3]}"
        waiting = [s for s in socks if s.fileno() not in answered]
        readable, _, _ = select.select(waiting, [], [], 1.0)
        for sock in readable:
            answered[sock.fileno()] = _closed(sock)
    return sum(text in a for a in answered.values())


@pytest.mark.parametrize("port_name", ["rpc", "http"])
def test_a_connection_flood_from_one_host_leaves_room_for_the_others(
    net: Localnet, rss: None, port_name: str
) -> None:
    port = getattr(net.nodes[TARGET], f"{port_name}_port")
    before = net.height(TARGET)
    flood = [_connect(port) for _ in range(PER_HOST + 20)]
    try:
        # Past the per-host limit: refused with a clear answer, then closed.
        text = b"too many RPC connections from" if port_name == "rpc" else b"503 Service"
        assert _refusals(flood, text, 20) >= 20
        # While the flood holds its connections, a client on another host is served.
        if port_name == "rpc":
            assert _rpc_status(net)["chain_id"] == net.chain_id
        else:
            assert _http_status(net) == 200
        net.wait_height([0, 1], before + 2)
    finally:
        for sock in flood:
            sock.close()
    refused = [line for line in _log(net).splitlines() if "connection_refused" in line]
    assert any(f"port={port_name} " in line and "per host" in line for line in refused), refused


@pytest.mark.parametrize("port_name", ["rpc", "http"])
def test_a_flood_from_many_hosts_is_held_at_the_port_limit_and_served_after(
    net: Localnet, rss: None, port_name: str
) -> None:
    port = getattr(net.nodes[TARGET], f"{port_name}_port")
    flood = [_connect(port, f"127.0.1.{1 + i % 4}") for i in range(LIMIT + 20)]
    try:
        text = f"too many {port_name.upper()} connections (limit {LIMIT})".encode()
        assert _refusals(flood, text, 20) >= 20
        net.wait_height([0, 1], net.height(TARGET) + 2)
    finally:
        for sock in flood:
            sock.close()
    net.wait_until(lambda: _served(net, port_name), "an honest client served after the flood", 30)


def _served(net: Localnet, port_name: str) -> bool:
    with contextlib.suppress(AssertionError, OSError):
        if port_name == "rpc":
            return _rpc_status(net)["chain_id"] == net.chain_id
        return _http_status(net) == 200
    return False


# ---------------------------------------------------------------------- slow loris


def test_slow_loris_senders_are_timed_out_and_block_no_one(net: Localnet, rss: None) -> None:
    """Requests sent a byte at a time, never finished: each connection is answered with
    a timeout and closed after request_timeout_ms, and others are served meanwhile."""
    rpc, web = net.nodes[TARGET].rpc_port, net.nodes[TARGET].http_port
    slow = [_connect(rpc) for _ in range(10)] + [_connect(web) for _ in range(10)]
    starts = [(10_000).to_bytes(4, "big")] * 10 + [b"GET /status HTTP/1.1\r\nhost: x\r\nx-a: "] * 10
    for sock, start in zip(slow, starts, strict=True):
        sock.sendall(start)
    answers: dict[int, bytes] = {}
    stop = threading.Event()

    def trickle() -> None:  # a byte per connection every 0.2 s, until each is closed
        while not stop.is_set():
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(b"a")
            stop.wait(0.2)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        assert _rpc_status(net, ATTACKER)["chain_id"] == net.chain_id  # not blocked
        assert _http_status(net, ATTACKER) == 200
        for i, sock in enumerate(slow):
            answers[i] = _closed(sock)
    finally:
        stop.set()
        thread.join()
        for sock in slow:
            sock.close()
    timeout = f"within {TIMEOUT_MS / 1000:g} s".encode()
    assert all(timeout in answers[i] for i in range(10)), answers[0]
    assert all(answers[i].startswith(b"HTTP/1.1 408") for i in range(10, 20)), answers[10]


# ---------------------------------------------------------------------- oversized requests


def test_oversized_requests_get_a_clear_error_and_are_closed(net: Localnet, rss: None) -> None:
    with _connect(net.nodes[TARGET].rpc_port) as sock:
        sock.sendall((64 * 1024 + 1).to_bytes(4, "big") + b"\x00" * 1000)
        answer = _closed(sock)
    assert b"over the limit of 65536 bytes" in answer, answer
    with _connect(net.nodes[TARGET].http_port) as sock:
        sock.sendall(
            b"POST /tx HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 10000000\r\n\r\n" + b"{" * 1000
        )
        answer = _closed(sock)
    assert answer.startswith(b"HTTP/1.1 413") and b"larger than 65536 bytes" in answer, answer
    with _connect(net.nodes[TARGET].http_port) as sock:
        sock.sendall(b"GET /status HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 200_000 + b"\r\n\r\n")
        answer = _closed(sock)
    assert answer.startswith(b"HTTP/1.1 4"), answer
    assert _http_status(net) == 200 and _rpc_status(net)["chain_id"] == net.chain_id


# ---------------------------------------------------------------------- p2p


def test_a_peer_flooding_valid_useless_messages_slows_nothing(net: Localnet, rss: None) -> None:
    """A handshaken peer sends round statuses, copies of a committed tx and replays of
    the votes it received, as fast as it can; meanwhile blocks keep coming and a tx sent
    to the other validator commits on the flooded one."""
    known = net.faucet_tx(PrivateKey.generate(), 1_000)
    assert net.submit(TARGET, known)["code"] == 0
    with flood_peer(net, TARGET, known, ("status", "txs", "votes")) as flood:
        start = net.height(TARGET)
        honest = net.faucet_tx(PrivateKey.generate(), 1_000)
        assert net.submit(1, honest)["code"] == 0
        tx_hash = types.tx_hash(honest).hex()
        net.wait_until(lambda: _committed(net, tx_hash), "the honest tx committed", 120)
        net.wait_height([0, 1], start + 5)
        sent = dict(flood.sent)
    assert flood.error is None, flood.error
    assert sum(sent.values()) >= 1_000 and len(sent) == 3, sent


def test_a_peer_asking_for_an_old_block_as_fast_as_it_can_costs_only_itself(
    net: Localnet, rss: None
) -> None:
    """Each request for block 1 costs the node a store read and a response queued: a
    peer that asks faster than it takes the answers in is dropped once its send queue
    is full, and the chain goes on."""
    known = net.faucet_tx(PrivateKey.generate(), 1_000)
    with flood_peer(net, TARGET, known, ("block_request",)) as flood:
        start = net.height(TARGET)
        net.wait_height([0, 1], start + 3)
    assert flood.sent["block_request"] >= 1_000, flood.sent
    if flood.error is not None:  # dropped: for its full send queue, nothing else
        assert "send queue full (peer too slow)" in _log(net), flood.error


def _committed(net: Localnet, tx_hash: str) -> bool:
    with contextlib.suppress(OSError, ValueError):
        return bool(net.get(TARGET, f"/tx/{tx_hash}").get("height"))
    return False


# ---------------------------------------------------------------------- mempool


def test_one_account_flooding_the_mempool_is_held_to_its_share(net: Localnet, rss: None) -> None:
    key = PrivateKey.generate()
    codes = mempool_flood(net, TARGET, [key] * 200)
    assert codes[0] <= 20 + 1 and codes[41] > 0, codes  # ACCOUNT_QUEUE_FULL past 20 waiting
    assert set(codes) <= {0, 41, 44}, codes
    _honest_tx_commits(net)


def test_a_flood_from_many_accounts_is_refused_busy_and_an_honest_tx_gets_in(
    net: Localnet, rss: None
) -> None:
    with sustained_flood(net, TARGET) as codes:
        net.wait_until(lambda: codes[44] + codes[40] > 0, "busy refusals of the flood", 120)
        start = net.height(TARGET)
        _honest_tx_commits(net)
        net.wait_height([0, 1], start + 2)
        tallies = Counter(codes)
    assert set(tallies) <= {0, 40, 44}, tallies  # accepted, mempool full, busy


def _honest_tx_commits(net: Localnet) -> None:
    """A trader's tx sent to the flooded node, again while the node answers busy (after
    the delay it asks for), gets in and commits."""
    raw = net.faucet_tx(PrivateKey.generate(), 1_000)
    answer = submit_until_accepted(net, TARGET, raw)
    assert answer["code"] == 0, answer
    tx_hash = answer["tx_hash"]
    net.wait_until(lambda: _committed(net, tx_hash), f"honest tx {tx_hash} committed", 120)
