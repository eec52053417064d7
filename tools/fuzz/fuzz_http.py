"""Fuzz target ``http``: the bytes of one HTTP connection.

The input is what a client sends on one connection (requests, pipelined or not, or
anything else), then it half-closes; or, by its first byte, only the target of a GET or
the body of a ``POST /tx`` (:func:`request_of`). The server is the real one
(:meth:`appchaind.http.server.HttpServer._serve_connection`: h11's parsing, the size and
time limits, the routes of :mod:`appchaind.http.routes` and their parameters) over an
in-memory stream, on a clock that jumps when every task waits, answering from the node of
:mod:`tools.fuzz.ports`.

A crash is an exception out of the connection's handler (the port would drop the
connection without an answer), a 500 answer (a handler raised: the client learns nothing
of what was wrong), or output that is not a sequence of whole HTTP/1.1 responses.
"""

from __future__ import annotations

import json

import trio
import trio.testing

from appchaind.chain import codec
from appchaind.chain.types import tx_hash
from appchaind.http.routes import make_http_server
from appchaind.http.server import Handler, HttpServer, Request, Response
from tools.fuzz import samples
from tools.fuzz.fuzz_rpc import _server as rpc_server
from tools.fuzz.harness import Finding, Target
from tools.fuzz.ports import fuzz_node, serve_bytes

__all__ = ["TARGET", "one_input", "request_of", "responses", "serve"]

_SERVER: list[HttpServer] = []
#: What the routes' handlers raised during the current input (the server answers 500).
_RAISED: list[Exception] = []


def _recording(handler: Handler) -> Handler:
    async def handle(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            _RAISED.append(exc)
            raise

    return handle


def _http() -> HttpServer:
    if not _SERVER:
        server = make_http_server(fuzz_node(), rpc_server(), lambda: b"# metrics\n")  # type: ignore[arg-type]
        server.routes = {route: _recording(h) for route, h in server.routes.items()}
        _SERVER.append(server)
    return _SERVER[0]


async def serve(data: bytes) -> bytes:
    server = _http()
    return await serve_bytes(
        lambda stream: server._serve_connection(stream, "127.0.0.1:40000"), data
    )


def responses(output: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each response in the server's ``output``; Finding when it is not a
    sequence of whole responses with a content-length each."""
    found = []
    rest = output
    while rest:
        head, sep, rest = rest.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        if not sep or not lines[0].startswith(b"HTTP/1.1 "):
            raise Finding("output that is not an HTTP response", repr(head[:80]))
        status = int(lines[0].split(b" ")[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None or len(rest) < length:
            raise Finding("a response without its whole body", repr(head[:80]))
        found.append((status, rest[:length]))
        rest = rest[length:]
    return found


def request_of(data: bytes) -> bytes:
    """The connection's bytes an input stands for: after its mode byte, 0 the bytes as they
    are, 1 the target of a GET (``/block/5?x=1``), 2 the body of a ``POST /tx``. Modes 1
    and 2 keep the search on the routes' parameters, which whole requests reach rarely
    (most mutations of a request are h11's 400s)."""
    mode, rest = data[0] % 3, data[1:]
    if mode == 1:
        return b"GET " + rest + b" HTTP/1.1\r\nhost: node\r\n\r\n"
    if mode == 2:
        return b"POST /tx HTTP/1.1\r\nhost: node\r\ncontent-length: %d\r\n\r\n" % len(rest) + rest
    return rest


def one_input(data: bytes) -> None:
    if not data:
        return
    _RAISED.clear()
    output = trio.run(serve, request_of(data), clock=trio.testing.MockClock(autojump_threshold=0))
    for status, body in responses(output):
        if status >= 500 and status != 503:
            if _RAISED:
                raise _RAISED[0]  # the handler's own exception: its place tells crashes apart
            raise Finding(f"HTTP {status}", repr(body[:200]))


def _get(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nhost: node\r\n\r\n".encode()


def _post(target: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"POST {target} HTTP/1.1\r\nhost: node\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def seeds() -> dict[str, bytes]:
    tx = codec.encode(samples.signed_txs()["faucet"])
    address = samples.key("alice").address.hex()
    out = {
        "index": _get("/"),
        "status": _get("/status"),
        "block": _get("/block/2"),
        "block_missing": _get("/block/1"),
        "metrics": _get("/metrics"),
        "tx": _get("/tx/" + tx_hash(samples.block().txs[0]).hex()),
        "markets": _get("/markets"),
        "book": _get("/book/BTC-PERP?depth=5"),
        "account": _get(f"/account/{address}"),
        "validators": _get("/validators"),
        "net_info": _get("/net_info"),
        "trades": _get("/trades/ETH-PERP?limit=3"),
        "trades_all": _get("/trades"),
        "liquidations": _get("/liquidations?limit=2"),
        "post_tx_msgpack": _post("/tx", tx, "application/octet-stream"),
        "post_tx_json": _post("/tx", json.dumps({"tx": tx.hex()}).encode(), "application/json"),
        "unknown": _get("/unsafe_reset"),
        "wrong_method": _post("/status", b"", "text/plain"),
    }
    out["pipelined"] = out["status"] + out["block"] + out["post_tx_json"]
    raw = {name: b"\x00" + request for name, request in out.items()}
    for name, target in (
        ("block", b"/block/2"),
        ("book", b"/book/ETH-PERP?depth=3"),
        ("trades", b"/trades?limit=2"),
        ("tx", b"/tx/00ff"),
        ("account", b"/account/" + address.encode()),
    ):
        raw[f"target_{name}"] = b"\x01" + target
    raw["body_msgpack"] = b"\x02" + tx
    raw["body_json"] = b"\x02" + json.dumps({"tx": tx.hex()}).encode()
    return raw


TARGET = Target(
    "http",
    one_input,
    seeds,
    tokens=(b"%C2%B2", b"%F0%9D%9F%97", b"9" * 40, b"9" * 5000, b"%00", b"%2F", b"//", b"[",
            b"?depth=", b"?limit=", b"&limit=", b"/block/", b"/book/", b"/tx/", b"/trades/",
            b"content-length: ", b"transfer-encoding: chunked\r\n", b"connection: close\r\n",
            b"\r\n", b'{"tx":', b"[" * 200, b'{"tx": [' * 100, b"\xc2\xb2", b"-1", b"+1",
            b" 1", b"0x10", b"1e3", b"\xef\xbc\x91"),
)  # fmt: skip
