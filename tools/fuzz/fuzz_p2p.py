"""Fuzz target ``p2p``: the handshake and the frames a peer sends.

The node under test runs the real transport (:func:`p2p.transport.handshake`,
:meth:`~p2p.transport.SecureConnection.receive_frame`) and the peer manager's read loop
(:meth:`p2p.peers.PeerManager._read_loop`: empty frame, unknown channel), with each
channel's message decoded as the node decodes it (``decode_message`` with the channel's
registry; a :class:`~appchaind.chain.codec.CodecError` drops the peer). The other end is
the harness, playing a peer whose bytes come from the input, over an in-memory stream.

Input: one mode byte, then

- mode 0, **handshake**: a flags byte (bit 0: the peer's ephemeral key is the next 32
  input bytes, else a fresh valid one; bit 1: the rest goes raw on the wire instead of
  sealed as the auth frame; bit 2: the peer signs: the auth message is the msgpack of the
  rest with its third item replaced by the peer key's real signature of the transcript
  under the chain id of its second item), then the auth message;
- mode 1, **frames** after a valid handshake: records ``[kind][u16 length][bytes]``; an
  even kind seals ``bytes`` as one frame (the first byte is its channel), an odd kind
  writes them raw on the wire.

A crash is any exception but :class:`~p2p.transport.PeerError` and
:class:`~p2p.peers.PeerMisbehaved` (the peer is dropped), or a handshake accepted without
a valid signature of the transcript, or a frame delivered that the peer did not seal.
"""

from __future__ import annotations

import msgpack
import nacl.bindings as sodium
import trio
import trio.testing

from appchaind.chain import codec
from appchaind.node import messages
from p2p.peers import Channel, MessageHandler, Peer, PeerManager, PeerMisbehaved
from p2p.transport import HANDSHAKE_KIND, PeerError, SecureConnection
from tools.fuzz import samples
from tools.fuzz.harness import Finding, Target

__all__ = ["TARGET", "one_input"]

NODE_KEY = samples.key("node")
PEER_KEY = samples.key("peer")
MAX_FRAME_BYTES = 64 * 1024
_REGISTRIES = {
    Channel.CONSENSUS: messages.CONSENSUS_MESSAGES,
    Channel.MEMPOOL: messages.MEMPOOL_MESSAGES,
    Channel.BLOCKSYNC: messages.BLOCKSYNC_MESSAGES,
    Channel.EVIDENCE: messages.EVIDENCE_MESSAGES,
    Channel.BUILDER: messages.BUILDER_MESSAGES,
}
_TAG_BYTES = sodium.crypto_aead_chacha20poly1305_ietf_ABYTES


class _Peer:
    """The harness's end: the session keys of the handshake and its frame counter."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.public, self.secret = sodium.crypto_kx_keypair()
        self.send_key = b""
        self.counter = 0
        self.transcript = b""

    async def exchange_keys(self, ours: bytes | None) -> None:
        """Sends its ephemeral key (``ours``: a fuzzed one) and derives the session keys."""
        their = b""
        while len(their) < 32:
            chunk = await self.stream.receive_some(32 - len(their))
            if not chunk:
                return
            their += chunk
        await self.stream.send_all(self.public if ours is None else ours)
        if ours is not None:
            return
        if self.public < their:
            _recv, self.send_key = sodium.crypto_kx_client_session_keys(
                self.public, self.secret, their
            )
            low, high = self.public, their
        else:
            _recv, self.send_key = sodium.crypto_kx_server_session_keys(
                self.public, self.secret, their
            )
            low, high = their, self.public
        self.transcript = b"appchaind/p2p/v1" + low + high

    def seal(self, plaintext: bytes) -> bytes:
        header = (len(plaintext) + _TAG_BYTES).to_bytes(4, "big")
        nonce = self.counter.to_bytes(8, "little") + b"\x00" * 4
        self.counter += 1
        return header + sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
            plaintext, header, nonce, self.send_key
        )

    def signed_auth(self, message: bytes) -> bytes | None:
        """``message`` (msgpack of [key, chain id, anything]) with the peer's signature of
        the transcript as its third item, or None when it has no such shape."""
        try:
            items = msgpack.unpackb(message, raw=False)
        except Exception:  # the harness's own parse of fuzz bytes: not the node's
            return None
        if type(items) is not list or len(items) != 3 or type(items[1]) is not str:
            return None
        items[2] = PEER_KEY.sign_message(items[1], HANDSHAKE_KIND, self.transcript)
        return msgpack.packb(items, use_bin_type=True)


async def _ignore(_peer: Peer, _channel: int, _payload: bytes) -> None:
    return None


def _manager(on_message: MessageHandler = _ignore) -> PeerManager:
    """The node's peer manager (never started: the harness hands it a stream)."""
    return PeerManager(
        NODE_KEY, samples.CHAIN_ID, "127.0.0.1", 0, [], on_message, max_frame_bytes=MAX_FRAME_BYTES
    )


async def _node_handshake(manager: PeerManager, stream: trio.abc.Stream) -> SecureConnection | None:
    """The node's side of an inbound handshake: the connection, or None (dropped, logged)."""
    return await manager._handshake(stream, None, "inbound")  # type: ignore[arg-type]


