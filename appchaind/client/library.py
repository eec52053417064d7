"""Client library for the RPC port: queries, signed txs and streams (async, trio).

Quick start (async)::

    from appchaind.client.library import open_client
    from appchaind.chain.crypto import PrivateKey

    async with open_client("127.0.0.1:26601") as client:
        key = PrivateKey.load("localnet/accounts/trader0.json")
        result = await client.place_order(key, "BTC-PERP", "buy", "0.01", price="65000")
        print(result.code, result.height, result.fills)
        async for item in await client.subscribe("trades", market="BTC-PERP"):
            print(item["fills"])

Synchronous scripts use :class:`SyncClient` (one short connection per call)::

    SyncClient("127.0.0.1:26601").account("ab12...")

Units: every price, size and amount a caller passes or receives is a decimal string
("65000.5", "0.01"); the client converts to integer ticks, lots and quote micro-units
with the market's ``tick_size``/``lot_size`` exactly, and refuses (``UnitError``) a value
off the tick or the lot with the two nearest valid values. Results and stream items are
the server's maps (see :mod:`appchaind.rpc` for the protocol and the field names).

Nonces are millisecond timestamps made unique per client; txs expire
``expiry_blocks`` (default 100) after the latest height the node reported.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from appchaind.chain import codec, types
from appchaind.chain.crypto import PrivateKey
from appchaind.chain.units import UnitError, to_units
from appchaind.client.results import TxResult
from appchaind.exchange.txs import (
    BondBuilder,
    CancelAll,
    CancelOrder,
    Faucet,
    OrderType,
    PlaceOrder,
    RegisterBuilder,
    ReplaceOrder,
    Transfer,
    UnbondBuilder,
    Withdraw,
)
from appchaind.rpc.protocol import (
    DROP,
    RESPONSE,
    STREAM,
    ErrorCode,
    FrameDecoder,
    ProtocolError,
    RpcError,
    request_frame,
    unpack,
)
from appchaind.rpc.views import QUOTE_UNIT

__all__ = [
    "Client",
    "SyncClient",
    "TxResult",
    "Subscription",
    "open_client",
    "RpcError",
    "UnitError",
    "ORDER_TYPES",
    "TIME_IN_FORCE",
    "SIDES",
]

#: CLI/JSON names of the order types, time-in-force values and sides.
ORDER_TYPES = {
    "limit": OrderType.LIMIT,
    "market": OrderType.MARKET,
    "stop-market": OrderType.STOP_MARKET,
    "stop-limit": OrderType.STOP_LIMIT,
    "take-profit-market": OrderType.TAKE_PROFIT_MARKET,
    "take-profit-limit": OrderType.TAKE_PROFIT_LIMIT,
}
TIME_IN_FORCE = {"gtc": 0, "post-only": 1, "ioc": 2, "fok": 3}
SIDES = {"sell": 0, "buy": 1}
#: Largest frame the client accepts from a server (a block can be big).
MAX_FRAME_BYTES = 64 * 1024 * 1024
DEFAULT_PORT = 26601
#: A request not written within this long (the node stopped reading) fails the connection.
SEND_TIMEOUT_S = 30.0


class Subscription:
    """A stream: iterate it (``async for item in sub``) for items, in order. ``snapshot``
    holds the book snapshot a ``book`` subscription starts from. Iteration ends with
    :class:`RpcError` (``UNAVAILABLE``) if the server drops the subscription or the
    connection closes."""

    def __init__(self, client: Client, sub_id: int, stream: str, snapshot: Any) -> None:
        self.client = client
        self.id = sub_id
        self.stream = stream
        self.snapshot = snapshot
        self._send, self._receive = trio.open_memory_channel[Any](math.inf)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            item = await self._receive.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
        if isinstance(item, RpcError):
            raise item
        result: dict[str, Any] = item
        return result

    async def aclose(self) -> None:
        """Unsubscribe."""
        self.client._subscriptions.pop(self.id, None)
        await self.client.request("unsubscribe", {"subscription": self.id})


def _answer(waiter: trio.MemorySendChannel[Any] | Callable[[Any], None], outcome: Any) -> None:
    if isinstance(waiter, trio.MemorySendChannel):
        waiter.send_nowait(outcome)
    else:
        waiter(outcome)


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT (or HOST, or :PORT) with the RPC port's default."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text or "127.0.0.1", DEFAULT_PORT
    if not port.isdigit():
        raise ValueError(f"node address must be HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


class Client:
    """An open RPC connection. Make one with :func:`open_client`."""

    def __init__(self, stream: trio.SocketStream, *, expiry_blocks: int = 100) -> None:
        self._stream = stream
        self._ids = itertools.count(1)
        #: Requests waiting for their reply: a channel (``request``) or a callback
        #: (``request_nowait``), given the result or the RpcError.
        self._pending: dict[int, trio.MemorySendChannel[Any] | Callable[[Any], None]] = {}
        self._subscriptions: dict[int, Subscription] = {}
        self._send_lock = trio.Lock()
        #: Frames waiting for the task that holds the send lock to write them.
        self._outgoing: list[bytes] = []
        self._closed: RpcError | None = None
        self._markets: dict[str, dict[str, Any]] | None = None
        self._chain_id: str | None = None
        self._height = 0
        self._height_at = 0.0
        self._last_nonce = 0
        self._last_client_id = 0
        self.expiry_blocks = expiry_blocks

    # ------------------------------------------------------------------ plumbing

    async def _read_loop(self) -> None:
        decoder = FrameDecoder(MAX_FRAME_BYTES)
        reason = RpcError(ErrorCode.UNAVAILABLE, "connection closed by the node")
        try:
            while True:
                data = await self._stream.receive_some(65536)
                if not data:
                    break
                for payload in decoder.feed(data):
                    self._dispatch(unpack(payload, MAX_FRAME_BYTES))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            reason = RpcError(ErrorCode.UNAVAILABLE, f"connection lost: {exc}")
        except ProtocolError as exc:
            reason = exc
        self._fail_all(reason)

    def _fail_all(self, reason: RpcError) -> None:
        if self._closed is None:
            self._closed = reason
        pending = list(self._pending.values())
        self._pending.clear()
        for waiter in pending:
            _answer(waiter, reason)
        for sub in self._subscriptions.values():
            sub._send.send_nowait(reason)
        self._subscriptions.clear()

    def _dispatch(self, message: Any) -> None:
        if not isinstance(message, list) or not message:
            return
        kind = message[0]
        if kind == RESPONSE and len(message) == 4:
            _k, request_id, error, result = message
            outcome = result if error is None else RpcError(error["code"], error["message"])
            waiter = self._pending.pop(request_id, None) if request_id is not None else None
            if waiter is not None:
                _answer(waiter, outcome)
            elif isinstance(outcome, RpcError):
                self._fail_all(outcome)  # a connection-level error (garbage, oversized)
        elif kind == STREAM and len(message) == 4:
            sub = self._subscriptions.get(message[1])
            if sub is not None:
                sub._send.send_nowait(message[3])
        elif kind == DROP:
            self._fail_all(RpcError(ErrorCode.UNAVAILABLE, f"dropped by the node: {message[2]}"))

    async def send_raw(self, data: bytes) -> None:
        """Writes bytes as they are (tests use it to send malformed frames). Requests made
        while another task writes are queued and go out with its next write, joined: a
        sender of many concurrent requests pays one socket write per batch, not each."""
        self._outgoing.append(data)
        await self.flush()

    async def flush(self) -> None:
        """Writes the queued requests (:meth:`request_nowait` queues without writing)."""
        if self._send_lock.locked():
            return  # the task writing now sends them next, in order
        async with self._send_lock:
            while self._outgoing:
                chunk = b"".join(self._outgoing)
                self._outgoing.clear()
                # Shielded: the chunk holds other tasks' requests, and a write cut short by
                # this caller's cancellation would leave them (and the stream) broken.
                with trio.CancelScope(shield=True), trio.move_on_after(SEND_TIMEOUT_S) as timer:
                    try:
                        await self._stream.send_all(chunk)
                    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                        self._fail_all(RpcError(ErrorCode.UNAVAILABLE, f"connection lost: {exc}"))
                        raise
                if timer.cancelled_caught:
                    reason = RpcError(
                        ErrorCode.UNAVAILABLE,
                        f"the node read nothing for {SEND_TIMEOUT_S:g} s; connection abandoned",
                    )
                    self._fail_all(reason)
                    raise reason

    def request_nowait(
        self, method: str, params: dict[str, Any], on_reply: Callable[[Any], None]
    ) -> None:
        """Queues a call of ``method`` without waiting: ``on_reply`` gets its result, or
        the :class:`RpcError` (also when the connection fails). Nothing is written until
        :meth:`flush`. For senders of many requests (a load generator, a market maker):
        no task and no channel per request. ``on_reply`` runs in the connection's reader
        and must not raise."""
        if self._closed is not None:
            on_reply(self._closed)
            return
        request_id = next(self._ids)
        self._pending[request_id] = on_reply
        self._outgoing.append(request_frame(request_id, method, params))

    async def request(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Calls ``method``; returns its result or raises :class:`RpcError`."""
        if self._closed is not None:
            raise self._closed
        request_id = next(self._ids)
        send, receive = trio.open_memory_channel[Any](1)
        self._pending[request_id] = send
        await self.send_raw(request_frame(request_id, method, params or {}))
        outcome = await receive.receive()
        if isinstance(outcome, RpcError):
            raise outcome
        return outcome

    # ------------------------------------------------------------------ queries

    async def status(self) -> dict[str, Any]:
        """Chain id, node id, latest height with its block and app hash, peers."""
        doc: dict[str, Any] = await self.request("status")
        self._chain_id = doc["chain_id"]
        self._height, self._height_at = doc["height"], time.monotonic()
        return doc

    async def markets(self) -> list[dict[str, Any]]:
        """Every market: market, tick_size, lot_size, oracle_price, funding_rate,
        open_interest, best bid/ask, margin and fee fractions."""
        doc = await self.request("markets")
        markets: list[dict[str, Any]] = doc["markets"]
        self._markets = {m["market"]: m for m in markets}
        return markets

    async def account(self, address: str | bytes) -> dict[str, Any]:
        """Balance, positions (size, entry price, unrealised PnL), open orders, net and
        free collateral, margin ratio. ``address`` in hex or raw bytes."""
        if isinstance(address, bytes):
            address = address.hex()
        result: dict[str, Any] = await self.request("account", {"address": address})
        return result

    async def builders(self) -> dict[str, Any]:
        """{"height", "builders": [{address, name, bond, unbonding, bids_won, paid}, ...]}."""
        result: dict[str, Any] = await self.request("builders", {})
        return result

    async def book(self, market: str, depth: int = 20) -> dict[str, Any]:
        """L2 depth: {"bids": [[price, size], ...], "asks": ..., "seq", "height"}."""
        result: dict[str, Any] = await self.request("book", {"market": market, "depth": depth})
        return result

    async def trades(self, market: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The node's last committed fills of ``market`` (every market: None), newest first."""
        params: dict[str, Any] = (
            {"limit": limit} if market is None else {"market": market, "limit": limit}
        )
        return list((await self.request("trades", params))["trades"])

    async def liquidations(self, limit: int = 20) -> list[dict[str, Any]]:
        """The node's last committed liquidation events, newest first."""
        return list((await self.request("liquidations", {"limit": limit}))["liquidations"])

    async def tx(self, tx_hash: str) -> TxResult:
        """A committed tx's result, fills and events."""
        return TxResult.from_map(await self.request("tx", {"hash": tx_hash}))

    async def block(self, height: int | None = None) -> dict[str, Any]:
        """The block at ``height`` (default: the latest) with its txs' result codes."""
        params = {} if height is None else {"height": height}
        result: dict[str, Any] = await self.request("block", params)
        return result

    async def subscribe(self, stream: str, **params: Any) -> Subscription:
        """Starts a stream: ``blocks``; ``trades``/``book`` with ``market="BTC-PERP"``;
        ``account`` with ``address="<hex>"``."""
        doc = await self.request("subscribe", {"stream": stream, **params})
        sub = Subscription(self, doc["subscription"], stream, doc.get("snapshot"))
        self._subscriptions[sub.id] = sub
        return sub

    # ------------------------------------------------------------------ txs

    async def market(self, symbol: str) -> dict[str, Any]:
        """One market's parameters (cached after the first ``markets`` call)."""
        if self._markets is None or symbol not in self._markets:
            await self.markets()
        assert self._markets is not None
        found = self._markets.get(symbol)
        if found is None:
            raise UnitError(f"unknown market {symbol!r}; markets: {', '.join(self._markets)}")
        return found

    def _client_id(self) -> int:
        self._last_client_id = max(self._last_client_id + 1, int(time.time() * 1000)) % (1 << 32)
        return self._last_client_id

    def _nonce(self) -> int:
        self._last_nonce = max(self._last_nonce + 1, int(time.time() * 1000))
        return self._last_nonce

    async def sign(self, key: PrivateKey, body: object) -> bytes:
        """The canonical bytes of ``body`` in a tx signed by ``key`` (fresh nonce; expiry
        ``expiry_blocks`` after the node's latest height)."""
        if self._chain_id is None or time.monotonic() - self._height_at > 5:
            await self.status()
        assert self._chain_id is not None
        tx = types.sign_tx(
            key, self._chain_id, self._nonce(), self._height + self.expiry_blocks, body
        )
        return codec.encode(tx)

    async def broadcast(
        self, raw: bytes, *, mode: str = "commit", timeout_s: float = 30.0
    ) -> TxResult:
        """Submits a signed tx. ``mode="sync"`` returns the mempool's verdict;
        ``"commit"`` waits until the tx is in a committed block and returns its result."""
        doc = await self.request("broadcast_tx", {"tx": raw, "mode": mode, "timeout_s": timeout_s})
        return TxResult.from_map(doc)

    async def submit(self, key: PrivateKey, body: object, *, wait: bool = True) -> TxResult:
        """Signs ``body`` with ``key`` and broadcasts it (waiting for the commit if
        ``wait``)."""
        return await self.broadcast(await self.sign(key, body), mode="commit" if wait else "sync")

    async def order_body(
        self,
        market: str,
        side: str,
        size: str,
        *,
        price: str | None = None,
        order_type: str = "limit",
        trigger: str | None = None,
        tif: str = "gtc",
        reduce_only: bool = False,
        client_id: int | None = None,
        good_til_block: int = 0,
    ) -> PlaceOrder:
        """A :class:`PlaceOrder` from edge values, converted exactly to ticks and lots.

        The chain requires a client id unique among the account's open orders in the
        market; without ``client_id`` one is made from the clock (ms, mod 2^32), unique
        per client."""
        m = await self.market(market)
        if side not in SIDES:
            raise UnitError(f"side must be buy or sell, got {side!r}")
        if order_type not in ORDER_TYPES:
            raise UnitError(f"type must be one of {', '.join(ORDER_TYPES)}, got {order_type!r}")
        if tif not in TIME_IN_FORCE:
            raise UnitError(f"tif must be one of {', '.join(TIME_IN_FORCE)}, got {tif!r}")
        kind = ORDER_TYPES[order_type]
        needs_price = kind in (OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
        if needs_price and price is None:
            raise UnitError(f"a {order_type} order needs --price")
        if not needs_price and price is not None:
            raise UnitError(f"a {order_type} order takes no --price (it is bounded by the band)")
        conditional = kind >= OrderType.STOP_MARKET
        if conditional and trigger is None:
            raise UnitError(f"a {order_type} order needs --trigger")
        if not conditional and trigger is not None:
            raise UnitError(f"--trigger is only for stop and take-profit orders, not {order_type}")
        lots = to_units(size, m["lot_size"], "size")
        if lots <= 0:
            raise UnitError("size must be positive")
        ticks = to_units(price, m["tick_size"], "price") if price is not None else 0
        trigger_ticks = to_units(trigger, m["tick_size"], "trigger") if trigger is not None else 0
        if client_id is None:
            client_id = self._client_id()
        elif not 0 <= client_id < 1 << 32:
            raise UnitError(f"client id must be from 0 to {(1 << 32) - 1}, got {client_id}")
        return PlaceOrder(
            m["market_id"], SIDES[side], int(kind), TIME_IN_FORCE[tif], ticks, lots,
            trigger_ticks, reduce_only, client_id, good_til_block,
        )  # fmt: skip

    async def place_order(
        self, key: PrivateKey, market: str, side: str, size: str, *, wait: bool = True,
        **options: Any,
    ) -> TxResult:  # fmt: skip
        """Places an order (options as :meth:`order_body`: price, order_type, trigger, tif,
        reduce_only, client_id, good_til_block)."""
        body = await self.order_body(market, side, size, **options)
        return await self.submit(key, body, wait=wait)

    async def cancel_order(
        self, key: PrivateKey, market: str, *, order_id: int | None = None,
        client_id: int | None = None, wait: bool = True,
    ) -> TxResult:  # fmt: skip
        """Cancels one open order by ``order_id`` or by ``client_id``."""
        if (order_id is None) == (client_id is None):
            raise UnitError("give exactly one of order id or client id")
        m = await self.market(market)
        body = CancelOrder(m["market_id"], order_id or 0, client_id or 0, client_id is not None)
        return await self.submit(key, body, wait=wait)

    async def cancel_all(
        self, key: PrivateKey, market: str | None = None, *, wait: bool = True
    ) -> TxResult:
        """Cancels every open order of the key's account in ``market`` (all markets if
        None)."""
        market_id = 0 if market is None else (await self.market(market))["market_id"]
        return await self.submit(key, CancelAll(market_id, market is None), wait=wait)

    async def replace_order(
        self, key: PrivateKey, market: str, side: str, size: str, *,
        order_id: int | None = None, client_id: int | None = None, wait: bool = True,
        **options: Any,
    ) -> TxResult:  # fmt: skip
        """Replaces an open order (by ``order_id`` or ``client_id``) with a new one."""
        if (order_id is None) == (client_id is None):
            raise UnitError("give exactly one of order id or client id")
        if client_id is not None:
            options.setdefault("client_id", client_id)
        order = await self.order_body(market, side, size, **options)
        body = ReplaceOrder(order_id or 0, client_id or 0, client_id is not None, order)
        return await self.submit(key, body, wait=wait)

    async def transfer(
        self, key: PrivateKey, recipient: str, amount: str, *, wait: bool = True
    ) -> TxResult:
        """Moves ``amount`` (quote, decimal) of free collateral to ``recipient`` (hex)."""
        to = _address_bytes(recipient)
        return await self.submit(key, Transfer(to, _quote_units(amount)), wait=wait)

    async def withdraw(self, key: PrivateKey, amount: str, *, wait: bool = True) -> TxResult:
        """Sends ``amount`` (quote, decimal) of free collateral off the chain."""
        return await self.submit(key, Withdraw(_quote_units(amount)), wait=wait)

    async def faucet(self, key: PrivateKey, amount: str, *, wait: bool = True) -> TxResult:
        """Mints ``amount`` (quote, decimal) on chains whose genesis enables the faucet."""
        return await self.submit(key, Faucet(_quote_units(amount)), wait=wait)

    async def register_builder(
        self, key: PrivateKey, name: str, bond: str, *, wait: bool = True
    ) -> TxResult:
        """Registers the key's account as block builder ``name``, bonding ``bond`` (quote)."""
        return await self.submit(key, RegisterBuilder(name, _quote_units(bond)), wait=wait)

    async def bond_builder(self, key: PrivateKey, amount: str, *, wait: bool = True) -> TxResult:
        """Adds ``amount`` (quote) of free collateral to the key's builder bond."""
        return await self.submit(key, BondBuilder(_quote_units(amount)), wait=wait)

    async def unbond_builder(self, key: PrivateKey, amount: str, *, wait: bool = True) -> TxResult:
        """Unbonds ``amount`` (quote): back in the balance after the unbonding delay."""
        return await self.submit(key, UnbondBuilder(_quote_units(amount)), wait=wait)


def _quote_units(amount: str) -> int:
    units = to_units(amount, QUOTE_UNIT, "amount")
    if units <= 0:
        raise UnitError("amount must be positive")
    return units


def _address_bytes(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise UnitError(f"address must be 40 hex characters, got {text!r}")
    return raw


@asynccontextmanager
async def open_client(address: str = f"127.0.0.1:{DEFAULT_PORT}") -> AsyncIterator[Client]:
    """Connects to a node's RPC port (``HOST:PORT``) for the duration of the block."""
    host, port = parse_address(address)
    try:
        stream = await trio.open_tcp_stream(host, port)
    except OSError as exc:
        raise RpcError(
            ErrorCode.UNAVAILABLE, f"cannot connect to the node's RPC port {host}:{port}: {exc}"
        ) from None
    client = Client(stream)
    try:
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(client._read_loop)
            try:
                yield client
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The reader never raises: the caller's own exception comes out as itself.
        raise _single(group) from None


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    if len(group.exceptions) != 1:
        return group
    only = group.exceptions[0]
    return _single(only) if isinstance(only, BaseExceptionGroup) else only


class SyncClient:
    """Blocking calls for scripts: ``SyncClient("127.0.0.1:26601").status()``. Each call
    opens a connection, runs the async method of :class:`Client` of the same name with
    the same arguments, and closes it."""

    def __init__(self, address: str = f"127.0.0.1:{DEFAULT_PORT}") -> None:
        self.address = address

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or not callable(getattr(Client, name, None)):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            async def run() -> Any:
                async with open_client(self.address) as client:
                    return await getattr(client, name)(*args, **kwargs)

            return trio.run(run)

        return call
