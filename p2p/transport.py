"""Authenticated, encrypted peer connections over any trio stream.

The handshake, in the spirit of CometBFT's SecretConnection and built only from
libsodium primitives (pynacl):

1. Each side sends a fresh ephemeral X25519 public key (32 bytes).
2. Session keys come from libsodium's ``crypto_kx`` (X25519 + BLAKE2b); the side
   with the lower ephemeral key takes the kx "client" role, so both agree on
   which key encrypts which direction.
3. Each side sends, sealed, ``[node public key, chain id, signature]`` where the
   signature is its ed25519 node key's over the domain-separated transcript
   (both ephemeral keys, lower first). A relaying man in the middle cannot
   produce it, and a signature from another session or chain does not verify.
4. A dialler that expected a particular node id drops a peer with another one.

After the handshake every frame is ``[u32 big-endian length][sealed body]``,
sealed with ChaCha20-Poly1305 (IETF) under a per-direction counter nonce, with
the length prefix as associated data. A frame longer than the limit is refused
before its body is read. Any failure raises :class:`PeerError` (the remote did
something wrong) and leaves the connection unusable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgpack
import nacl.bindings as sodium
import nacl.exceptions
import trio

from appchaind.chain import crypto

__all__ = ["PeerError", "SecureConnection", "handshake", "HANDSHAKE_KIND"]

HANDSHAKE_KIND = "p2p_handshake"
_TAG_BYTES = sodium.crypto_aead_chacha20poly1305_ietf_ABYTES
_AUTH_MAX_BYTES = 256
_LENGTH_BYTES = 4


class PeerError(Exception):
    """The peer broke the protocol (garbage, bad signature, oversized frame, wrong id, ...).

    The message names what was wrong; the connection must be closed.
    """


class _Reader:
    """Exact-size reads over a trio stream."""

    __slots__ = ("stream", "buffer")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def read_exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = await self.stream.receive_some(max(65536, n - len(self.buffer)))
            if not chunk:
                raise PeerError("connection closed by peer")
            self.buffer += chunk
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out


def _nonce(counter: int) -> bytes:
    return counter.to_bytes(8, "little") + b"\x00\x00\x00\x00"


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    public_key: bytes
    node_id: str
    chain_id: str


class SecureConnection:
    """A handshaken connection: send and receive whole frames (bytes), encrypted.

    ``send_frame`` must not be called concurrently from two tasks (the peer
    manager gives each connection one writer task).
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        reader: _Reader,
        send_key: bytes,
        recv_key: bytes,
        peer: PeerIdentity,
        max_frame_bytes: int,
    ) -> None:
        self._stream = stream
        self._reader = reader
        self._send_key = send_key
        self._recv_key = recv_key
        self._send_counter = 0
        self._recv_counter = 0
        self.peer = peer
        self.max_frame_bytes = max_frame_bytes
        self.bytes_sent = 0
        self.bytes_received = 0

    @property
    def node_id(self) -> str:
        return self.peer.node_id

    async def send_frame(self, plaintext: bytes) -> None:
        await self.send_frames((plaintext,))

    async def send_frames(self, plaintexts: Sequence[bytes]) -> None:
        """Seal each of ``plaintexts`` as a frame of its own, in order, and write them
        with one send: the peer reads the same frames as if each had been sent alone,
        and a burst of small messages costs one system call instead of one each."""
        sealed_frames = []
        for plaintext in plaintexts:
            if len(plaintext) > self.max_frame_bytes:
                raise ValueError(f"frame of {len(plaintext)} bytes exceeds {self.max_frame_bytes}")
            header = (len(plaintext) + _TAG_BYTES).to_bytes(_LENGTH_BYTES, "big")
            sealed_frames.append(header)
            sealed_frames.append(
                sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
                    plaintext, header, _nonce(self._send_counter), self._send_key
                )
            )
            self._send_counter += 1
        data = b"".join(sealed_frames)
        await self._stream.send_all(data)
        self.bytes_sent += len(data)

    async def receive_frame(self) -> bytes:
        header = await self._reader.read_exactly(_LENGTH_BYTES)
        length = int.from_bytes(header, "big")
        if length < _TAG_BYTES:
            raise PeerError(f"frame length {length} is shorter than the authentication tag")
        if length - _TAG_BYTES > self.max_frame_bytes:
            raise PeerError(
                f"oversized frame: {length - _TAG_BYTES} bytes, the limit is {self.max_frame_bytes}"
            )
        sealed = await self._reader.read_exactly(length)
        try:
            plaintext: bytes = sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
                sealed, header, _nonce(self._recv_counter), self._recv_key
            )
        except nacl.exceptions.CryptoError:
            raise PeerError("frame failed authentication (corrupted or forged)") from None
        self._recv_counter += 1
        self.bytes_received += len(header) + length
        return plaintext

    async def aclose(self) -> None:
        await self._stream.aclose()


