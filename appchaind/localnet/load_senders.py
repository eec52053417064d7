"""The load generator's senders: each a process of its own that signs orders of the
configured mix for its share of the accounts and submits each at its scheduled time over
RPC (``broadcast_tx`` ``sync``), whatever the earlier answers, recording what came back.
See :mod:`appchaind.localnet.load` for the run around them.
"""

from __future__ import annotations

import contextlib
import math
import random
import signal
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from decimal import Decimal
from multiprocessing.connection import Connection
from typing import Any

import trio

from appchaind.chain import codec, types
from appchaind.chain.codes import Code
from appchaind.chain.crypto import PrivateKey
from appchaind.client.library import SIDES, TIME_IN_FORCE, Client, RpcError, open_client
from appchaind.exchange.txs import CancelOrder, OrderType, PlaceOrder
from appchaind.rpc.protocol import ErrorCode

__all__ = ["OrderMix", "Sender", "SenderPlan", "SenderRecord", "code_name", "sender_process"]

KINDS = ("limit", "cancel", "ioc")
LIMIT, CANCEL, IOC = range(3)
#: Limit orders rest this far from the oracle price on the passive side, in ppm.
LIMIT_OFFSET_PPM = (200, 5_000)
#: IOC orders are priced this far through the oracle price, in ppm (inside the price band).
IOC_THROUGH_PPM = 5_000
LIMIT_LOTS = (1, 10)
IOC_LOTS = (1, 5)
#: A cancel targets an order accepted at least this long before the cancel is due (so
#: that the order is in an earlier block: a block runs its cancels first).
CANCEL_MIN_AGE_S = 1.0
#: Orders an account keeps resting at most (the chain allows 200 by default).
MAX_RESTING = 150
#: Senders sign this far ahead of the schedule.
SIGN_AHEAD_S = 0.2
#: A sender wakes at most this often (it submits everything due at each wake-up, one write
#: per connection: a write per order cost a sender more CPU than the order).
WAKE_S = 0.005
#: How often a sender refreshes the latest height and the oracle prices.
REFRESH_S = 1.0


@dataclass(frozen=True)
class OrderMix:
    """Relative weights of the order kinds (``limit=60,cancel=30,ioc=10``)."""

    limit: int = 60
    cancel: int = 30
    ioc: int = 10

    @classmethod
    def parse(cls, text: str) -> OrderMix:
        weights = {"limit": 0, "cancel": 0, "ioc": 0}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            if not sep or name.strip() not in weights or not value.strip().isdigit():
                raise ValueError(
                    f"--mix must look like limit=60,cancel=30,ioc=10 (kinds: limit, cancel, "
                    f"ioc; integer weights), got {text!r}"
                )
            weights[name.strip()] = int(value)
        if not sum(weights.values()):
            raise ValueError(f"--mix needs at least one positive weight, got {text!r}")
        return cls(**weights)

    @property
    def weights(self) -> tuple[int, int, int]:
        return self.limit, self.cancel, self.ioc

    def __str__(self) -> str:
        return f"limit={self.limit},cancel={self.cancel},ioc={self.ioc}"


@dataclass(frozen=True)
class SenderPlan:
    """One sender's share: its accounts' key seeds, the nodes, ``rate`` orders/s from
    ``offset_s`` after the common start for ``duration_s``."""

    index: int
    seeds: tuple[bytes, ...]
    rpc_addresses: tuple[str, ...]
    connections_per_node: int
    rate: float
    offset_s: float
    duration_s: float
    mix: OrderMix
    seed: int
    expiry_blocks: int


@dataclass
class SenderRecord:
    """What a sender did: per accepted tx (hash hex, submit time in unix seconds, kind),
    refusals by reason, orders submitted per kind, lateness against the schedule and
    ``sync`` answer times (ms), and how often the mix had to give way."""

    accepted: list[tuple[str, float, int]] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    kinds: list[int] = field(default_factory=lambda: [0, 0, 0])
    lag_ms: list[float] = field(default_factory=list)
    answer_ms: list[float] = field(default_factory=list)
    cancels_as_limits: int = 0
    limits_as_cancels: int = 0
    last_sent: float = 0.0
    #: Process CPU seconds the sender spent from its start time to its last answer.
    cpu_s: float = 0.0


@dataclass(frozen=True)
class MarketQuote:
    """A market as a sender prices its orders: the oracle price in ticks."""

    market_id: int
    oracle: int


