"""Finding liquidatable accounts without scanning them all, and ranking for deleveraging.

**The index.** When an account is evaluated at the current oracle prices and is above
maintenance margin, its *excess* (net collateral minus maintenance requirement, minus one
micro-unit per position for rounding) is split over its positions in proportion to how
much each loses for the same relative price move (its loss per tick × its price). That
gives each position a price band: a long is safe while the oracle stays at or above
``ref - d``, a short while it stays at or below ``ref + d``. As long as no position's oracle
leaves its band, the account cannot have fallen below maintenance (the losses are bounded
by the shares, which sum to at most the excess). Per market the index keeps longs in a
heap by highest lower bound and shorts in a heap by lowest upper bound, so after a price
move only the accounts whose band was crossed are touched: two comparisons per market
when nobody crossed. Re-evaluating an account pushes its new bounds and leaves the old
heap entries behind (lazy deletion, O(log n) in C, no list shifting): an entry counts
only while it is one of the account's current ones (it carries the stamp of the account's
latest indexing), and the heaps are cut down to their live entries when the stale ones
outnumber them (a running count of the heap entries says when). Which entries are live,
and so what the index returns, does not depend on the stamps' values or on the order of
the heaps' entries.

The index is a cache derived from the state, not part of it: an account whose state
changes is re-evaluated exactly (``ClearingHouse.unindexed``), so the set of accounts found
liquidatable is a pure function of the state, whatever prices the bands were computed at.
"""

from __future__ import annotations

from collections.abc import Sequence
from heapq import heapify, heappop, heappush

from margin.accounts import Account
from margin.health import health
from margin.markets import PPM, MarketState

__all__ = ["LiquidationIndex", "deleveraging_ranking"]


