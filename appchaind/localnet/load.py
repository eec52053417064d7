"""``appchaind bench load`` (issue 14): offered order flow on a localnet, measured from the
commit stream.

What runs, in order:

1. **A localnet.** A new one (N validators on free loopback ports, in a temporary
   directory, stopped at the end) or a running one (``--dir``) whose nodes it joins.
2. **Funding.** Fresh keys for ``accounts`` traders, each funded by its own faucet tx
   (localnets enable the faucet). Refusals the node calls retryable (a full mempool) are
   sent again; the run starts once every faucet tx is seen committed with code 0.
3. **Senders.** ``senders`` processes (multiprocessing, spawned) each own a slice of the
   accounts and an equal share of the rate. A sender signs its orders a little ahead in
   batches (nonce: a millisecond timestamp unique per account; expiry: ``expiry_blocks``
   past the latest height it saw, refreshed each second) and submits them with
   ``broadcast_tx`` mode ``sync``, round robin over the validators' RPC ports, at the
   scheduled times of an **open loop**: order ``j`` of a sender goes out at
   ``start + j / rate`` whatever the answers to the earlier ones, each on a task of its
   own. It records each accepted tx's hash with its submit time (wall clock), each
   refusal's code, and how late each submission was against its schedule (``sender lag``:
   the generator was the limit if that grows).
4. **Measurement.** This process follows the ``blocks`` stream of node 0 from before the
   funding to the end, recording the arrival time (wall clock) and result code of every tx
   hash. After the senders stop, it waits up to ``grace_s`` for every accepted tx to
   appear in a block, then joins the senders' records with the commits: submit→commit
   latency per order, txs accepted but never committed (loss), refusals by reason, blocks.

The order flow (issue 14): 60% limit orders resting near the oracle price (GTC, 0.02% to
0.5% from it on the passive side), 30% cancels (by client id) of the account's own
limit orders accepted at least a second earlier, 10% IOC orders 0.5% through the oracle
price (they cross the resting orders). The mix is configurable. A cancel slot of an
account with nothing old enough to cancel becomes a limit order, and a limit slot of an
account with ``MAX_RESTING`` orders out becomes a cancel; both are counted.

Rates and figures: ``offered_rate`` is orders submitted per second of the run;
``committed_rate`` is our txs seen committed per second in the steady part of the run
(blocks that arrived after its first ``WARMUP_S`` seconds, at most a quarter of it): a
chain that keeps up commits at the offered rate. Latencies run from the submit call to
the arrival of the block holding the tx. Block figures use the blocks that arrived
during the run: the mean interval is the run's length over their count; the max gap is
the longest time between two block arrivals that overlaps the run (a stall that outlasts
the run counts until the report). Each node's ``appchaind_mempool_size`` at the end tells
a backlog still draining from a loss. Loopback only: every address is 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing
import os
import random
import signal
import tempfile
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import trio

from appchaind import codec, types
from appchaind.client import SIDES, TIME_IN_FORCE, Client, RpcError, open_client
from appchaind.codes import Code, retryable
from appchaind.crypto import PrivateKey
from appchaind.exchange.txs import CancelOrder, Faucet, OrderType, PlaceOrder
from appchaind.localnet.homes import LocalnetNode, load_localnet
from appchaind.localnet.processes import Localnet
from appchaind.rpc.protocol import ErrorCode
from appchaind.rpc.views import QUOTE_UNIT
from appchaind.units import to_units
from config.genesis import load_genesis

__all__ = ["LoadError", "LoadOptions", "LoadReport", "OrderMix", "run_load", "default_senders"]

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
#: Quote units each account mints from the faucet.
FUNDING = "10000"
#: Orders expire this many blocks after the latest height their sender saw (at most the
#: chain's ``max_tx_lifetime_blocks`` less 5).
EXPIRY_BLOCKS = 300
#: Senders sign this far ahead of the schedule.
SIGN_AHEAD_S = 0.2
#: A sender wakes at most this often (it submits everything due at each wake-up).
WAKE_S = 0.002
#: How often a sender refreshes the latest height and the oracle prices.
REFRESH_S = 1.0
#: Requests per second a sender puts on one RPC connection at most (half the default
#: ``[rpc] requests_per_second``); more connections per node above that.
RATE_PER_CONNECTION = 500.0
SETUP_DEADLINE_S = 120.0
#: The simulated oracle's walk on a temporary localnet, in ppm per second: the node's
#: default, not the demo localnets' lively 5,000 (under which most resting orders are
#: soon crossed by newer ones and the cancels find nothing to cancel).
ORACLE_STEP_PPM = 500
#: The committed rate is measured after this much of the run (at most a quarter of it),
#: once the first orders have had time to commit.
WARMUP_S = 2.0


class LoadError(Exception):
    """The load run could not be set up or run (the message says what failed)."""


def default_senders() -> int:
    """One sender process per core, at least 2 and at most 8."""
    return max(2, min(8, os.cpu_count() or 2))


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
class LoadOptions:
    """What to offer: ``rate`` orders/s in total for ``duration_s`` seconds from
    ``accounts`` accounts through ``senders`` processes; ``grace_s``: how long to wait
    after the last submission for accepted txs to commit."""

    accounts: int = 400
    rate: float = 500.0
    duration_s: float = 10.0
    senders: int = field(default_factory=default_senders)
    mix: OrderMix = field(default_factory=OrderMix)
    grace_s: float = 10.0
    seed: int | None = None

    def check(self) -> None:
        if self.accounts < self.senders:
            raise ValueError(f"--accounts ({self.accounts}) must be at least --senders")
        if not 1 <= self.senders <= 64:
            raise ValueError(f"--senders must be from 1 to 64, got {self.senders}")
        if not 0 < self.rate <= 100_000:
            raise ValueError(f"--rate must be in (0, 100000] orders/s, got {self.rate}")
        if not 0 < self.duration_s <= 3_600:
            raise ValueError(f"--duration must be in (0, 3600] seconds, got {self.duration_s}")
        if not 0 <= self.grace_s <= 600:
            raise ValueError(f"--grace must be in [0, 600] seconds, got {self.grace_s}")


# ---------------------------------------------------------------------------- senders


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

    async def _submit(self, signed: SignedOrder, client: Client, due: float) -> None:
        record = self.record
        sent = time.time()
        record.lag_ms.append((sent - due) * 1000)
        record.kinds[signed.kind] += 1
        record.last_sent = max(record.last_sent, sent)
        try:
            answer = await client.request("broadcast_tx", {"tx": signed.raw, "mode": "sync"})
        except RpcError as exc:
            record.refused[_rpc_error_name(exc)] += 1
            return
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            record.refused["RPC_CONNECTION_LOST"] += 1
            return
        record.answer_ms.append((time.time() - sent) * 1000)
        code = answer["code"]
        if code not in (Code.OK, Code.ALREADY_KNOWN):
            record.refused[code_name(code)] += 1
            return
        record.accepted.append((signed.tx_hash, sent, signed.kind))
        if signed.kind == LIMIT:
            signed.trader.resting.append((signed.market_id, signed.client_id, sent))

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
            async with trio.open_nursery() as submissions:
                slot = 0
                while slot < self.total:
                    elapsed = trio.current_time() - start
                    due_now = min(self.total, math.floor(elapsed / self.interval) + 1)
                    while slot < due_now:
                        signed = self._signed.popleft() if self._signed else self.sign_next()
                        client = clients[(slot + self.plan.index) % len(clients)]
                        submissions.start_soon(self._submit, signed, client, self._scheduled(slot))
                        slot += 1
                    next_due = start + slot * self.interval
                    while len(self._signed) < ahead and self._next_slot < self.total:
                        if trio.current_time() >= next_due:
                            break
                        self._signed.append(self.sign_next())
                    await trio.sleep_until(max(next_due, trio.current_time() + WAKE_S))
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


# ---------------------------------------------------------------------------- commits


class CommitFeed:
    """Follows a node's ``blocks`` stream: per tx hash (hex) its commit (arrival time in
    unix seconds, height, result code); per block (height, header time in ms, arrival
    time, txs)."""

    def __init__(self) -> None:
        self.commits: dict[str, tuple[float, int, int]] = {}
        self.blocks: list[tuple[int, int, float, int]] = []
        self.failure: str | None = None

    async def follow(self, client: Client) -> None:
        subscription = await client.subscribe("blocks")
        try:
            async for item in subscription:
                arrived = time.time()
                height = item["height"]
                self.blocks.append((height, item["time_ms"], arrived, len(item["tx_hashes"])))
                for tx_hash, code in zip(item["tx_hashes"], item["tx_codes"], strict=True):
                    self.commits[tx_hash] = (arrived, height, code)
        except RpcError as exc:
            self.failure = f"the blocks stream ended: {exc}"

    async def wait_committed(self, hashes: list[str], deadline: float) -> set[str]:
        """Waits until every one of ``hashes`` is committed or ``deadline`` (trio time);
        returns those still missing."""
        missing = {h for h in hashes if h not in self.commits}
        while missing and trio.current_time() < deadline:
            if self.failure is not None:
                raise LoadError(self.failure)
            await trio.sleep(0.1)
            missing = {h for h in missing if h not in self.commits}
        return missing


# ---------------------------------------------------------------------------- the run


@dataclass
class LoadReport:
    """The figures of one run (see the module docstring for their definitions). Times in
    ms; rates in orders/s; refusals keyed by code name (``MEMPOOL_FULL``) or RPC error
    (``RPC_RATE_LIMITED``)."""

    validators: int
    accounts: int
    senders: int
    rate: float
    duration_s: float
    mix: str
    submitted: int
    accepted: int
    committed: int
    committed_in_run: int
    not_committed: int
    offered_rate: float
    committed_rate: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    rejected: dict[str, int]
    failed_in_block: dict[str, int]
    kinds: dict[str, int]
    cancels_as_limits: int
    limits_as_cancels: int
    blocks: int
    mean_block_interval_ms: float | None
    max_block_gap_ms: float | None
    txs_per_block: float | None
    first_height: int | None
    last_height: int | None
    sender_lag_p99_ms: float | None
    sender_lag_max_ms: float | None
    answer_p50_ms: float | None
    answer_p99_ms: float | None
    #: Sender processes' CPU time per order submitted, in microseconds (sign, encode, send,
    #: read the answer), and the busiest sender's share of one core over the run.
    sender_cpu_us_per_order: float | None
    sender_cpu_share: float | None
    #: Each node's mempool size when the run ended (after the grace period).
    mempools_at_end: list[int | None] = field(default_factory=list)
    #: A few hashes of accepted txs never seen committed (``appchaind query tx HASH``).
    not_committed_sample: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def render(self) -> str:
        """The human-readable summary ``appchaind bench load`` prints."""

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:,.0f} ms"

        def reasons(counts: dict[str, int]) -> str:
            return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) or "none"

        per_block = "-" if self.txs_per_block is None else f"{self.txs_per_block:,.1f}"
        heights = (
            ""
            if self.first_height is None
            else f" (heights {self.first_height}-{self.last_height})"
        )
        return "\n".join(
            [
                f"load: {self.validators} validators, {self.accounts} accounts, "
                f"{self.senders} senders, mix {self.mix}, {self.rate:g} orders/s for "
                f"{self.duration_s:g} s",
                f"offered     {self.offered_rate:,.1f} orders/s ({self.submitted:,} submitted; "
                f"sender lag p99 {ms(self.sender_lag_p99_ms)}, max {ms(self.sender_lag_max_ms)}; "
                f"sender CPU {_figure(self.sender_cpu_us_per_order, ' us')} per order, busiest "
                f"sender {_figure(self.sender_cpu_share and 100 * self.sender_cpu_share, '%')} "
                "of a core)",
                f"accepted    {self.accepted:,} ({_share(self.accepted, self.submitted)}; "
                f"sync answer p50 {ms(self.answer_p50_ms)}, p99 {ms(self.answer_p99_ms)})",
                f"committed   {self.committed_rate:,.1f} orders/s after the warm-up "
                f"({self.committed_in_run:,} during the run); {self.committed:,} of the "
                f"{self.accepted:,} accepted committed in all, {self.not_committed:,} not "
                "after the grace period",
                f"latency     submit->commit p50 {ms(self.p50_ms)}, p90 {ms(self.p90_ms)}, "
                f"p99 {ms(self.p99_ms)}, max {ms(self.max_ms)}",
                f"refused     {reasons(self.rejected)}",
                f"failed in block  {reasons(self.failed_in_block)}",
                f"blocks      {self.blocks} during the run{heights}, mean interval "
                f"{ms(self.mean_block_interval_ms)}, max gap {ms(self.max_block_gap_ms)}, "
                f"{per_block} txs per block",
                "mempools    at the end: "
                + ", ".join("-" if n is None else f"{n:,}" for n in self.mempools_at_end)
                + " txs",
                f"orders      {reasons(self.kinds)} (cancels sent as limits for want of an "
                f"old enough order: {self.cancels_as_limits:,}; limits sent as cancels at "
                f"{MAX_RESTING} resting: {self.limits_as_cancels:,})",
            ]
        )


def _figure(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:,.0f}{unit}"


def _share(part: int, whole: int) -> str:
    return "-" if not whole else f"{100 * part / whole:.1f}%"


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def longest_gap(arrivals: list[float], start: float, end: float, now: float) -> float:
    """The longest time between consecutive block arrivals (seconds) among the gaps that
    overlap the run ``[start, end]``; the run's start stands for a block before it if none
    arrived, and ``now`` for the next block if none arrived after the run (a stall)."""
    edges = sorted(arrivals)
    if not edges or edges[0] > start:
        edges.insert(0, start)
    if edges[-1] <= end:
        edges.append(max(now, end))
    return max(
        (b - a for a, b in zip(edges, edges[1:], strict=False) if b >= start and a <= end),
        default=end - start,
    )


def prometheus_value(text: str, name: str) -> int | None:
    """The value of the metric ``name`` in a Prometheus exposition (its first sample)."""
    for line in text.splitlines():
        if line.startswith((f"{name} ", f"{name}{{")):
            return int(float(line.rsplit(" ", 1)[1]))
    return None


def _rpc_address(node: LocalnetNode) -> str:
    return f"127.0.0.1:{node.rpc_port}"


class _Run:
    """One load run on running nodes: the commit feed, the funding, the senders, the
    report."""

    def __init__(
        self,
        options: LoadOptions,
        nodes: list[LocalnetNode],
        expiry_blocks: int,
        progress: Callable[[str], None],
    ) -> None:
        self.options = options
        self.nodes = nodes
        self.expiry_blocks = expiry_blocks
        self.progress = progress
        self.feed = CommitFeed()
        self.rng = random.Random(options.seed)

    async def main(self) -> LoadReport:
        addresses = [_rpc_address(n) for n in self.nodes]
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(open_client(a)) for a in addresses]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.feed.follow, clients[0])
                keys = [PrivateKey.generate() for _ in range(self.options.accounts)]
                self.progress(f"funding {len(keys)} accounts from the faucet")
                await self._fund(clients, keys)
                report = await self._measure(addresses, keys)
                nursery.cancel_scope.cancel()
        return report

    async def _fund(self, clients: list[Client], keys: list[PrivateKey]) -> None:
        """A faucet tx from each account, sent again while the node says it is busy, then
        waited for until each is committed with code 0."""
        status = await clients[0].status()
        chain_id, height = status["chain_id"], status["height"]
        amount = to_units(FUNDING, QUOTE_UNIT, "amount")
        nonce = int(time.time() * 1000)
        raws = [
            codec.encode(types.sign_tx(k, chain_id, nonce, height + self.expiry_blocks, Faucet(amount)))
            for k in keys
        ]  # fmt: skip
        waiting = list(range(len(raws)))
        deadline = trio.current_time() + SETUP_DEADLINE_S
        while waiting:
            busy: list[int] = []
            async with trio.open_nursery() as nursery:
                for c, client in enumerate(clients):
                    part = [(i, raws[i]) for i in waiting[c :: len(clients)]]
                    nursery.start_soon(_send_funding, client, part, busy)
            waiting = sorted(busy)
            if waiting:
                if trio.current_time() > deadline:
                    raise LoadError(f"{len(waiting)} faucet txs still refused as busy")
                await trio.sleep(0.3)
        hashes = [types.tx_hash(raw).hex() for raw in raws]
        missing = await self.feed.wait_committed(hashes, deadline)
        if missing:
            raise LoadError(f"{len(missing)} of {len(hashes)} faucet txs were not committed")
        failed = [h for h in hashes if self.feed.commits[h][2] != Code.OK]
        if failed:
            code = self.feed.commits[failed[0]][2]
            raise LoadError(f"{len(failed)} faucet txs failed in their block ({code_name(code)})")

    def _plans(self, addresses: list[str], keys: list[PrivateKey]) -> list[SenderPlan]:
        o = self.options
        share = o.rate / o.senders
        per_node = max(1, math.ceil(share / len(addresses) / RATE_PER_CONNECTION))
        return [
            SenderPlan(
                index=k,
                seeds=tuple(key.seed for key in keys[k :: o.senders]),
                rpc_addresses=tuple(addresses),
                connections_per_node=per_node,
                rate=share,
                offset_s=k / o.rate,
                duration_s=o.duration_s,
                mix=o.mix,
                seed=self.rng.randrange(1 << 32),
                expiry_blocks=self.expiry_blocks,
            )
            for k in range(o.senders)
        ]

    async def _measure(self, addresses: list[str], keys: list[PrivateKey]) -> LoadReport:
        o = self.options
        context = multiprocessing.get_context("spawn")
        processes: list[multiprocessing.process.BaseProcess] = []
        pipes: list[Connection] = []
        records: list[SenderRecord] = []
        try:
            for plan in self._plans(addresses, keys):
                ours, theirs = context.Pipe()
                process = context.Process(
                    target=sender_process, args=(plan, theirs), name=f"load-sender-{plan.index}"
                )
                process.start()
                theirs.close()
                processes.append(process)
                pipes.append(ours)
            for pipe in pipes:
                message = await _receive(pipe, SETUP_DEADLINE_S)
                if message != "ready":
                    raise LoadError(str(message))
            start = time.time() + 0.5
            end = start + o.duration_s
            self.progress(f"offering {o.rate:g} orders/s for {o.duration_s:g} s")
            for pipe in pipes:
                pipe.send(start)
            for pipe in pipes:
                message = await _receive(pipe, o.duration_s + SETUP_DEADLINE_S)
                if not isinstance(message, SenderRecord):
                    raise LoadError(str(message))
                records.append(message)
        finally:
            # Reported senders exit by themselves; after a failure, nobody waits for them.
            for child in processes:
                child.join(timeout=5 if len(records) == len(processes) else 0)
                if child.is_alive():
                    child.kill()
                    child.join()
        accepted = [a for r in records for a in r.accepted]
        last_sent = max((r.last_sent for r in records), default=end)
        grace_deadline = trio.current_time() + max(0.0, last_sent + o.grace_s - time.time())
        hashes = [h for h, _t, _k in accepted]
        missing = await self.feed.wait_committed(hashes, grace_deadline)
        # The mempools first, then the commits again: a tx that left a mempool by a commit
        # in between is seen in its block, not counted as lost (and the mempools are read
        # again after such a block).
        mempools = await trio.to_thread.run_sync(self._mempool_sizes)
        if missing:
            before = len(missing)
            missing = await self.feed.wait_committed(sorted(missing), trio.current_time() + 1)
            if len(missing) < before:
                mempools = await trio.to_thread.run_sync(self._mempool_sizes)
        if missing:
            self.progress(f"{len(missing)} accepted txs not committed after {o.grace_s:g} s")
        report = self._report(records, accepted, len(missing), start, end)
        report.mempools_at_end = mempools
        report.not_committed_sample = sorted(missing)[:5]
        return report

    def _mempool_sizes(self) -> list[int | None]:
        """Each node's ``appchaind_mempool_size`` (None where /metrics did not answer)."""
        sizes: list[int | None] = []
        for node in self.nodes:
            url = f"http://127.0.0.1:{node.http_port}/metrics"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    text = response.read().decode()
            except (OSError, ValueError):
                sizes.append(None)
                continue
            sizes.append(prometheus_value(text, "appchaind_mempool_size"))
        return sizes

    def _report(
        self,
        records: list[SenderRecord],
        accepted: list[tuple[str, float, int]],
        not_committed: int,
        start: float,
        end: float,
    ) -> LoadReport:
        o = self.options
        commits = self.feed.commits
        latencies: list[float] = []
        failed: Counter[str] = Counter()
        in_run = steady = 0
        warm = start + min(WARMUP_S, o.duration_s / 4)
        for tx_hash, sent, _kind in accepted:
            commit = commits.get(tx_hash)
            if commit is None:
                continue
            arrived, _height, code = commit
            latencies.append((arrived - sent) * 1000)
            in_run += arrived <= end
            steady += warm <= arrived <= end
            if code != Code.OK:
                failed[code_name(code)] += 1
        latencies.sort()
        refused: Counter[str] = Counter()
        kinds = [0, 0, 0]
        for r in records:
            refused.update(r.refused)
            kinds = [a + b for a, b in zip(kinds, r.kinds, strict=True)]
        lags = sorted(x for r in records for x in r.lag_ms)
        answers = sorted(x for r in records for x in r.answer_ms)
        submitted = sum(kinds)
        blocks = self.feed.blocks
        during = [i for i, b in enumerate(blocks) if start <= b[2] <= end]
        return LoadReport(
            validators=len(self.nodes),
            accounts=o.accounts,
            senders=o.senders,
            rate=o.rate,
            duration_s=o.duration_s,
            mix=str(o.mix),
            submitted=submitted,
            accepted=len(accepted),
            committed=len(latencies),
            committed_in_run=in_run,
            not_committed=not_committed,
            offered_rate=submitted / o.duration_s,
            committed_rate=steady / (end - warm),
            p50_ms=percentile(latencies, 0.50),
            p90_ms=percentile(latencies, 0.90),
            p99_ms=percentile(latencies, 0.99),
            max_ms=latencies[-1] if latencies else None,
            rejected=dict(sorted(refused.items())),
            failed_in_block=dict(sorted(failed.items())),
            kinds=dict(zip(KINDS, kinds, strict=True)),
            cancels_as_limits=sum(r.cancels_as_limits for r in records),
            limits_as_cancels=sum(r.limits_as_cancels for r in records),
            blocks=len(during),
            mean_block_interval_ms=o.duration_s * 1000 / len(during) if during else None,
            max_block_gap_ms=longest_gap([b[2] for b in blocks], start, end, time.time()) * 1000,
            txs_per_block=(sum(blocks[i][3] for i in during) / len(during) if during else None),
            first_height=blocks[during[0]][0] if during else None,
            last_height=blocks[during[-1]][0] if during else None,
            sender_lag_p99_ms=percentile(lags, 0.99),
            sender_lag_max_ms=lags[-1] if lags else None,
            answer_p50_ms=percentile(answers, 0.50),
            answer_p99_ms=percentile(answers, 0.99),
            sender_cpu_us_per_order=(
                sum(r.cpu_s for r in records) * 1e6 / submitted if submitted else None
            ),
            sender_cpu_share=max(r.cpu_s for r in records) / o.duration_s if records else None,
        )