@dataclass
class Trader:
    key: PrivateKey
    last_nonce: int = 0
    last_client_id: int = 0
    #: (market id, client id, submit time) of limit orders the node accepted, oldest first.
    resting: deque[tuple[int, int, float]] = field(default_factory=deque)

    def nonce(self) -> int:
        self.last_nonce = max(self.last_nonce + 1, int(time.time() * 1000))
        return self.last_nonce

    def client_id(self) -> int:
        self.last_client_id += 1
        return self.last_client_id


@dataclass(frozen=True)
class SignedOrder:
    raw: bytes
    tx_hash: str
    kind: int
    trader: Trader
    market_id: int
    client_id: int


def code_name(code: int) -> str:
    """The name of a tx result code (``MEMPOOL_FULL``), or ``code_N`` for an unknown one."""
    try:
        return Code(code).name
    except ValueError:
        return f"code_{code}"


def _rpc_error_name(exc: RpcError) -> str:
    try:
        return f"RPC_{ErrorCode(exc.code).name}"
    except ValueError:
        return f"RPC_{exc.code}"


class Sender:
    """Signs and submits one sender's orders on its schedule (an open loop)."""

    def __init__(self, plan: SenderPlan, chain_id: str, clients: list[Client]) -> None:
        self.plan = plan
        self.chain_id = chain_id
        self.clients = clients
        self.rng = random.Random(plan.seed)
        self.traders = [Trader(PrivateKey(seed)) for seed in plan.seeds]
        self.markets: list[MarketQuote] = []
        self.height = 0
        self.total = int(plan.rate * plan.duration_s)
        self.interval = 1.0 / plan.rate
        self.record = SenderRecord()
        self._signed: deque[SignedOrder] = deque()
        self._next_slot = 0
        #: Orders submitted and not answered yet; set when that falls to 0.
        self._unanswered = 0
        self._all_answered = trio.Event()
        #: When slot 0 is due (unix seconds); set by :meth:`run`.
        self.start_wall = time.time()

    async def refresh(self) -> None:
        """The latest height (for expiries) and the oracle prices (for order prices)."""
        client = self.clients[0]
        self.height = (await client.status())["height"]
        markets = []
        for m in await client.markets():
            oracle = int(Decimal(m["oracle_price"]) / Decimal(m["tick_size"]))
            markets.append(MarketQuote(m["market_id"], oracle))
        self.markets = markets

    async def refresh_forever(self) -> None:
        while True:
            await trio.sleep(REFRESH_S)
            with contextlib.suppress(RpcError):
                await self.refresh()

    # ------------------------------------------------------------------ orders

    def _scheduled(self, slot: int) -> float:
        """Wall-clock time at which ``slot`` is due."""
        return self.start_wall + slot * self.interval

    def _kind(self, trader: Trader, due: float) -> int:
        kind: int = self.rng.choices(range(3), weights=self.plan.mix.weights)[0]
        if kind == CANCEL and not (
            trader.resting and trader.resting[0][2] <= due - CANCEL_MIN_AGE_S
        ):
            self.record.cancels_as_limits += 1
            kind = LIMIT
        elif kind == LIMIT and len(trader.resting) >= MAX_RESTING:
            self.record.limits_as_cancels += 1
            kind = CANCEL
        return kind

    def _body(self, kind: int, trader: Trader) -> tuple[object, int, int]:
        """The tx body of an order of ``kind``, with its market id and client id."""
        rng = self.rng
        if kind == CANCEL:
            market_id, client_id, _sent = trader.resting.popleft()
            return CancelOrder(market_id, 0, client_id, True), market_id, client_id
        market = rng.choice(self.markets)
        side = rng.randrange(2)
        buy = side == SIDES["buy"]
        client_id = trader.client_id()
        if kind == LIMIT:
            offset = max(1, market.oracle * rng.randint(*LIMIT_OFFSET_PPM) // 1_000_000)
            price = market.oracle - offset if buy else market.oracle + offset
            lots, tif = rng.randint(*LIMIT_LOTS), TIME_IN_FORCE["gtc"]
        else:
            through = max(1, market.oracle * IOC_THROUGH_PPM // 1_000_000)
            price = market.oracle + through if buy else market.oracle - through
            lots, tif = rng.randint(*IOC_LOTS), TIME_IN_FORCE["ioc"]
        body = PlaceOrder(
            market.market_id, side, int(OrderType.LIMIT), tif, price, lots, 0, False,
            client_id, 0,
        )  # fmt: skip
        return body, market.market_id, client_id

    def sign_next(self) -> SignedOrder:
        """The next slot's order, decided and signed (a cancel targets the oldest limit
        order of the account accepted ``CANCEL_MIN_AGE_S`` before the slot is due)."""
        slot = self._next_slot
        self._next_slot += 1
        trader = self.traders[slot % len(self.traders)]
        kind = self._kind(trader, self._scheduled(slot))
        body, market_id, client_id = self._body(kind, trader)
        tx = types.sign_tx(
            trader.key, self.chain_id, trader.nonce(), self.height + self.plan.expiry_blocks, body
        )
        raw = codec.encode(tx)
        return SignedOrder(raw, types.tx_hash(raw).hex(), kind, trader, market_id, client_id)

    # ------------------------------------------------------------------ submission

    def _submit(self, signed: SignedOrder, client: Client, due: float) -> None:
        """Queues ``signed`` on ``client`` (written by the next flush); the answer is
        recorded when it comes."""
        record = self.record
        sent = time.time()
        record.lag_ms.append((sent - due) * 1000)
        record.kinds[signed.kind] += 1
        record.last_sent = max(record.last_sent, sent)
        self._unanswered += 1

        def on_reply(answer: Any) -> None:
            self._unanswered -= 1
            if not self._unanswered:
                self._all_answered.set()
            if isinstance(answer, RpcError):
                record.refused[_rpc_error_name(answer)] += 1
                return
            record.answer_ms.append((time.time() - sent) * 1000)
            code = answer["code"]
            if code not in (Code.OK, Code.ALREADY_KNOWN):
                record.refused[code_name(code)] += 1
                return
            record.accepted.append((signed.tx_hash, sent, signed.kind))
            if signed.kind == LIMIT:
                signed.trader.resting.append((signed.market_id, signed.client_id, sent))

        client.request_nowait("broadcast_tx", {"tx": signed.raw, "mode": "sync"}, on_reply)

    async def _flush(self, client: Client) -> None:
        try:
            await client.flush()
        except (RpcError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # each queued request's answer is the connection's error (counted)

    async def run(self, start_wall: float) -> SenderRecord:
        """Submits every order on schedule from ``start_wall`` (unix seconds); returns
        once every submission has its answer."""
        self.start_wall = start_wall + self.plan.offset_s
        start = trio.current_time() + (self.start_wall - time.time())
        cpu_before = time.process_time()
        ahead = max(1, int(self.plan.rate * SIGN_AHEAD_S))
        clients = self.clients
        async with trio.open_nursery() as refresher:
            refresher.start_soon(self.refresh_forever)
            async with trio.open_nursery() as writers:
                slot = 0
                while slot < self.total:
                    elapsed = trio.current_time() - start
                    due_now = min(self.total, math.floor(elapsed / self.interval) + 1)
                    used: set[int] = set()
                    while slot < due_now:
                        signed = self._signed.popleft() if self._signed else self.sign_next()
                        at = (slot + self.plan.index) % len(clients)
                        self._submit(signed, clients[at], self._scheduled(slot))
                        used.add(at)
                        slot += 1
                    for at in used:  # one write per connection for the orders now due
                        writers.start_soon(self._flush, clients[at])
                    next_due = start + slot * self.interval
                    while len(self._signed) < ahead and self._next_slot < self.total:
                        if trio.current_time() >= next_due:
                            break
                        self._signed.append(self.sign_next())
                    await trio.sleep_until(max(next_due, trio.current_time() + WAKE_S))
            while self._unanswered:
                self._all_answered = trio.Event()
                await self._all_answered.wait()
            refresher.cancel_scope.cancel()
        self.record.cpu_s = time.process_time() - cpu_before
        return self.record


async def _sender_main(plan: SenderPlan, conn: Connection) -> SenderRecord:
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(open_client(address))
            for address in plan.rpc_addresses
            for _ in range(plan.connections_per_node)
        ]
        chain_id = (await clients[0].status())["chain_id"]
        sender = Sender(plan, chain_id, clients)
        await sender.refresh()
        conn.send("ready")
        start_wall = await trio.to_thread.run_sync(conn.recv)
        return await sender.run(start_wall)


def sender_process(plan: SenderPlan, conn: Connection) -> None:
    """A sender process's entry point: ``"ready"`` once connected, then a start time
    from the parent, then its :class:`SenderRecord` (or an error message) back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    try:
        record = trio.run(_sender_main, plan, conn)
    except Exception as exc:  # reported to the parent, which stops the run
        conn.send(f"sender {plan.index} failed: {type(exc).__name__}: {exc}")
        return
    conn.send(record)