class LiquidationIndex:
    """Per market: a heap of longs keyed ``(-lower_bound, address, stamp)`` and one of shorts
    keyed ``(upper_bound, address, stamp)``. Every indexing of an account gets a fresh
    stamp; an entry is live while it carries its account's current stamp."""

    __slots__ = ("_longs", "_shorts", "_current", "_stamp", "_live", "_heaped", "_slack")

    def __init__(self, market_count: int, stale_slack: int = 1024) -> None:
        """``stale_slack``: how many stale heap entries beyond the live count are kept
        before the heaps are rebuilt."""
        self._longs: list[list[tuple[int, bytes, int]]] = [[] for _ in range(market_count)]
        self._shorts: list[list[tuple[int, bytes, int]]] = [[] for _ in range(market_count)]
        #: address -> (stamp, number of entries) of each indexed account.
        self._current: dict[bytes, tuple[int, int]] = {}
        #: The last stamp given.
        self._stamp = 0
        #: How many heap entries are live (the rest are stale, dropped when popped).
        self._live = 0
        #: How many entries the heaps hold, live or stale.
        self._heaped = 0
        self._slack = stale_slack

    def __len__(self) -> int:
        return len(self._current)

    def remove(self, address: bytes) -> None:
        """Forget ``address``: its heap entries become stale."""
        current = self._current.get(address)
        if current is not None:
            del self._current[address]
            self._live -= current[1]
            self._rebuild_if_stale()

    def _is_live(self, address: bytes, stamp: int) -> bool:
        """Whether a heap entry of ``address`` carrying ``stamp`` is live."""
        current = self._current.get(address)
        return current is not None and current[0] == stamp

    def _rebuild_if_stale(self) -> None:
        """Drop the stale heap entries once they outnumber the live ones by the slack: keep
        each heap's live entries and heapify them again."""
        if self._heaped <= 2 * self._live + self._slack:
            return
        heaped = 0
        for heaps in (self._longs, self._shorts):
            for market_id in range(len(heaps)):
                heap = [item for item in heaps[market_id] if self._is_live(item[1], item[2])]
                heapify(heap)
                heaps[market_id] = heap
                heaped += len(heap)
        self._heaped = heaped

    def update(
        self, account: Account, markets: list[MarketState], state: Sequence[int] | None = None
    ) -> bool:
        """Re-evaluate ``account`` at the current prices: returns True (and leaves it out of
        the index) if it is below maintenance margin, else indexes its bands. ``state`` is
        the account's :class:`Health` (or the same three numbers: net, initial, maintenance)
        at these prices if the caller has it (computed if None)."""
        address = account.address
        positions = account.positions
        if not positions:
            self.remove(address)
            return False
        if state is None:
            state = health(account, markets)
        net = state[0]
        maintenance = state[2]
        if net < maintenance:
            self.remove(address)
            return True
        excess = net - maintenance - len(positions)
        # A position loses (PPM + maintenance ppm) / PPM × its tick value of excess per tick
        # the price moves against it: its share of the excess is in proportion to that times
        # its price (its weight), and its distance is the ticks that share lasts. The
        # positions go in dict order: neither the weights' sum nor any entry depends on it.
        weights: list[int] = []
        total_weight = 0
        if excess > 0 and len(positions) > 1:
            for market_id, position in positions.items():
                market = markets[market_id]
                notional = _tick_value(position.size, market) * market.oracle_price
                weight = notional * (PPM + market.maintenance_ppm)
                weights.append(weight)
                total_weight += weight
        self._stamp += 1
        stamp = self._stamp
        for k, (market_id, position) in enumerate(positions.items()):
            market = markets[market_id]
            price = market.oracle_price
            distance = 0
            if excess > 0:
                share = excess * weights[k] // total_weight if weights else excess
                # share × PPM // ((PPM + maintenance ppm) × tick value), one divisor at a time
                lasting = _scaled(share, PPM, PPM + market.maintenance_ppm)
                distance = lasting // _tick_value(position.size, market)
            if position.size > 0:
                heappush(self._longs[market_id], (distance - price, address, stamp))
            else:
                heappush(self._shorts[market_id], (price + distance, address, stamp))
        previous = self._current.get(address)
        if previous is not None:
            self._live -= previous[1]
        self._current[address] = (stamp, len(positions))
        self._live += len(positions)
        self._heaped += len(positions)
        self._rebuild_if_stale()
        return False

    def crossed(self, market_id: int, price: int) -> list[bytes]:
        """Remove and return the accounts whose band in ``market_id`` the oracle ``price``
        (ticks) has left: longs with ``price < bound``, shorts with ``price > bound``
        (ascending address)."""
        found: dict[bytes, None] = {}
        longs = self._longs[market_id]
        while longs and -longs[0][0] > price:
            _, address, stamp = heappop(longs)
            self._heaped -= 1
            if self._is_live(address, stamp):
                found[address] = None
        shorts = self._shorts[market_id]
        while shorts and shorts[0][0] < price:
            _, address, stamp = heappop(shorts)
            self._heaped -= 1
            if self._is_live(address, stamp):
                found[address] = None
        for address in found:
            self.remove(address)
        return sorted(found)


def _scaled(value: int, numerator: int, denominator: int) -> int:
    """``value * numerator // denominator`` (``denominator`` > 0), from the quotient and
    remainder of ``value / denominator``, so that compiled code multiplies natively however
    large ``value × numerator`` is, as long as the quotient, ``numerator`` and
    ``denominator`` are in [0, 2**30) (mypyc's fast path for ``*``)."""
    return value // denominator * numerator + value % denominator * numerator // denominator


def _tick_value(size: int, market: MarketState) -> int:
    """Micro-units a position of ``size`` lots gains or loses per tick of price."""
    return (size if size > 0 else -size) * market.quantum


def deleveraging_ranking(
    accounts: dict[bytes, Account],
    holders: dict[bytes, None],
    markets: list[MarketState],
    market_id: int,
    long_side: bool,
    exclude: bytes,
) -> list[bytes]:
    """Addresses holding positions on the given side of ``market_id``, most deleveraged
    first: by profit × leverage, i.e. unrealised profit of the position × position notional
    ÷ account net collateral (accounts at or below zero collateral last), ties by address.
    """
    market = markets[market_id]
    price = market.oracle_price
    ranked: list[tuple[int, int, bytes]] = []
    for address in holders:
        if address == exclude:
            continue
        account = accounts[address]
        position = account.positions[market_id]
        if (position.size > 0) != long_side:
            continue
        value = position.size * price * market.quantum
        profit = value - position.cost
        net = health(account, markets).net
        if net > 0:
            score = profit * abs(value) // net
            ranked.append((0, -score, address))
        else:
            ranked.append((1, -profit, address))
    ranked.sort()
    return [address for _, _, address in ranked]
