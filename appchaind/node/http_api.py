"""The node's HTTP port: JSON status and blocks, and Prometheus ``/metrics``.

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
``GET /validators``      the validator set: address, public key, voting power, priority
``GET /net_info``        connected peers: node id and direction

Errors are JSON ``{"error": {"code": HTTP status, "message": "..."}}``. The exchange
answers are the RPC port's (:mod:`appchaind.rpc.views`): decimal strings for prices,
sizes and amounts.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from appchaind import types
from appchaind.http import HttpServer, Request, Response, error_response, json_response
from appchaind.rpc.protocol import ErrorCode, RpcError
from appchaind.rpc.server import submit_code

if TYPE_CHECKING:
    from appchaind.node.node import Node

__all__ = ["make_http_server", "block_json"]

_HTTP_STATUS = {
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL: 500,
}


def block_json(block: types.Block) -> dict[str, Any]:
    h = block.header
    return {
        "height": h.height,
        "hash": block.block_id().hex(),
        "header": {
            "chain_id": h.chain_id,
            "height": h.height,
            "time_ms": h.time_ms,
            "last_block_id": h.last_block_id.hex(),
            "last_commit_hash": h.last_commit_hash.hex(),
            "data_hash": h.data_hash.hex(),
            "validators_hash": h.validators_hash.hex(),
            "next_validators_hash": h.next_validators_hash.hex(),
            "app_hash": h.app_hash.hex(),
            "proposer": h.proposer.hex(),
            "evidence_hash": h.evidence_hash.hex(),
        },
        "txs": [tx.hex() for tx in block.txs],
        "tx_hashes": [types.tx_hash(tx).hex() for tx in block.txs],
        "evidence": [
            {
                "validator": e.vote_a.validator.hex(),
                "height": e.vote_a.height,
                "round": e.vote_a.round,
            }
            for e in block.evidence
        ],
        "last_commit": None
        if block.last_commit is None
        else {
            "height": block.last_commit.height,
            "round": block.last_commit.round,
            "block_hash": block.last_commit.block_hash.hex(),
            "signed": sum(1 for s in block.last_commit.signatures if s.flag == types.COMMIT_BLOCK),
            "signers": [
                s.validator.hex()
                for s in block.last_commit.signatures
                if s.flag == types.COMMIT_BLOCK
            ],
            "validators": len(block.last_commit.signatures),
        },
    }


def make_http_server(node: Node) -> HttpServer:
    async def status(request: Request) -> Response:
        return json_response(node.status().as_json())

    async def block(request: Request) -> Response:
        if len(request.segments) != 2 or not request.segments[1].isdigit():
            return error_response(400, "use /block/{height} with a decimal height, e.g. /block/5")
        height = int(request.segments[1])
        found = node.store.block(height)
        if found is None:
            return error_response(
                404, f"no block at height {height}; the latest is {node.latest_height}"
            )
        return json_response(block_json(found))

    async def metrics(request: Request) -> Response:
        node._update_gauges()
        return Response(200, node.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")

    async def post_tx(request: Request) -> Response:
        body = request.body
        if body[:1] == b"{":
            try:
                raw = bytes.fromhex(json.loads(body)["tx"])
            except (ValueError, KeyError, TypeError):
                return error_response(400, 'expected a JSON body {"tx": "<hex of the signed tx>"}')
        else:
            raw = body
        if not raw:
            return error_response(400, "empty body: send the signed tx (msgpack bytes or JSON hex)")
        result = await node.submit_tx(raw)
        doc: dict[str, Any] = {
            "tx_hash": result.tx_hash.hex(),
            "code": submit_code(result.accepted, result.reason),
            "log": result.reason,
            "duplicate": result.duplicate,
        }
        if result.accepted or result.duplicate:
            return json_response(doc)
        return json_response({**doc, "error": {"code": 400, "message": result.reason}}, 400)

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
        server = getattr(node, "rpc_server", None)
        if server is None:
            return error_response(503, "the node is starting; retry in a moment")
        try:
            return json_response(await server._methods[method](params))
        except RpcError as exc:
            return error_response(_HTTP_STATUS.get(exc.code, 400), exc.message)

    async def markets(request: Request) -> Response:
        return await rpc_call("markets", {})

    async def book(request: Request) -> Response:
        if len(request.segments) != 2:
            return error_response(400, "use /book/{market}, e.g. /book/BTC-PERP?depth=10")
        depth_text = request.query.get("depth", ["20"])[0]
        if not depth_text.isdigit():
            return error_response(400, f"depth must be a positive integer, got {depth_text!r}")
        return await rpc_call("book", {"market": request.segments[1], "depth": int(depth_text)})

    async def account(request: Request) -> Response:
        if len(request.segments) != 2:
            return error_response(400, "use /account/{address} with the 40-hex-digit address")
        return await rpc_call("account", {"address": request.segments[1]})

    async def validators(request: Request) -> Response:
        vs = node.chain_state.validators
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
                    }
                    for v, priority in zip(vs.validators, vs.priorities, strict=True)
                ],
            }
        )

    async def net_info(request: Request) -> Response:
        peers = node.peers.peers
        return json_response(
            {
                "listening": True,
                "n_peers": len(peers),
                "peers": [
                    {"node_id": p.node_id, "outbound": p.outbound}
                    for p in sorted(peers.values(), key=lambda p: p.node_id)
                ],
            }
        )

    return HttpServer(
        {
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
        },
        on_connection_failure=node.metrics.connection_failed,
    )
