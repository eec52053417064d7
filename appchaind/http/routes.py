"""The node's HTTP port: a status page, JSON status and blocks, and Prometheus ``/metrics``.

``GET /``                the status page: one HTML file (``status_page.html``, inline CSS
                         and JS, no external assets) that polls the JSON endpoints below
``GET /status``          chain id, node id, latest committed height with its block hash and
                         app hash, whether the node is catching up, peers, consensus round
``GET /block/{height}``  the block: height, hash, header fields (hex) and txs (hex)
``GET /metrics``         Prometheus text exposition
``POST /tx``             submit a signed tx (msgpack bytes, or JSON ``{"tx": hex}``); the answer is
                         the mempool's verdict with the tx hash
``GET /tx/{hash}``       a committed tx: height, index, result code and log, fills and events
``GET /markets``         every market: parameters, oracle price, funding rate, open interest
``GET /book/{market}``   L2 depth (``?depth=N``, default 20) with the book stream's ``seq``
``GET /account/{addr}``  balance, positions, open orders, free collateral, margin ratio
``GET /validators``      the validator set: address, public key, voting power, priority,
                         and the latest height whose commit carries its precommit
                         (``last_signed_height``, null when not seen since the node started)
``GET /trades/{market}`` the last fills of one market (``?limit=N``, at most and default 50),
                         newest first, with height, block time and tx hash; ``GET /trades``:
                         of every market
``GET /liquidations``    the last liquidation events (``?limit=N``, at most 20), newest first
``GET /net_info``        connected peers: node id and direction

Errors are JSON ``{"error": {"code": HTTP status, "message": "..."}}``. The exchange
answers are the RPC port's (:mod:`appchaind.rpc.views`): decimal strings for prices,
sizes and amounts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

from appchaind.chain.codes import http_status
from appchaind.containment import FailureHook
from appchaind.exchange.staking import signing_view
from appchaind.http.server import HttpServer, Request, Response, error_response, json_response
from appchaind.node.view import NodeView
from appchaind.rpc.protocol import ErrorCode, RpcError
from appchaind.rpc.server import RpcServer, admission_view
from appchaind.rpc.views import block_json

__all__ = ["MAX_DECIMAL", "decimal_param", "make_http_server"]

#: Seconds a sender refused for a busy node is told to wait (``Retry-After``).
RETRY_AFTER_S = 1


def status_page() -> bytes:
    """The status page's HTML (package data, read once per server)."""
    return resources.files("appchaind.http").joinpath("status_page.html").read_bytes()


#: The largest number a path or query parameter may hold: heights and the like are u64.
MAX_DECIMAL = 2**64 - 1


def decimal_param(text: str, name: str) -> int | Response:
    """``text`` (a path segment or a query value) as a non-negative integer of at most
    :data:`MAX_DECIMAL`, or the 400 answer naming ``name``. Only ASCII digits count:
    ``str.isdigit`` also takes "²" (which ``int`` refuses) and other scripts' digits (which
    ``int`` reads), and a long run of digits would go past ``int``'s string limit."""
    if (
        not text.isascii()
        or not text.isdigit()
        or len(text) > len(str(MAX_DECIMAL))
        or int(text) > MAX_DECIMAL
    ):
        return error_response(
            400, f"{name} must be a decimal integer from 0 to {MAX_DECIMAL}, got {text[:40]!r}"
        )
    return int(text)