def _transcript(low: bytes, high: bytes) -> bytes:
    return b"appchaind/p2p/v1" + low + high


async def handshake(
    stream: trio.abc.Stream,
    node_key: crypto.PrivateKey,
    chain_id: str,
    *,
    expected_node_id: str | None = None,
    max_frame_bytes: int = 4 * 1024 * 1024,
) -> SecureConnection:
    """Runs the authenticated key exchange; raises PeerError on any failure.

    The caller bounds it in time (``trio.move_on_after``/``fail_after``).
    """
    eph_public, eph_secret = sodium.crypto_kx_keypair()
    reader = _Reader(stream)
    await stream.send_all(eph_public)
    their_eph = await reader.read_exactly(32)
    if their_eph == eph_public:
        raise PeerError("peer echoed our ephemeral key (a reflection attempt)")
    try:
        if eph_public < their_eph:
            recv_key, send_key = sodium.crypto_kx_client_session_keys(
                eph_public, eph_secret, their_eph
            )
            low, high = eph_public, their_eph
        else:
            recv_key, send_key = sodium.crypto_kx_server_session_keys(
                eph_public, eph_secret, their_eph
            )
            low, high = their_eph, eph_public
    except (nacl.exceptions.CryptoError, nacl.exceptions.RuntimeError):
        raise PeerError("peer sent an invalid ephemeral key") from None

    transcript = _transcript(low, high)
    signature = node_key.sign_message(chain_id, HANDSHAKE_KIND, transcript)
    auth_conn = SecureConnection(
        stream, reader, send_key, recv_key, PeerIdentity(b"", "", ""), _AUTH_MAX_BYTES
    )
    await auth_conn.send_frame(
        msgpack.packb([node_key.public_key, chain_id, signature], use_bin_type=True)
    )
    raw = await auth_conn.receive_frame()
    try:
        their_key, their_chain, their_sig = msgpack.unpackb(raw, raw=False, max_bin_len=64)
    except Exception:  # msgpack's boundary: anything malformed is the peer's fault
        raise PeerError("malformed handshake message") from None
    if type(their_key) is not bytes or len(their_key) != 32 or type(their_sig) is not bytes:
        raise PeerError("malformed handshake message")
    if their_chain != chain_id:
        raise PeerError(f"peer is on chain {their_chain!r}, we are on {chain_id!r}")
    message = crypto.sign_bytes(chain_id, HANDSHAKE_KIND, transcript)
    if not crypto.verify(their_key, message, their_sig):
        raise PeerError("handshake signature does not verify")
    node_id = crypto.address_of(their_key).hex()
    if node_key.public_key == their_key:
        raise PeerError("connected to ourselves")
    if expected_node_id is not None and node_id != expected_node_id:
        raise PeerError(f"dialled {expected_node_id} but the peer is {node_id}")
    conn = SecureConnection(
        stream,
        reader,
        send_key,
        recv_key,
        PeerIdentity(their_key, node_id, their_chain),
        max_frame_bytes,
    )
    conn._send_counter = auth_conn._send_counter
    conn._recv_counter = auth_conn._recv_counter
    return conn
