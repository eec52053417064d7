"""The attackers of tests/node/test_exhaustion.py: a p2p peer that floods valid but
useless messages, a mempool flood over pipelined RPC, and an honest sender that retries
while the node answers busy."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import trio

from appchaind.chain import codec, types
from appchaind.chain.codes import retryable
from appchaind.chain.crypto import PrivateKey
from appchaind.exchange.txs import Faucet
from appchaind.localnet.processes import Localnet
from appchaind.node.messages import (
    CONSENSUS_MESSAGES,
    BlockRequest,
    RoundStatus,
    TxsMessage,
    VoteMessage,
    decode_message,
    encode_message,
)
from appchaind.rpc.protocol import FrameDecoder, request_frame, unpack
from p2p.peers import Channel
from p2p.transport import SecureConnection, handshake

__all__ = [
    "PeerFlood",
    "flood_peer",
    "mempool_flood",
    "submit_until_accepted",
    "sustained_flood",
]

#: Copies of one tx in each useless mempool message.
COPIES = 50
#: Votes received kept for replay.
VOTES_KEPT = 32
#: What the flooding peer sends, in turn.
KINDS = ("status", "txs", "votes", "block_request")


@dataclass
class PeerFlood:
    """What the flooding peer sent, by kind, and what ended it early (None: nothing)."""

    sent: Counter[str] = field(default_factory=Counter)
    error: str | None = None


@contextlib.contextmanager
def flood_peer(
    net: Localnet, node: int, tx: bytes, kinds: tuple[str, ...] = KINDS
) -> Iterator[PeerFlood]:
    """A peer (a fresh node key, a real handshake) connected to ``node`` that, until the
    block ends, sends as fast as it can, in turn, messages of ``kinds``: ``status``, the
    node's own round status back to it; ``txs``, ``COPIES`` copies of ``tx`` (a valid tx
    the node has seen); ``votes``, the votes it received from the node; ``block_request``,
    a request for block 1 (which it has). It reads everything the node sends it (a peer
    that stops reading is dropped, rightly, for a full send queue)."""
    flood = PeerFlood()
    stop, ready = threading.Event(), threading.Event()

    def run() -> None:
        try:
            trio.run(_flood, net, node, tx, kinds, flood, stop, ready)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            flood.error = repr(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="flood-peer", daemon=True)
    thread.start()
    ready.wait(60)
    try:
        yield flood
    finally:
        stop.set()
        thread.join(60)


async def _flood(
    net: Localnet,
    node: int,
    tx: bytes,
    kinds: tuple[str, ...],
    flood: PeerFlood,
    stop: threading.Event,
    ready: threading.Event,
) -> None:
    stream = await trio.open_tcp_stream(net.hosts[node], net.nodes[node].p2p_port)
    conn = await handshake(stream, PrivateKey.generate(), net.chain_id, max_frame_bytes=1 << 24)
    heard: dict[str, Any] = {"status": None, "votes": []}
    txs = bytes([Channel.MEMPOOL]) + encode_message(TxsMessage((tx,) * COPIES))
    old_block = bytes([Channel.BLOCKSYNC]) + encode_message(BlockRequest(1))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_listen, conn, heard)
        ready.set()
        turn = 0
        while not stop.is_set():
            turn += 1
            kind = kinds[turn % len(kinds)]
            if kind == "status" and heard["status"] is not None:
                await conn.send_frame(heard["status"])
            elif kind == "txs":
                await conn.send_frame(txs)
            elif kind == "block_request":
                await conn.send_frame(old_block)
            elif kind == "votes" and heard["votes"]:
                await conn.send_frame(heard["votes"][turn % len(heard["votes"])])
            else:
                await trio.sleep(0.001)  # nothing heard to replay yet
                continue
            flood.sent[kind] += 1
        nursery.cancel_scope.cancel()
    await conn.aclose()


async def _listen(conn: SecureConnection, heard: dict[str, Any]) -> None:
    """Keeps the node's latest round status and its latest votes, as frames to send."""
    while True:
        frame = await conn.receive_frame()
        if frame[0] != Channel.CONSENSUS:
            continue
        message = decode_message(CONSENSUS_MESSAGES, frame[1:], 1 << 24)
        if isinstance(message, RoundStatus):
            heard["status"] = frame
        elif isinstance(message, VoteMessage):
            heard["votes"] = [*heard["votes"][-VOTES_KEPT + 1 :], frame]