def make_http_server(
    node: NodeView,
    rpc: RpcServer,
    render_metrics: Callable[[], bytes],
    *,
    on_connection_failure: FailureHook | None = None,
) -> HttpServer:
    """The HTTP port of ``node``: the exchange's answers come from ``rpc``'s methods (one
    implementation for both ports); ``/metrics`` serves ``render_metrics()``."""

    page = status_page()

    async def index(request: Request) -> Response:
        return Response(
            200, page, "text/html; charset=utf-8", headers=(("cache-control", "no-cache"),)
        )

    async def status(request: Request) -> Response:
        return json_response(node.status().as_json())

    async def block(request: Request) -> Response:
        if len(request.segments) != 2:
            return error_response(400, "use /block/{height} with a decimal height, e.g. /block/5")
        height = decimal_param(request.segments[1], "height")
        if isinstance(height, Response):
            return height
        found = node.block(height)
        if found is None:
            return error_response(
                404, f"no block at height {height}; the latest is {node.latest_height}"
            )
        return json_response(block_json(found, node.forced_txs(height)))

    async def metrics(request: Request) -> Response:
        return Response(200, render_metrics(), "text/plain; version=0.0.4; charset=utf-8")

    async def post_tx(request: Request) -> Response:
        body = request.body
        if body[:1] == b"{":
            try:
                raw = bytes.fromhex(json.loads(body)["tx"])
            except (ValueError, KeyError, TypeError, RecursionError):
                # RecursionError: JSON nested deeper than the parser goes (json's own limit)
                return error_response(400, 'expected a JSON body {"tx": "<hex of the signed tx>"}')
        else:
            raw = body
        if not raw:
            return error_response(400, "empty body: send the signed tx (msgpack bytes or JSON hex)")
        result = await node.submit_tx(raw)
        doc = admission_view(result)
        status = http_status(result.code)
        if status == 200:
            return json_response(doc)
        retry_s = max(RETRY_AFTER_S, -(-result.retry_after_ms // 1000))
        headers = (("retry-after", str(retry_s)),) if doc["retry"] else ()
        error = {"code": status, "message": result.log}
        return dataclasses.replace(json_response({**doc, "error": error}, status), headers=headers)

    async def get_tx(request: Request) -> Response:
        if len(request.segments) != 2:
            return error_response(400, "use /tx/{hash} with the tx hash in hex")
        try:
            h = bytes.fromhex(request.segments[1])
        except ValueError:
            return error_response(400, f"{request.segments[1]!r} is not a hex tx hash")
        return await rpc_call("tx", {"hash": h})

    async def rpc_call(method: str, params: dict[str, Any]) -> Response:
        """Answers with the RPC port's method (one implementation for both ports)."""
        try:
            return json_response(await rpc.call(method, params))
        except RpcError as exc:
            return error_response(ErrorCode(exc.code).http_status, exc.message)

    async def markets(request: Request) -> Response:
        return await rpc_call("markets", {})

    async def book(request: Request) -> Response:
        if len(request.segments) != 2:
            return error_response(400, "use /book/{market}, e.g. /book/BTC-PERP?depth=10")
        depth = decimal_param(request.query.get("depth", ["20"])[0], "depth")
        if isinstance(depth, Response):
            return depth
        return await rpc_call("book", {"market": request.segments[1], "depth": depth})

    async def account(request: Request) -> Response:
        if len(request.segments) != 2:
            return error_response(400, "use /account/{address} with the 40-hex-digit address")
        return await rpc_call("account", {"address": request.segments[1]})

    def limit_param(request: Request) -> dict[str, Any] | Response:
        text = request.query.get("limit", [""])[0]
        if not text:
            return {}
        limit = decimal_param(text, "limit")
        return limit if isinstance(limit, Response) else {"limit": limit}

    async def trades(request: Request) -> Response:
        if len(request.segments) > 2:
            return error_response(400, "use /trades/{market}, e.g. /trades/BTC-PERP?limit=10")
        limit = limit_param(request)
        if isinstance(limit, Response):
            return limit
        market = {"market": request.segments[1]} if len(request.segments) == 2 else {}
        return await rpc_call("trades", {**market, **limit})

    async def liquidations(request: Request) -> Response:
        limit = limit_param(request)
        if isinstance(limit, Response):
            return limit
        return await rpc_call("liquidations", limit)

    async def validators(request: Request) -> Response:
        vs = node.validator_set()
        last_signed = node.last_signed_heights()
        exchange = node.exchange
        signing = {
            v.address: signing_view(exchange.staking, v.address) if exchange is not None else None
            for v in vs.validators
        }
        return json_response(
            {
                "height": node.latest_height,
                "total_power": vs.total_power,
                "validators": [
                    {
                        "address": v.address.hex(),
                        "public_key": v.public_key.hex(),
                        "voting_power": v.power,
                        "proposer_priority": priority,
                        "last_signed_height": last_signed.get(v.address),
                        "signing": signing[v.address],
                    }
                    for v, priority in zip(vs.validators, vs.priorities, strict=True)
                ],
            }
        )

    async def net_info(request: Request) -> Response:
        peers = node.peer_list()
        return json_response(
            {
                "listening": True,
                "n_peers": len(peers),
                "peers": [
                    {"node_id": node_id, "outbound": outbound} for node_id, outbound in peers
                ],
            }
        )

    return HttpServer(
        {
            ("GET", ""): index,
            ("GET", "status"): status,
            ("GET", "block"): block,
            ("GET", "metrics"): metrics,
            ("POST", "tx"): post_tx,
            ("GET", "tx"): get_tx,
            ("GET", "markets"): markets,
            ("GET", "book"): book,
            ("GET", "account"): account,
            ("GET", "validators"): validators,
            ("GET", "net_info"): net_info,
            ("GET", "trades"): trades,
            ("GET", "liquidations"): liquidations,
        },
        max_body_bytes=node.config.http.max_body_bytes,
        timeout_s=node.config.http.request_timeout_ms / 1000,
        max_connections=node.config.http.max_connections,
        max_connections_per_host=node.config.http.max_connections_per_host,
        on_connection_failure=on_connection_failure,
    )
