"""Oracle prices through vote extensions, and the extension's format.

Each validator's :meth:`ExchangeApp.extend_vote` returns a :class:`PrecommitExtension`:
its price (ticks) for each market, from its configured :class:`PriceSource`, and its
inclusion list (the txs it saw wait, whose rule is :mod:`appchaind.exchange.inclusion`);
b"" when it has neither. The wall clock is read only here, outside the replicated state. :func:`verify_extension` bounds-checks another
validator's vote; :func:`aggregate` turns the votes of a decided commit into the new
prices: the stake-weighted median of each market when validators with at least 2/3 of the
stake reported it, moved at most ``max_oracle_move_ppm`` from the current price per block,
and otherwise the price is left unchanged.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Annotated, Protocol

from appchaind.chain import codec
from appchaind.chain.codec import U32, U64, MaxItems, message
from appchaind.chain.types import MAX_VOTE_EXTENSION_BYTES, TxBytes
from appchaind.chain.units import UnitError, parse_decimal
from config.genesis import MAX_INCLUSION_TXS, PPM, MarketParams
from orderbook import MAX_PRICE

__all__ = [
    "MarketPrice",
    "PrecommitExtension",
    "PriceSource",
    "SimulatedFeed",
    "FilePriceSource",
    "encode_vote",
    "decode_vote",
    "verify_extension",
    "aggregate",
    "MAX_REPORT_RATIO",
]

#: A reported price must be within this factor of the current price (sanity bound only:
#: the per-block move clamp is what protects the chain).
MAX_REPORT_RATIO = 10


@message
class MarketPrice:
    market_id: U32
    price: U64


@message
class PrecommitExtension:
    """One validator's precommit extension: its prices, ascending market id, each market
    at most once; and its inclusion list, canonical tx bytes (the chain's
    ``max_inclusion_txs`` / ``max_inclusion_bytes`` bound it further)."""

    prices: Annotated[tuple[MarketPrice, ...], MaxItems(256)]
    include: Annotated[tuple[TxBytes, ...], MaxItems(MAX_INCLUSION_TXS)] = ()


def encode_vote(prices: dict[int, int], include: tuple[bytes, ...] = ()) -> bytes:
    """The extension reporting ``prices`` (market id -> ticks) and listing ``include``."""
    entries = tuple(MarketPrice(m, prices[m]) for m in sorted(prices))
    return codec.encode(PrecommitExtension(entries, include))


def decode_vote(extension: bytes) -> PrecommitExtension:
    """Raises CodecError on anything but a canonical extension."""
    return codec.decode(PrecommitExtension, extension, max_bytes=MAX_VOTE_EXTENSION_BYTES)


def verify_extension(extension: bytes, current: Sequence[int]) -> str | None:
    """Why the extension is unacceptable, or None. Empty means "no prices" and is fine."""
    if not extension:
        return None
    try:
        vote = decode_vote(extension)
    except codec.CodecError as exc:
        return f"not a vote extension: {exc}"
    last = -1
    for entry in vote.prices:
        if entry.market_id <= last:
            return "markets must be listed once each, ascending"
        last = entry.market_id
        if entry.market_id >= len(current):
            return f"unknown market {entry.market_id}"
        reference = current[entry.market_id]
        if not 0 < entry.price < MAX_PRICE:
            return f"market {entry.market_id}: price {entry.price} out of range"
        if entry.price * MAX_REPORT_RATIO < reference or entry.price > reference * MAX_REPORT_RATIO:
            return (
                f"market {entry.market_id}: price {entry.price} is implausibly far from {reference}"
            )
    return None


def aggregate(
    votes: Sequence[tuple[int, bytes]],
    total_power: int,
    current: Sequence[int],
    max_move_ppm: Sequence[int],
) -> list[tuple[int, int, int]]:
    """New prices from ``votes`` = (voting power, extension) of one commit.

    Returns per market (new price, previous price, reported power). Invalid extensions
    count as not reporting. The weighted median is the lowest price at which the
    cumulative reported power reaches half of the reported power.
    """
    reports: list[list[tuple[int, int]]] = [[] for _ in current]
    for power, extension in votes:
        if not extension or power <= 0 or verify_extension(extension, current) is not None:
            continue
        for entry in decode_vote(extension).prices:
            reports[entry.market_id].append((entry.price, power))
    out = []
    for market_id, previous in enumerate(current):
        entries = sorted(reports[market_id])
        reported = sum(power for _, power in entries)
        price = previous
        if entries and 3 * reported >= 2 * total_power:
            cumulative = 0
            for candidate, power in entries:
                cumulative += power
                if 2 * cumulative >= reported:
                    price = candidate
                    break
            move = previous * max_move_ppm[market_id] // PPM
            price = max(previous - move, min(previous + move, price))
            price = max(1, price)
        out.append((price, previous, reported))
    return out


class PriceSource(Protocol):
    def prices(self) -> dict[int, int]:
        """This validator's current price (ticks) per market id; may omit markets."""
        ...