async def _send_funding(client: Client, txs: list[tuple[int, bytes]], busy: list[int]) -> None:
    """Sends faucet txs ``(index, raw)``; appends to ``busy`` the index of each the node
    refused as busy (retryable)."""
    for i, raw in txs:
        answer = await client.request("broadcast_tx", {"tx": raw, "mode": "sync"})
        code = answer["code"]
        if retryable(code):
            busy.append(i)
        elif code not in (Code.OK, Code.ALREADY_KNOWN):
            raise LoadError(f"a faucet tx was refused: {code_name(code)}: {answer['log']}")


async def _receive(pipe: Connection, timeout_s: float) -> object:
    """The next message from a sender process (an error message if it died or timed out)."""
    deadline = trio.current_time() + timeout_s
    while trio.current_time() < deadline:
        try:
            if await trio.to_thread.run_sync(pipe.poll, 0.2):
                return pipe.recv()
        except (EOFError, OSError):
            return "a sender process exited without reporting"
    return f"no word from a sender process in {timeout_s:g} s"


def run_load(
    options: LoadOptions,
    *,
    directory: Path | None = None,
    validators: int = 4,
    config_overrides: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> LoadReport:
    """Runs the load on the running localnet in ``directory``, or on a new temporary one
    of ``validators`` nodes (with ``config_overrides`` in their config.toml) that is
    stopped at the end. Raises :class:`LoadError` if it cannot be set up or run.

    The senders are spawned processes, which import the caller's main module again: a
    script calling this must do so under ``if __name__ == "__main__":``."""
    options.check()
    if directory is not None:
        if config_overrides:
            raise ValueError("node config overrides apply only to a new localnet, not --dir")
        nodes = load_localnet(directory)
        return _run(options, nodes, progress)
    if not 1 <= validators <= 16:
        raise ValueError(f"--validators must be from 1 to 16, got {validators}")
    overrides: dict[str, dict[str, Any]] = {"oracle": {"simulated_step_ppm": ORACLE_STEP_PPM}}
    for section, keys in (config_overrides or {}).items():
        overrides.setdefault(section, {}).update(keys)
    with tempfile.TemporaryDirectory(prefix="appchaind-load-") as tmp:
        net = Localnet(
            Path(tmp) / "net", validators, spare_nodes=0, chain_id="load-net",
            config_overrides=overrides,
        )  # fmt: skip
        try:
            progress(f"starting a {validators}-validator localnet in {tmp}")
            net.start_all(own_session=True)
            try:
                net.wait_height(list(range(validators)), 2)
            except AssertionError as exc:
                raise LoadError(f"the localnet did not start: {exc}") from None
            return _run(options, net.nodes, progress)
        finally:
            net.stop_all()


def _run(
    options: LoadOptions, nodes: list[LocalnetNode], progress: Callable[[str], None]
) -> LoadReport:
    genesis = load_genesis(nodes[0].home / "genesis.json")
    expiry_blocks = min(EXPIRY_BLOCKS, genesis.params.max_tx_lifetime_blocks - 5)
    run = _Run(options, nodes, expiry_blocks, progress)
    try:
        return trio.run(run.main)
    except (LoadError, RpcError, BaseExceptionGroup) as exc:
        cause = _first_cause(exc)
        if isinstance(cause, LoadError):
            raise cause from None
        if isinstance(cause, RpcError):
            raise LoadError(f"RPC: {cause}") from None
        raise


def _first_cause(exc: BaseException) -> BaseException:
    """The first leaf exception of (possibly nested) exception groups, preferring a
    :class:`LoadError` or :class:`RpcError` over the cancellations that follow it."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = [_first_cause(inner) for inner in exc.exceptions]
    for leaf in leaves:
        if isinstance(leaf, LoadError | RpcError):
            return leaf
    return leaves[0]