async def _handshake_case(flags: int, rest: bytes) -> None:
    node_end, peer_end = trio.testing.memory_stream_pair()
    peer = _Peer(peer_end)
    fuzzed_key = rest[:32] if flags & 1 else None
    if fuzzed_key is not None:
        rest = rest[32:]
    signed = False
    result: list[SecureConnection | None] = []

    async def node_side() -> None:
        result.append(await _node_handshake(_manager(), node_end))
        await node_end.aclose()

    async def peer_side() -> None:
        nonlocal signed
        try:
            await peer.exchange_keys(fuzzed_key)
            if flags & 2 or not peer.send_key:
                await peer_end.send_all(rest)
            else:
                auth = peer.signed_auth(rest) if flags & 4 else None
                signed = auth is not None
                await peer_end.send_all(peer.seal(rest if auth is None else auth))
            await peer_end.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the node closed the connection

    async with trio.open_nursery() as nursery:
        nursery.start_soon(node_side)
        nursery.start_soon(peer_side)
    conn = result[0]
    if conn is not None:
        expected = (PEER_KEY.public_key, samples.CHAIN_ID)
        if not signed or (conn.peer.public_key, conn.peer.chain_id) != expected:
            raise Finding("the handshake accepted a peer that did not sign the transcript")


async def _frames_case(records: bytes) -> None:
    node_end, peer_end = trio.testing.memory_stream_pair()
    peer = _Peer(peer_end)
    result: list[SecureConnection | None] = []
    sealed: list[bytes] = []
    delivered: list[bytes] = []

    async def on_message(_peer: Peer, channel: int, payload: bytes) -> None:
        delivered.append(bytes([channel]) + payload)
        try:
            messages.decode_message(_REGISTRIES[channel], payload, MAX_FRAME_BYTES)
        except codec.CodecError as exc:
            raise PeerMisbehaved(f"malformed message on channel {channel}: {exc}") from None

    async def node_side() -> None:
        manager = _manager(on_message)
        conn = await _node_handshake(manager, node_end)
        result.append(conn)
        if conn is None:
            return
        try:
            await manager._read_loop(Peer(conn, False, 4))
        except (PeerError, PeerMisbehaved):
            pass
        await node_end.aclose()

    async def peer_side() -> None:
        data = records
        try:
            await peer.exchange_keys(None)
            auth = [PEER_KEY.public_key, samples.CHAIN_ID, b""]
            auth_message = peer.signed_auth(msgpack.packb(auth, use_bin_type=True))
            assert auth_message is not None
            await peer_end.send_all(peer.seal(auth_message))
            while len(data) >= 3:
                kind, length = data[0], int.from_bytes(data[1:3], "big")
                body, data = data[3 : 3 + length], data[3 + length :]
                if kind % 2 == 0:
                    sealed.append(body)
                    await peer_end.send_all(peer.seal(body))
                else:
                    await peer_end.send_all(body)
            await peer_end.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the node dropped the peer

    async with trio.open_nursery() as nursery:
        nursery.start_soon(node_side)
        nursery.start_soon(peer_side)
    if result[0] is None:
        raise Finding("the node refused a valid handshake")
    for frame in delivered:
        if frame not in sealed:
            raise Finding("the node delivered a frame the peer did not seal")


def one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    if data[0] % 2 == 0:
        trio.run(_handshake_case, data[1], data[2:])
    else:
        trio.run(_frames_case, data[1:])


def _record(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(2, "big") + body


def seeds() -> dict[str, bytes]:
    auth = msgpack.packb([PEER_KEY.public_key, samples.CHAIN_ID, b""], use_bin_type=True)
    block = samples.block()
    frames = {
        "vote": (Channel.CONSENSUS, messages.VoteMessage(samples.vote())),
        "round_status": (Channel.CONSENSUS, messages.RoundStatus(2, 0, 1, 1, 1)),
        "txs": (Channel.MEMPOOL, messages.TxsMessage(block.txs)),
        "evidence": (Channel.EVIDENCE, messages.EvidenceMessage(samples.evidence())),
        "block_request": (Channel.BLOCKSYNC, messages.BlockRequest(2)),
        "block_response": (Channel.BLOCKSYNC, messages.BlockResponse(block, samples.commit())),
        "bids": (Channel.BUILDER, messages.BidMessage(block.txs[:1], block.txs[1:])),
    }
    out = {
        "handshake_signed": b"\x00\x04" + auth,
        "handshake_unsigned": b"\x00\x00" + auth,
        "handshake_raw": b"\x00\x02" + b"\x00\x00\x00\x20" + b"\x00" * 32,
        "handshake_own_key": b"\x00\x01" + b"\x00" * 32 + auth,
    }
    for name, (channel, message) in frames.items():
        payload = bytes([channel]) + messages.encode_message(message)
        out[f"frame_{name}"] = b"\x01" + _record(0, payload)
    out["frames_mixed"] = b"\x01" + b"".join(
        [_record(0, b"\x03" + messages.encode_message(messages.BlockRequest(1))),
         _record(0, b""), _record(1, b"\x00\x00\x00\x05hello")]
    )  # fmt: skip
    return out


TARGET = Target(
    "p2p",
    one_input,
    seeds,
    tokens=(b"\x00\x00\x00\x10", b"\xff\xff\xff\xff", b"\x00\x01\x00\x00", b"\x93", b"\xc4\x20",
            b"\xc4\x40", b"\xa0", samples.CHAIN_ID.encode(), b"\x00" * 32),
)  # fmt: skip