def _uniform(seed: bytes, spread: int) -> int:
    """An integer in [-spread, spread] from a hash."""
    value = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big")
    return value % (2 * spread + 1) - spread


class SimulatedFeed:
    """A random walk over wall-clock seconds that every validator of a local network shares
    (same ``seed``, same genesis prices), plus each validator's own small noise.

    Per second, each market's price moves by a hashed step in ±``step_ppm``; the validator
    adds a hashed noise in ±``noise_ppm`` keyed by ``validator_seed``. ``clock`` returns
    Unix seconds (float); it is the only clock read on the oracle path.
    """

    def __init__(
        self,
        markets: Sequence[MarketParams],
        *,
        seed: bytes,
        validator_seed: bytes,
        start_ms: int,
        step_ppm: int = 500,
        noise_ppm: int = 50,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._markets = list(markets)
        self._seed = seed
        self._validator_seed = validator_seed
        self._start = start_ms // 1000
        self._step_ppm = step_ppm
        self._noise_ppm = noise_ppm
        self._clock = clock
        self._second = self._start
        self._walk = [m.initial_oracle_price for m in self._markets]

    def walk_at(self, second: int) -> list[int]:
        """The shared walk's prices at Unix ``second`` (no noise)."""
        if second < self._second:
            self._second = self._start
            self._walk = [m.initial_oracle_price for m in self._markets]
        while self._second < second:
            self._second += 1
            t = self._second.to_bytes(8, "big")
            for i, market in enumerate(self._markets):
                step = _uniform(
                    self._seed + market.market_id.to_bytes(4, "big") + t, self._step_ppm
                )
                self._walk[i] = max(1, self._walk[i] * (PPM + step) // PPM)
        return list(self._walk)

    def prices(self) -> dict[int, int]:
        now_ms = int(self._clock() * 1000)
        walk = self.walk_at(max(self._start, now_ms // 1000))
        out = {}
        for i, market in enumerate(self._markets):
            key = (
                self._validator_seed
                + market.market_id.to_bytes(4, "big")
                + now_ms.to_bytes(8, "big")
            )
            noise = _uniform(key, self._noise_ppm)
            out[market.market_id] = max(1, walk[i] * (PPM + noise) // PPM)
        return out


class FilePriceSource:
    """Prices an operator's process writes to a JSON file: ``{"BTC-PERP": "65000.5", ...}``
    (decimal prices, rounded half-even to the nearest tick at this edge). Unreadable files
    or entries are skipped: the validator then reports nothing for those markets."""

    def __init__(self, path: Path, markets: Sequence[MarketParams]) -> None:
        self._path = Path(path)
        self._markets = {m.symbol: m for m in markets}

    def prices(self) -> dict[int, int]:
        try:
            doc = json.loads(self._path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(doc, dict):
            return {}
        out = {}
        for symbol, text in doc.items():
            market = self._markets.get(symbol)
            if market is None or not isinstance(text, str):
                continue
            try:
                exact = parse_decimal(text, f"{symbol} price") / Decimal(market.tick_size)
            except (UnitError, ArithmeticError):
                continue
            if not exact.is_finite():
                continue
            ticks = int(exact.to_integral_value(rounding=ROUND_HALF_EVEN))
            if 0 < ticks < MAX_PRICE:
                out[market.market_id] = ticks
        return out
