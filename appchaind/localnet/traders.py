"""Demo traders for ``make run`` (``appchaind localnet start --traders``), built on
:mod:`appchaind.client.library` like any bot would be.

* ``maker`` quotes a post-only ladder (5 levels a side, 5 bps apart) around the oracle
  price on every market, refreshed every couple of blocks (cancel-all, then the ladder).
* ``trader0``..``trader3`` take liquidity at random: small market orders, leaning back
  towards flat when their position grows; their submit→commit latencies feed the live
  view's p50/p99.
* ``leveraged`` keeps a BTC position of about 18x its equity (close to the 20x the 5%
  initial margin allows), adding to it as profits come in; it is liquidated when the
  oracle pulls back about 2.5% (maintenance margin is 3%), then tops up from the faucet and
  goes the other way. Local networks walk the simulated oracle up to 0.5% a second, so that happens
  within minutes: watch the ``liquidations`` column.

:class:`DemoTraders` runs them in a background thread (its own trio loop) and exposes
:class:`DemoStats` for the live view.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import trio

from appchaind.chain.crypto import PrivateKey
from appchaind.client.library import Client, RpcError, UnitError, open_client
from appchaind.telemetry.logs import get_logger

__all__ = ["DemoStats", "DemoTraders"]

log = get_logger("demo")

LADDER_LEVELS = 5
LADDER_STEP = Decimal("0.0005")
#: Per market: (maker level size, largest taker size, taker position limit), base units.
SIZES = {"BTC-PERP": ("0.05", "0.02", "0.2"), "ETH-PERP": ("1", "0.3", "3")}
LEVERAGE = Decimal(18)


@dataclass
class DemoStats:
    """What the demo traders did, for the live view. ``latencies`` are seconds from
    submitting a tx to receiving its committed result (the last 500)."""

    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=500))
    orders: int = 0
    fills: int = 0
    rejected: int = 0
    errors: int = 0
    leveraged_opens: int = 0
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def percentile(self, q: float) -> float | None:
        with self.lock:
            samples = sorted(self.latencies)
        if not samples:
            return None
        return samples[min(len(samples) - 1, int(q * len(samples)))]


def _on_grid(value: Decimal, step: str) -> str:
    unit = Decimal(step)
    return str((value / unit).to_integral_value(rounding=ROUND_DOWN) * unit)


class DemoTraders:
    """Runs the demo traders of a localnet (``accounts`` = its ``accounts/`` directory)
    against ``nodes`` (RPC addresses) until :meth:`stop`."""

    def __init__(self, accounts: Path, nodes: list[str], *, seed: int | None = None) -> None:
        self.accounts = accounts
        self.nodes = nodes
        self.stats = DemoStats()
        self.rng = random.Random(seed)
        self._thread: threading.Thread | None = None
        self._cancel: trio.CancelScope | None = None
        self._token: trio.lowlevel.TrioToken | None = None

    def key(self, name: str) -> PrivateKey:
        return PrivateKey.load(self.accounts / f"{name}.json")

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._token is not None and self._cancel is not None:
            try:
                trio.from_thread.run_sync(self._cancel.cancel, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._cancel = scope
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._forever, self._maker, self.nodes[0])
                for i in range(4):
                    node = self.nodes[(i + 1) % len(self.nodes)]
                    nursery.start_soon(self._forever, self._taker, node, f"trader{i}")
                nursery.start_soon(self._forever, self._leveraged, self.nodes[-1])

    async def _forever(self, trader: object, node: str, *args: object) -> None:
        """Runs a trader, reconnecting after errors (a node restarting, a timeout)."""
        while True:
            try:
                async with open_client(node) as client:
                    await trader(client, *args)  # type: ignore[operator]
            except (RpcError, UnitError, OSError) as exc:
                with self.stats.lock:
                    self.stats.errors += 1
                    self.stats.last_error = str(exc)[:200]
            await trio.sleep(1)

    def _count(self, code: int, fills: int) -> None:
        with self.stats.lock:
            self.stats.orders += 1
            self.stats.fills += fills
            if code:
                self.stats.rejected += 1

    async def _maker(self, c: Client) -> None:
        key = self.key("maker")
        while True:
            for m in await c.markets():
                symbol = m["market"]
                level_size = SIZES.get(symbol, ("1", "0.1", "1"))[0]
                oracle = Decimal(m["oracle_price"])
                await c.cancel_all(key, symbol)
                for level in range(1, LADDER_LEVELS + 1):
                    offset = oracle * LADDER_STEP * level
                    for side, price in (("buy", oracle - offset), ("sell", oracle + offset)):
                        result = await c.place_order(
                            key, symbol, side, level_size, price=_on_grid(price, m["tick_size"]),
                            tif="post-only", wait=False,
                        )  # fmt: skip
                        self._count(result.code, 0)
            await trio.sleep(1.0)

    async def _taker(self, c: Client, name: str) -> None:
        key = self.key(name)
        markets = await c.markets()
        held = {m["market"]: Decimal(0) for m in markets}
        while True:
            await trio.sleep(self.rng.uniform(0.2, 1.0))
            m = self.rng.choice(markets)
            symbol = m["market"]
            _level, largest, limit = SIZES.get(symbol, ("1", "0.1", "1"))
            lots = self.rng.randint(1, max(1, int(Decimal(largest) / Decimal(m["lot_size"]))))
            size = Decimal(lots) * Decimal(m["lot_size"])
            side = self.rng.choice(("buy", "sell"))
            if abs(held[symbol]) > Decimal(limit):
                side = "sell" if held[symbol] > 0 else "buy"
            started = time.monotonic()
            result = await c.place_order(key, symbol, side, str(size), order_type="market")
            latency = time.monotonic() - started
            with self.stats.lock:
                self.stats.latencies.append(latency)
            self._count(result.code, len(result.fills))
            for f in result.fills:
                signed = Decimal(f["size"]) if f["taker_side"] == "buy" else -Decimal(f["size"])
                held[symbol] += signed

    async def _leveraged(self, c: Client) -> None:
        """Keeps a BTC position of about 18x its equity (IOC orders through the maker's
        ladder, each at most 0.5% through the best price, topping up as profits come in)
        until it is liquidated; then tops up from the faucet and goes the other way."""
        key = self.key("leveraged")
        address = key.address.hex()
        side = "buy"
        target = Decimal(0)
        while True:
            account = await c.account(address)
            held = sum(
                (
                    abs(Decimal(p["size"]))
                    for p in account["positions"]
                    if p["market"] == "BTC-PERP"
                ),
                Decimal(0),
            )
            if held == 0 and target:
                # Flat again after a position was built: it was liquidated. Next round, the other way.
                target = Decimal(0)
                side = "sell" if side == "buy" else "buy"
            if held == 0 and Decimal(account["free_collateral"]) < 1500:
                await c.faucet(key, "2000")
                account = await c.account(address)
            m = await c.market("BTC-PERP")
            # Re-lever as profits come in: always about 18x the current equity, so a pull-back
            # of ~2.5% from any peak liquidates it.
            equity = Decimal(account["net_collateral"])
            target = Decimal(
                _on_grid(equity * LEVERAGE / Decimal(m["oracle_price"]), m["lot_size"])
            )
            missing = Decimal(_on_grid(target - held, m["lot_size"]))
            if missing > target / 20:
                book = await c.book("BTC-PERP", 1)
                levels = book["asks" if side == "buy" else "bids"]
                if levels:
                    through = Decimal("1.005") if side == "buy" else Decimal("0.995")
                    price = _on_grid(Decimal(levels[0][0]) * through, m["tick_size"])
                    result = await c.place_order(
                        key, "BTC-PERP", side, str(missing), price=price, tif="ioc"
                    )
                    self._count(result.code, len(result.fills))
                    if result.ok and result.fills and held == 0:
                        with self.stats.lock:
                            self.stats.leveraged_opens += 1
            await trio.sleep(1)
