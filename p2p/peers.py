"""The peer manager: accepts and dials peers, keeps persistent peers connected, and
moves channel messages between peers and the node's reactors.

* Inbound: every accepted connection must finish the handshake within the
  configured time; at most ``max_inbound_peers`` are kept, and at most twice that
  many handshakes may be in progress (a connection flood costs little).
* Persistent peers are redialled with exponential back-off (doubling from
  ``dial_backoff_min_ms`` up to ``dial_backoff_max_ms``).
* Each peer has a bounded send queue drained by one writer task. A peer whose
  queue is full is too slow and is disconnected: it never slows the node.
* A peer that sends garbage (a frame that fails authentication, an unknown
  channel, a message its reactor rejects) is disconnected and logged; the node
  carries on.

A frame's plaintext is ``[channel byte][payload]``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

import trio

from appchaind.chain import crypto
from appchaind.containment import ConnectionGuard, FailureHook, close_quietly
from appchaind.errors import open_listeners
from appchaind.telemetry.logs import get_logger
from p2p.transport import PeerError, SecureConnection, handshake

__all__ = [
    "Channel",
    "Peer",
    "PeerManager",
    "PeerMisbehaved",
    "PeerManagerStats",
    "parse_peer",
]

log = get_logger("p2p")

#: The most bytes of queued messages a peer's writer sends in one write.
WRITE_COALESCE_BYTES = 256 * 1024


class Channel:
    """Channel ids: the first byte of every frame."""

    CONSENSUS = 1
    MEMPOOL = 2
    BLOCKSYNC = 3
    EVIDENCE = 4
    BUILDER = 5
    ALL = (CONSENSUS, MEMPOOL, BLOCKSYNC, EVIDENCE, BUILDER)


class PeerMisbehaved(Exception):
    """Raised by a reactor for a message that proves the peer faulty or hostile."""


@dataclass(frozen=True, slots=True)
class PeerAddress:
    node_id: str
    host: str
    port: int


def parse_peer(text: str) -> PeerAddress:
    """``nodeid@host:port`` (already validated by the config loader)."""
    node_id, _, address = text.partition("@")
    host, _, port = address.rpartition(":")
    return PeerAddress(node_id, host, int(port))


class Peer:
    """A connected, authenticated peer."""

    def __init__(self, conn: SecureConnection, outbound: bool, queue_size: int) -> None:
        self.conn = conn
        self.node_id = conn.node_id
        self.outbound = outbound
        self._send, self._queue = trio.open_memory_channel[bytes](queue_size)
        self.cancel_scope = trio.CancelScope()
        self.closed_reason: str | None = None

    def send(self, channel: int, payload: bytes) -> bool:
        """Queues a message without blocking. False (and the peer is dropped) when the
        queue is full: the peer is too slow to keep up. False (and nothing sent) when the
        message does not fit in a frame."""
        if self.closed_reason is not None:
            return False
        if 1 + len(payload) > self.conn.max_frame_bytes:
            # Our own message is too big for a frame: refuse it here (the writer task would
            # raise, and with it the peer manager); the peer did nothing wrong.
            log.warning(
                "p2p_message_too_large",
                peer=self.node_id,
                channel=channel,
                bytes=1 + len(payload),
                max_frame_bytes=self.conn.max_frame_bytes,
            )
            return False
        try:
            self._send.send_nowait(bytes([channel]) + payload)
        except trio.WouldBlock:
            self.close("send queue full (peer too slow)")
            return False
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True

    def close(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        self.cancel_scope.cancel()

    async def _write_loop(self) -> None:
        # What queued up while the last write was under way goes out in one write (up to
        # WRITE_COALESCE_BYTES): under load a peer is sent many small messages (votes,
        # gossip, block requests) and a system call each was a tenth of a syncing node's
        # time.
        async for frame in self._queue:
            frames = [frame]
            size = len(frame)
            while size < WRITE_COALESCE_BYTES:
                try:
                    frame = self._queue.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                frames.append(frame)
                size += len(frame)
            await self.conn.send_frames(frames)


MessageHandler = Callable[[Peer, int, bytes], Awaitable[None]]
PeerHook = Callable[[Peer], None]


@dataclass(frozen=True, slots=True)
class PeerManagerStats:
    peers: int
    inbound: int
    outbound: int
    handshakes_in_progress: int
    dropped_total: int
    bytes_sent: int
    bytes_received: int


@dataclass
class PeerManager:
    """Owns every peer connection of a node. Start with ``nursery.start(pm.run)``."""

    node_key: crypto.PrivateKey
    chain_id: str
    listen_host: str
    listen_port: int
    persistent_peers: list[str]
    on_message: MessageHandler
    max_inbound_peers: int = 40
    send_queue_messages: int = 1024
    max_frame_bytes: int = 4 * 1024 * 1024
    handshake_timeout_ms: int = 5_000
    dial_backoff_min_ms: int = 200
    dial_backoff_max_ms: int = 30_000
    on_peer_connected: PeerHook | None = None
    on_peer_disconnected: PeerHook | None = None
    #: Called with ("p2p", reason) for each connection failure the manager contains.
    on_connection_failure: FailureHook | None = None
    peers: dict[str, Peer] = field(default_factory=dict)
    dropped_total: int = 0
    _handshakes: int = 0
    _bytes_sent_closed: int = 0
    _bytes_received_closed: int = 0
    bound_port: int = 0
    guard: ConnectionGuard = field(init=False)

    def __post_init__(self) -> None:
        # What one peer's connection raises, inbound or outbound, ends that connection.
        self.guard = ConnectionGuard(
            "p2p",
            protocol_errors=(PeerError, PeerMisbehaved),
            on_failure=self.on_connection_failure,
        )

    @property
    def node_id(self) -> str:
        return self.node_key.address.hex()

    def statistics(self) -> PeerManagerStats:
        inbound = sum(1 for p in self.peers.values() if not p.outbound)
        return PeerManagerStats(
            peers=len(self.peers),
            inbound=inbound,
            outbound=len(self.peers) - inbound,
            handshakes_in_progress=self._handshakes,
            dropped_total=self.dropped_total,
            bytes_sent=self._bytes_sent_closed
            + sum(p.conn.bytes_sent for p in self.peers.values()),
            bytes_received=self._bytes_received_closed
            + sum(p.conn.bytes_received for p in self.peers.values()),
        )

    def broadcast(
        self,
        channel: int,
        payload: bytes,
        *,
        exclude: str | None = None,
        skip: Collection[str] = (),
    ) -> None:
        """Queues ``payload`` to every connected peer (but ``exclude`` and those in
        ``skip``)."""
        for node_id, peer in list(self.peers.items()):
            if node_id != exclude and node_id not in skip:
                peer.send(channel, payload)

    def send_to(self, node_id: str, channel: int, payload: bytes) -> bool:
        peer = self.peers.get(node_id)
        return peer.send(channel, payload) if peer is not None else False

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listens, dials the persistent peers, and runs until cancelled."""
        listeners = await open_listeners(self.listen_host, self.listen_port, "p2p.listen_address")
        self.bound_port = listeners[0].socket.getsockname()[1]
        log.info(
            "p2p_listening", address=f"{self.listen_host}:{self.bound_port}", node_id=self.node_id
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._serve, listeners)
            for text in self.persistent_peers:
                nursery.start_soon(self._keep_dialling, parse_peer(text))
            task_status.started(self.bound_port)

    async def _serve(self, listeners: list[trio.SocketListener]) -> None:
        await self.guard.serve_listeners(self._accept, listeners)

    async def _accept(self, stream: trio.SocketStream, peer: str) -> None:
        if self._handshakes >= 2 * max(1, self.max_inbound_peers):
            await stream.aclose()
            return
        if self._inbound_full():
            await stream.aclose()
            return
        conn = await self._handshake(stream, None, "inbound")
        if conn is None:
            return
        # Checked again: other handshakes may have completed while this one ran.
        if self._inbound_full() and conn.node_id not in self.peers:
            await close_quietly(conn)
            return
        await self._run_peer(conn, outbound=False)

    def _inbound_full(self) -> bool:
        inbound = sum(1 for p in self.peers.values() if not p.outbound)
        if inbound >= self.max_inbound_peers:
            log.debug("p2p_inbound_refused", reason="max_inbound_peers reached")
            return True
        return False

    async def _handshake(
        self, stream: trio.SocketStream, expected: str | None, direction: str
    ) -> SecureConnection | None:
        self._handshakes += 1
        try:
            with trio.move_on_after(self.handshake_timeout_ms / 1000) as scope:
                return await handshake(
                    stream,
                    self.node_key,
                    self.chain_id,
                    expected_node_id=expected,
                    max_frame_bytes=self.max_frame_bytes,
                )
            reason = "handshake timed out"
        except PeerError as exc:
            reason = str(exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            reason = f"connection error: {exc}"
        finally:
            self._handshakes -= 1
        self.dropped_total += 1
        log.info(
            "p2p_handshake_failed",
            direction=direction,
            reason=reason,
            timed_out=scope.cancelled_caught,
        )
        await close_quietly(stream)
        return None

    async def _keep_dialling(self, address: PeerAddress) -> None:
        delay_ms = self.dial_backoff_min_ms
        while True:
            if address.node_id not in self.peers:
                connected = await self.guard.run(
                    self._dial_once, address, peer=f"{address.host}:{address.port}"
                )
                if connected:
                    delay_ms = self.dial_backoff_min_ms
                    continue
            await trio.sleep(delay_ms / 1000)
            delay_ms = min(self.dial_backoff_max_ms, delay_ms * 2)

    async def _dial_once(self, address: PeerAddress) -> bool:
        try:
            with trio.fail_after(self.handshake_timeout_ms / 1000):
                stream = await trio.open_tcp_stream(address.host, address.port)
        except (OSError, trio.TooSlowError):
            return False
        conn = await self._handshake(stream, address.node_id, "outbound")
        if conn is None:
            return False
        await self._run_peer(conn, outbound=True)
        return True

    async def _run_peer(self, conn: SecureConnection, *, outbound: bool) -> None:
        if conn.node_id in self.peers:
            # Both sides dialled each other: keep the connection dialled by the lower node id.
            keep_outbound = self.node_id < conn.node_id
            if outbound != keep_outbound:
                await close_quietly(conn)
                return
            self.peers[conn.node_id].close("replaced by a simultaneous connection")
            await trio.sleep(0)
        peer = Peer(conn, outbound, self.send_queue_messages)
        self.peers[peer.node_id] = peer
        log.info("p2p_peer_connected", peer=peer.node_id, outbound=outbound, peers=len(self.peers))
        if self.on_peer_connected is not None:
            self.on_peer_connected(peer)
        try:
            with peer.cancel_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guard, peer, peer._write_loop)
                    nursery.start_soon(self._guard, peer, self._read_loop, peer)
        finally:
            if self.peers.get(peer.node_id) is peer:
                del self.peers[peer.node_id]
            self._bytes_sent_closed += conn.bytes_sent
            self._bytes_received_closed += conn.bytes_received
            reason = peer.closed_reason or "connection ended"
            if reason != "replaced by a simultaneous connection":
                self.dropped_total += 1
            log.info(
                "p2p_peer_disconnected", peer=peer.node_id, reason=reason, peers=len(self.peers)
            )
            if self.on_peer_disconnected is not None:
                self.on_peer_disconnected(peer)
            with trio.CancelScope(shield=True):
                await close_quietly(conn)

    async def _guard(self, peer: Peer, fn: Callable[..., Awaitable[None]], *args: object) -> None:
        """Runs one of the peer's loops; any protocol failure closes the peer, not the node."""
        try:
            await fn(*args)
            peer.close("connection closed by peer")
        except PeerError as exc:
            peer.close(str(exc))
        except PeerMisbehaved as exc:
            peer.close(f"misbehaved: {exc}")
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            peer.close(f"connection error: {exc}")
        except Exception as exc:  # a bug in handling one peer's message ends that peer only
            self.guard.record(exc, peer.node_id)
            peer.close(f"internal error: {type(exc).__name__}")

    async def _read_loop(self, peer: Peer) -> None:
        conn = peer.conn
        while True:
            frame = await conn.receive_frame()
            if not frame:
                raise PeerMisbehaved("empty frame")
            channel = frame[0]
            if channel not in Channel.ALL:
                raise PeerMisbehaved(f"unknown channel {channel}")
            await self.on_message(peer, channel, frame[1:])
