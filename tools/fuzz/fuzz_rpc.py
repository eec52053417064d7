"""Fuzz target ``rpc``: the bytes of one RPC connection.

The input is what a client sends on one connection (length-prefixed msgpack frames, or
anything else), then it half-closes. The server is the real one
(:meth:`appchaind.rpc.server.RpcServer._serve`: framing, request parsing, rate limit,
every method and ``subscribe``/``unsubscribe``) over an in-memory stream, on a clock that
jumps when every task waits (a ``broadcast_tx`` in ``commit`` mode times out at once),
answering from the node of :mod:`tools.fuzz.ports`.

A crash is an exception out of the connection's handler (the port would close the
connection with an ``internal`` failure instead of answering), an error response with
code ``INTERNAL`` (a handler raised: the client learns nothing of what was wrong), or a
reply that is not a well-formed response frame.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio
import trio.testing

from appchaind.chain import codec
from appchaind.chain.types import tx_hash
from appchaind.rpc.protocol import (
    DROP,
    RESPONSE,
    STREAM,
    ErrorCode,
    FrameDecoder,
    request_frame,
    unpack,
)
from appchaind.rpc.server import RpcServer
from tools.fuzz import samples
from tools.fuzz.harness import Finding, Target
from tools.fuzz.ports import fuzz_node, serve_bytes

__all__ = ["TARGET", "one_input", "serve"]

_SERVER: list[RpcServer] = []
#: What the methods raised during the current input (the server answers INTERNAL).
_RAISED: list[Exception] = []


def _recording(method: Callable[..., Any], is_async: bool) -> Callable[..., Any]:
    def record(exc: Exception) -> None:
        _RAISED.append(exc)

    if is_async:

        async def call_async(*args: Any) -> Any:
            try:
                return await method(*args)
            except Exception as exc:
                record(exc)
                raise

        return call_async

    def call(*args: Any) -> Any:
        try:
            return method(*args)
        except Exception as exc:
            record(exc)
            raise

    return call


def _server() -> RpcServer:
    if not _SERVER:
        server = RpcServer(fuzz_node())  # type: ignore[arg-type]
        server._methods = {name: _recording(m, True) for name, m in server._methods.items()}
        streams: Any = server.streams
        streams.subscribe = _recording(server.streams.subscribe, False)
        streams.unsubscribe = _recording(server.streams.unsubscribe, False)
        _SERVER.append(server)
    return _SERVER[0]


async def serve(data: bytes) -> bytes:
    server = _server()
    return await serve_bytes(lambda stream: server._serve(stream, "127.0.0.1:40000"), data)


def _check_reply(reply: Any) -> None:
    if type(reply) is not list or not reply or reply[0] not in (RESPONSE, STREAM, DROP):
        raise Finding("a reply that is not a response frame", f"{reply!r:.200}")
    if reply[0] != RESPONSE:
        return
    if len(reply) != 4:
        raise Finding("a response not of 4 items", f"{reply!r:.200}")
    error = reply[2]
    if error is None:
        return
    if type(error) is not dict or type(error.get("code")) is not int:
        raise Finding("a malformed error", f"{error!r:.200}")
    if error["code"] == ErrorCode.INTERNAL:
        if _RAISED:
            raise _RAISED[0]  # the method's own exception: its place tells crashes apart
        raise Finding("an INTERNAL error answered", repr(error.get("message")))


def one_input(data: bytes) -> None:
    _RAISED.clear()
    replies = trio.run(serve, data, clock=trio.testing.MockClock(autojump_threshold=0))
    decoder = FrameDecoder(1 << 30)
    for payload in decoder.feed(replies):
        _check_reply(unpack(payload, 1 << 30))
    if decoder.pending:
        raise Finding("the server wrote a partial frame")


def seeds() -> dict[str, bytes]:
    txs = samples.signed_txs()
    address = samples.key("alice").address.hex()
    requests: dict[str, tuple[str, dict[str, Any]]] = {
        "status": ("status", {}),
        "broadcast_tx": ("broadcast_tx", {"tx": codec.encode(txs["faucet"])}),
        "broadcast_tx_hex": ("broadcast_tx", {"tx": codec.encode(txs["place_order"]).hex()}),
        "broadcast_tx_commit": (
            "broadcast_tx",
            {"tx": codec.encode(txs["transfer"]), "mode": "commit", "timeout_s": 1},
        ),
        "account": ("account", {"address": address}),
        "book": ("book", {"market": "BTC-PERP", "depth": 5}),
        "markets": ("markets", {}),
        "builders": ("builders", {}),
        "validators": ("validators", {}),
        "delegations": ("delegations", {"address": address}),
        "tx": ("tx", {"hash": tx_hash(samples.block().txs[1]).hex()}),
        "block": ("block", {"height": 2}),
        "block_missing": ("block", {"height": 1}),
        "trades": ("trades", {"market": "ETH-PERP", "limit": 10}),
        "liquidations": ("liquidations", {"limit": 5}),
        "subscribe_book": ("subscribe", {"stream": "book", "market": "BTC-PERP"}),
        "subscribe_account": ("subscribe", {"stream": "account", "address": address}),
        "unsubscribe": ("unsubscribe", {"subscription": 1}),
        "unknown": ("unsafe_flush", {}),
    }
    out = {name: request_frame(i, method, params) for i, (name, (method, params)) in
           enumerate(requests.items())}  # fmt: skip
    out["pipelined"] = b"".join(out[n] for n in ("status", "subscribe_book", "unsubscribe"))
    return out


TARGET = Target(
    "rpc",
    one_input,
    seeds,
    tokens=(b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x94\x00", b"\xa6height", b"\xa6market",
            b"\xa5depth", b"\xa5limit", b"\xa4mode", b"\xa6commit", b"\xa9timeout_s",
            b"\xa7address", b"\xa4hash", b"\xaa" + b"0" * 10, b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00", b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",
            b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00", b"\xa6stream", b"\xacsubscription",
            b"\x91" * 32),
)  # fmt: skip