def mempool_flood(
    net: Localnet, node: int, keys: list[PrivateKey], *, connections: int = 1
) -> Counter[int]:
    """One faucet tx per key in ``keys`` (a key may repeat), pipelined over
    ``connections`` RPC connections to ``node`` from 127.0.0.1; the answers' codes
    counted (an RPC error, such as rate limiting, as minus its error code)."""
    height = max(net.height(node), 0)
    nonce = time.time_ns() // 1_000_000
    raws = []
    for i, key in enumerate(keys):
        body = Faucet(1_000)
        raws.append(codec.encode(types.sign_tx(key, net.chain_id, nonce + i, height + 200, body)))
    shares = [raws[k::connections] for k in range(connections)]
    codes: Counter[int] = Counter()
    threads = [
        threading.Thread(target=_pipeline, args=(net.nodes[node].rpc_port, share, codes))
        for share in shares
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


def _pipeline(port: int, raws: list[bytes], codes: Counter[int]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(
            b"".join(request_frame(i, "broadcast_tx", {"tx": raw}) for i, raw in enumerate(raws))
        )
        decoder, answered = FrameDecoder(1 << 24), 0
        while answered < len(raws):
            data = sock.recv(65536)
            if not data:
                raise AssertionError(f"the RPC port closed after {answered} of {len(raws)}")
            for payload in decoder.feed(data):
                _kind, _rid, error, result = unpack(payload, 1 << 24)
                codes[-error["code"] if error else result["code"]] += 1
                answered += 1


@contextlib.contextmanager
def sustained_flood(
    net: Localnet, node: int, *, connections: int = 4, rate: int = 900
) -> Iterator[Counter[int]]:
    """Until the block ends, faucet txs of fresh accounts at ``rate`` per second on each
    of ``connections`` RPC connections to ``node`` (under the port's per-connection rate
    limit), their answers read apart and their codes counted as :func:`mempool_flood`'s."""
    codes: Counter[int] = Counter()
    stop = threading.Event()
    socks = [socket.create_connection(("127.0.0.1", net.nodes[node].rpc_port), timeout=60)
             for _ in range(connections)]  # fmt: skip
    threads = [threading.Thread(target=_send_forever, args=(net, node, sock, rate, stop))
               for sock in socks]  # fmt: skip
    threads += [threading.Thread(target=_tally, args=(sock, codes)) for sock in socks]
    for thread in threads:
        thread.start()
    try:
        yield codes
    finally:
        stop.set()
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(60)
        for sock in socks:
            sock.close()


def _send_forever(
    net: Localnet, node: int, sock: socket.socket, rate: int, stop: threading.Event
) -> None:
    height, nonce, turn = max(net.height(node), 0), time.time_ns() // 1_000_000, 0
    while not stop.is_set():
        due = time.monotonic() + 0.1
        frames = []
        for _ in range(rate // 10):
            turn += 1
            key = PrivateKey.generate()
            tx = types.sign_tx(key, net.chain_id, nonce + turn, height + 200, Faucet(1_000))
            frames.append(request_frame(turn, "broadcast_tx", {"tx": codec.encode(tx)}))
        try:
            sock.sendall(b"".join(frames))
        except OSError:
            return
        stop.wait(max(0.0, due - time.monotonic()))


def _tally(sock: socket.socket, codes: Counter[int]) -> None:
    decoder = FrameDecoder(1 << 24)
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return
        if not data:
            return
        for payload in decoder.feed(data):
            _kind, _rid, error, result = unpack(payload, 1 << 24)
            codes[-error["code"] if error else result["code"]] += 1


def submit_until_accepted(
    net: Localnet, node: int, raw: bytes, deadline_s: float = 120.0
) -> dict[str, Any]:
    """``raw`` sent over HTTP, and again after the delay asked for while the node answers
    busy; the last answer."""
    end = time.monotonic() + deadline_s
    while True:
        answer = net.submit(node, raw)
        if not retryable(answer.get("code", 0)) or time.monotonic() > end:
            return answer
        time.sleep(max(answer.get("retry_after_ms", 0), 50) / 1000)
