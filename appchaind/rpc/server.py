"""The RPC port's server: connections and request methods.

One :class:`RpcServer` per node. :meth:`RpcServer.on_commit` is a node ``on_commit``
listener: it wakes ``broadcast_tx`` calls waiting for their commit and hands the block
to the streams (:mod:`appchaind.rpc.streams`), which never wait for a client.

Each connection has a reader task (framing, rate limit, dispatch; a request runs in its
own task so ``broadcast_tx`` in commit mode does not block the others) and a writer
task, the only one that writes to the socket.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from appchaind.abci import FinalizeResult
from appchaind.chain import types
from appchaind.chain.codes import retryable
from appchaind.containment import ConnectionGuard
from appchaind.errors import open_listeners
from appchaind.rpc import params as params_
from appchaind.rpc import views
from appchaind.rpc.protocol import (
    DROP,
    ErrorCode,
    FrameDecoder,
    ProtocolError,
    RpcError,
    error_frame,
    frame,
    pack,
    parse_request,
    response_frame,
)
from appchaind.rpc.recent import LIQUIDATIONS, TRADES_PER_MARKET, RecentActivity
from appchaind.rpc.streams import BOOK_DEPTH, Connection, StreamHub
from appchaind.telemetry.logs import get_logger

if TYPE_CHECKING:
    from appchaind.exchange.app import ExchangeApp
    from appchaind.node.mempool import AddResult
    from appchaind.node.view import NodeView

__all__ = ["RpcServer", "RpcStatistics", "admission_view"]

log = get_logger("rpc")

#: A frame not written within this long closes the connection (the client stopped reading).
WRITE_TIMEOUT_S = 10.0
DEFAULT_COMMIT_TIMEOUT_S = 30.0
MAX_COMMIT_TIMEOUT_S = 120.0
#: Queued frames joined into one socket write, up to about this many bytes.
WRITE_COALESCE_BYTES = 256 * 1024


def _drain(outbox: trio.MemoryReceiveChannel[bytes], first: bytes) -> bytes:
    """``first`` and the frames already waiting behind it (up to WRITE_COALESCE_BYTES)."""
    parts, size = [first], len(first)
    while size < WRITE_COALESCE_BYTES:
        try:
            data = outbox.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            break
        parts.append(data)
        size += len(data)
    return first if len(parts) == 1 else b"".join(parts)


def admission_view(result: AddResult) -> dict[str, Any]:
    """The mempool's verdict as the RPC and HTTP ports answer it: the tx hash, the result
    code (:class:`~appchaind.chain.codes.Code`), its log, and whether the node is busy (the same
    tx may be sent again later)."""
    return {
        "tx_hash": result.tx_hash.hex(),
        "code": int(result.code),
        "log": result.log,
        "duplicate": result.duplicate,
        "retry": retryable(result.code),
        "retry_after_ms": result.retry_after_ms,
    }


class RpcServer:
    """Serves ``node``'s RPC port and its streams."""

    def __init__(self, node: NodeView) -> None:
        self.node = node
        c = node.config.rpc
        self.max_connections = c.max_connections
        self.max_connections_per_host = c.max_connections_per_host
        self.request_timeout_s = c.request_timeout_ms / 1000
        #: Open connections per client IP address (for max_connections_per_host).
        self._per_host: Counter[str] = Counter()
        self.max_message_bytes = c.max_message_bytes
        self.requests_per_second = c.requests_per_second
        self.queue_messages = c.subscriber_queue_messages
        self.connections: set[Connection] = set()
        self.bound_port = 0
        #: Contains what one connection raises; counted in the node's metrics.
        self.guard = ConnectionGuard(
            "rpc", protocol_errors=(ProtocolError,), on_failure=node.metrics.connection_failed
        )
        self._commit_waiters: dict[bytes, trio.Event] = {}
        metrics = node.metrics
        self._broadcast_seconds = metrics.rpc_broadcast_seconds.labels(chain_id=node.chain_id)
        exchange = self.exchange
        self._markets = [] if exchange is None else [m.params for m in exchange.markets]
        self.streams = StreamHub(
            exchange, max_subscriptions=c.max_subscriptions, queue_messages=self.queue_messages
        )
        #: The last fills per market and liquidations (``trades``, ``liquidations``).
        self.recent = RecentActivity(self._markets)
        self._methods = {
            "status": self._status,
            "broadcast_tx": self._broadcast_tx,
            "account": self._account,
            "book": self._book,
            "markets": self._markets_method,
            "builders": self._builders,
            "validators": self._validators,
            "delegations": self._delegations,
            "tx": self._tx,
            "block": self._block,
            "trades": self._trades,
            "liquidations": self._liquidations,
        }

    @property
    def exchange(self) -> ExchangeApp | None:
        return self.node.exchange

    # ------------------------------------------------------------------ listener

    async def run(
        self, host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> None:
        listeners = await open_listeners(host, port, "rpc.listen_address")
        self.bound_port = listeners[0].socket.getsockname()[1]
        log.info("rpc_listening", address=f"{host}:{self.bound_port}")
        task_status.started(self.bound_port)
        await self.guard.serve_listeners(self._serve, listeners)

    async def _serve(self, stream: trio.SocketStream, peer: str) -> None:
        """One connection; run through :attr:`guard`, which contains and counts whatever
        it raises (a reset, a broken pipe, a bug) and closes the stream."""
        host = peer.rpartition(":")[0]
        refusal = None
        if len(self.connections) >= self.max_connections:
            refusal = f"too many RPC connections (limit {self.max_connections})"
        elif self._per_host[host] >= self.max_connections_per_host:
            refusal = (
                f"too many RPC connections from {host} "
                f"(limit {self.max_connections_per_host} per host)"
            )
        if refusal is not None:
            self.guard.refuse(peer, refusal)
            with trio.move_on_after(1):
                await stream.send_all(error_frame(None, ErrorCode.UNAVAILABLE, refusal))
            return
        send, receive = trio.open_memory_channel[bytes](self.queue_messages)
        conn = Connection(peer, send, tokens=float(self.requests_per_second))
        conn.refilled = time.monotonic()
        self.connections.add(conn)
        self._per_host[host] += 1
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, conn, stream, receive, nursery.cancel_scope)
                async with trio.open_nursery() as calls:
                    await self._reader(conn, stream, calls)
                # The client stopped sending (EOF, or a half-close after its requests) and
                # every call has its reply queued: the writer sends them, then ends.
                await send.aclose()
        finally:
            self.connections.discard(conn)
            self._per_host[host] -= 1
            if not self._per_host[host]:
                del self._per_host[host]
            self.streams.forget(conn)

    async def _writer(
        self,
        conn: Connection,
        stream: trio.SocketStream,
        outbox: trio.MemoryReceiveChannel[bytes],
        scope: trio.CancelScope,
    ) -> None:
        """The only task that writes to the socket. A frame not taken by the client within
        WRITE_TIMEOUT_S ends the connection (reason ``timeout``); a dropped subscriber
        gets its DROP frame, then the connection ends. Frames queued meanwhile go out in
        one write (up to WRITE_COALESCE_BYTES): under load a send per reply cost more than
        the reply."""
        async for data in outbox:
            if conn.drop_reason is None and len(data) < WRITE_COALESCE_BYTES:
                data = _drain(outbox, data)
            if conn.drop_reason is not None:
                data = frame(pack([DROP, None, conn.drop_reason]))
            with trio.move_on_after(WRITE_TIMEOUT_S) as timer:
                await stream.send_all(data)
            if timer.cancelled_caught:
                raise trio.TooSlowError(
                    f"the client read nothing for {WRITE_TIMEOUT_S:g} s while a reply waited"
                )
            if conn.drop_reason is not None:
                break
        scope.cancel()

    async def _reader(
        self, conn: Connection, stream: trio.SocketStream, nursery: trio.Nursery
    ) -> None:
        """Reads requests. A request begun must be complete within request_timeout_s of
        its first byte, or the client (a slow-loris) gets an error and is closed; between
        requests a connection may stay idle (a subscriber does)."""
        decoder = FrameDecoder(self.max_message_bytes)
        broadcasts: list[tuple[int, dict[str, Any]]] = []
        begun: float | None = None  # when the first byte of a partial request came
        while True:
            data = None
            with trio.move_on_at(math.inf if begun is None else begun + self.request_timeout_s):
                data = await stream.receive_some(65536)
            if data is None:
                await conn.outbox.send(
                    error_frame(
                        None, ErrorCode.TIMEOUT,
                        f"request not complete within {self.request_timeout_s:g} s of its "
                        "first byte; closing the connection",
                    )
                )  # fmt: skip
                return
            if not data:
                return
            try:
                payloads = decoder.feed(data)
            except ProtocolError as exc:
                await conn.outbox.send(error_frame(None, exc.code, exc.message))
                return
            if not decoder.pending:
                begun = None
            elif begun is None or payloads:
                begun = trio.current_time()
            for payload in payloads:
                try:
                    request_id, method, params = parse_request(payload, self.max_message_bytes)
                except ProtocolError as exc:
                    rid = getattr(exc, "request_id", None)
                    await conn.outbox.send(error_frame(rid, exc.code, exc.message))
                    continue
                if not self._take_token(conn):
                    await conn.outbox.send(
                        error_frame(
                            request_id, ErrorCode.RATE_LIMITED,
                            f"more than {self.requests_per_second} requests per second on "
                            "this connection; slow down",
                        )
                    )  # fmt: skip
                    continue
                if method in ("subscribe", "unsubscribe"):
                    await conn.outbox.send(self._call_sync(conn, request_id, method, params))
                elif method == "broadcast_tx" and params.get("mode", "sync") == "sync":
                    broadcasts.append((request_id, params))
                else:
                    nursery.start_soon(
                        self._call, conn, request_id, method, params, time.monotonic()
                    )
            if broadcasts:
                # A read's txs are admitted together (one task, one queue of signature
                # checks): per request, a task and a wake-up cost more than the tx's check.
                nursery.start_soon(self._broadcast_batch, conn, broadcasts, time.monotonic())
                broadcasts = []

    def _take_token(self, conn: Connection) -> bool:
        now = time.monotonic()
        rate = self.requests_per_second
        conn.tokens = min(float(rate), conn.tokens + (now - conn.refilled) * rate)
        conn.refilled = now
        if conn.tokens < 1:
            return False
        conn.tokens -= 1
        return True

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """The result of one of the port's request methods (not ``subscribe`` and
        ``unsubscribe``, which belong to a connection); raises :class:`RpcError`. The HTTP
        port answers its exchange endpoints through this."""
        handler = self._methods.get(method)
        if handler is None:
            raise RpcError(
                ErrorCode.UNKNOWN_METHOD,
                f"unknown method {method[:64]!r}; methods: "
                + ", ".join(sorted([*self._methods, "subscribe", "unsubscribe"])),
            )
        return await handler(params)

    async def _call(
        self,
        conn: Connection,
        request_id: int,
        method: str,
        params: dict[str, Any],
        received: float | None = None,
    ) -> None:
        try:
            reply = response_frame(request_id, await self.call(method, params))
        except RpcError as exc:
            reply = error_frame(request_id, exc.code, exc.message)
        except Exception as exc:  # a handler bug must not take the node down
            log.error("rpc_handler_failed", method=method, error=repr(exc))
            reply = error_frame(
                request_id, ErrorCode.INTERNAL, f"internal error: {type(exc).__name__}"
            )
        if received is not None and method == "broadcast_tx" and params.get("mode") != "commit":
            self._broadcast_seconds.observe(time.monotonic() - received)
        try:
            await conn.outbox.send(reply)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def _call_sync(
        self, conn: Connection, request_id: int, method: str, params: dict[str, Any]
    ) -> bytes:
        try:
            if method == "subscribe":
                return response_frame(request_id, self.streams.subscribe(conn, params))
            return response_frame(request_id, self.streams.unsubscribe(conn, params))
        except RpcError as exc:
            return error_frame(request_id, exc.code, exc.message)
        except Exception as exc:  # a handler bug must not take the node down
            log.error("rpc_handler_failed", method=method, error=repr(exc))
            return error_frame(
                request_id, ErrorCode.INTERNAL, f"internal error: {type(exc).__name__}"
            )

    # ------------------------------------------------------------------ parameters

    def _need_exchange(self) -> ExchangeApp:
        exchange = self.exchange
        if exchange is None:
            raise RpcError(ErrorCode.UNAVAILABLE, "this node does not run the exchange")
        return exchange

    # ------------------------------------------------------------------ methods

    async def _status(self, params: dict[str, Any]) -> dict[str, Any]:
        lifetime = self.node.genesis.params.max_tx_lifetime_blocks
        return {**self.node.status().as_json(), "max_tx_lifetime_blocks": lifetime}

    async def _broadcast_batch(
        self, conn: Connection, requests: list[tuple[int, dict[str, Any]]], received: float
    ) -> None:
        """``broadcast_tx`` requests in mode ``sync`` read together: each answered as
        :meth:`_broadcast_tx` would, the valid ones admitted in one call."""
        replies: list[bytes | None] = []
        raws: list[bytes] = []
        ids: list[int] = []
        for request_id, params in requests:
            try:
                raws.append(self._tx_param(params))
                ids.append(request_id)
                replies.append(None)
            except RpcError as exc:
                replies.append(error_frame(request_id, exc.code, exc.message))
        if raws:
            try:
                results = await self.node.submit_txs(raws)
                answers = iter([
                    response_frame(request_id, self._admission_answer(result))
                    for request_id, result in zip(ids, results, strict=True)
                ])  # fmt: skip
            except Exception as exc:  # a handler bug must not take the node down
                log.error("rpc_handler_failed", method="broadcast_tx", error=repr(exc))
                message = f"internal error: {type(exc).__name__}"
                answers = iter([error_frame(i, ErrorCode.INTERNAL, message) for i in ids])
            replies = [next(answers) if reply is None else reply for reply in replies]
        elapsed = time.monotonic() - received
        for _ in requests:
            self._broadcast_seconds.observe(elapsed)
        try:
            await conn.outbox.send(b"".join(r for r in replies if r is not None))
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def _admission_answer(self, result: AddResult) -> dict[str, Any]:
        if result.duplicate:
            # Already committed: say where (a store read only for a tx seen before).
            return self._committed_view(result.tx_hash) or admission_view(result)
        return admission_view(result)

    def _tx_param(self, params: dict[str, Any]) -> bytes:
        """A broadcast's signed tx bytes (``tx``: bytes or hex), checked for size, once its
        ``mode`` and ``timeout_s`` are checked too."""
        raw = params.get("tx")
        if isinstance(raw, str):
            try:
                raw = bytes.fromhex(raw)
            except ValueError:
                raw = None
        if not isinstance(raw, bytes) or not raw:
            raise RpcError(ErrorCode.BAD_PARAMS, "tx must be the signed tx's bytes (or hex)")
        if len(raw) > self.node.genesis.params.max_tx_bytes:
            raise RpcError(
                ErrorCode.TOO_LARGE,
                f"tx is {len(raw)} bytes; the limit is {self.node.genesis.params.max_tx_bytes}",
            )
        mode = params.get("mode", "sync")
        if mode not in ("sync", "commit"):
            raise RpcError(
                ErrorCode.BAD_PARAMS, f"mode must be 'sync' or 'commit', got {mode!r:.60}"
            )
        timeout = params.get("timeout_s", DEFAULT_COMMIT_TIMEOUT_S)
        if not isinstance(timeout, int | float) or not 0 < timeout <= MAX_COMMIT_TIMEOUT_S:
            raise RpcError(
                ErrorCode.BAD_PARAMS, f"timeout_s must be in (0, {MAX_COMMIT_TIMEOUT_S}]"
            )
        return raw

    async def _broadcast_tx(self, params: dict[str, Any]) -> dict[str, Any]:
        raw = self._tx_param(params)
        mode = params.get("mode", "sync")
        timeout = params.get("timeout_s", DEFAULT_COMMIT_TIMEOUT_S)
        h = types.tx_hash(raw)
        if mode == "sync":
            return self._admission_answer(await self.node.submit_tx(raw))
        committed = self._committed_view(h)
        if committed is not None:
            return committed
        waiter = self._commit_waiters.setdefault(h, trio.Event())
        try:
            result = await self.node.submit_tx(raw)
            if not result.accepted and not result.duplicate:
                return {**admission_view(result), "height": None}
            with trio.move_on_after(timeout):
                await waiter.wait()
        finally:
            if self._commit_waiters.get(h) is waiter and not waiter.is_set():
                del self._commit_waiters[h]
        committed = self._committed_view(h)
        if committed is None:
            raise RpcError(
                ErrorCode.TIMEOUT,
                f"tx {h.hex()} was accepted but not committed within {timeout} s; "
                "it may still commit before its expiry height (query it with `tx`)",
            )
        return committed

    def _committed_view(self, h: bytes) -> dict[str, Any] | None:
        entry = self.node.tx_location(h)
        if entry is None:
            return None
        return views.tx_index_view(
            h, entry.height, entry.index, entry.code, entry.log, entry.events, self._markets
        )

    async def _account(self, params: dict[str, Any]) -> dict[str, Any]:
        return views.account_view(self._need_exchange(), params_.address(params))

    async def _book(self, params: dict[str, Any]) -> dict[str, Any]:
        self._need_exchange()
        market_id = params_.market_id(params, self._markets)
        depth = params.get("depth", 20)
        if type(depth) is not int or not 1 <= depth <= BOOK_DEPTH:
            raise RpcError(ErrorCode.BAD_PARAMS, f"depth must be an int from 1 to {BOOK_DEPTH}")
        return self.streams.book_snapshot(market_id, depth)

    async def _markets_method(self, params: dict[str, Any]) -> dict[str, Any]:
        exchange = self._need_exchange()
        return {"height": exchange.height, "markets": views.markets_view(exchange)}

    async def _builders(self, params: dict[str, Any]) -> dict[str, Any]:
        return views.builders_view(self._need_exchange())

    async def _validators(self, params: dict[str, Any]) -> dict[str, Any]:
        return views.validators_view(self._need_exchange())

    async def _delegations(self, params: dict[str, Any]) -> dict[str, Any]:
        return views.delegations_view(self._need_exchange(), params_.address(params))

    async def _tx(self, params: dict[str, Any]) -> dict[str, Any]:
        h = params_.tx_hash(params, "hash")
        found = self._committed_view(h)
        if found is None:
            pending = self.node.is_pending(h)
            raise RpcError(
                ErrorCode.NOT_FOUND,
                f"tx {h.hex()} is in the mempool, not yet committed"
                if pending
                else f"no committed tx {h.hex()}",
            )
        return found

    async def _block(self, params: dict[str, Any]) -> dict[str, Any]:
        height = params.get("height", self.node.latest_height)
        if type(height) is not int or height < 1:
            raise RpcError(ErrorCode.BAD_PARAMS, "height must be a positive int")
        block = self.node.block(height)
        if block is None:
            raise RpcError(
                ErrorCode.NOT_FOUND,
                f"no block at height {height}; the latest is {self.node.latest_height}",
            )
        forced = self.node.forced_txs(height)
        doc = views.block_json(block, forced)
        for key, txs in (("tx_results", block.txs), ("forced_tx_results", forced)):
            results = []
            for tx in txs:
                entry = self.node.tx_location(types.tx_hash(tx))
                results.append(None if entry is None else {"code": entry.code, "log": entry.log})
            doc[key] = results
        return doc

    async def _trades(self, params: dict[str, Any]) -> dict[str, Any]:
        exchange = self._need_exchange()
        market_id = (
            None if params.get("market") is None else params_.market_id(params, self._markets)
        )
        limit = _limit(params, TRADES_PER_MARKET)
        return {
            "market": None if market_id is None else self._markets[market_id].symbol,
            "height": exchange.height,
            "trades": self.recent.trades(market_id, limit),
        }

    async def _liquidations(self, params: dict[str, Any]) -> dict[str, Any]:
        exchange = self._need_exchange()
        limit = _limit(params, LIQUIDATIONS)
        return {"height": exchange.height, "liquidations": self.recent.liquidations(limit)}

    def on_commit(self, block: types.Block, hashes: list[bytes], result: FinalizeResult) -> None:
        """Node ``on_commit`` listener: wakes ``broadcast_tx`` commit waiters, keeps the
        block's fills and liquidations (raw), then publishes every stream's item for this
        block. Never waits."""
        for h in hashes:
            waiter = self._commit_waiters.pop(h, None)
            if waiter is not None:
                waiter.set()
        if self.exchange is not None:
            self.recent.record(block.header.height, block.header.time_ms, hashes, result)
        self.streams.publish_block(block, hashes, result)

    def statistics(self) -> RpcStatistics:
        return RpcStatistics(
            connections=len(self.connections),
            subscriptions=self.streams.subscriptions,
            dropped_subscribers=self.streams.dropped_subscribers,
            commit_waiters=len(self._commit_waiters),
        )


def _limit(params: dict[str, Any], most: int) -> int:
    """``params["limit"]``: an int from 1 to ``most`` (default ``most``)."""
    limit = params.get("limit", most)
    if type(limit) is not int or not 1 <= limit <= most:
        raise RpcError(
            ErrorCode.BAD_PARAMS, f"limit must be an int from 1 to {most}, got {limit!r:.40}"
        )
    return limit


@dataclass(frozen=True, slots=True)
class RpcStatistics:
    connections: int
    subscriptions: int
    dropped_subscribers: int
    commit_waiters: int
