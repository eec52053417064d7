"""Finding liquidatable accounts without scanning them all, and ranking for deleveraging.

**The index.** When an account is evaluated at the current oracle prices and is above
maintenance margin, its *excess* (net collateral minus maintenance requirement, minus one
micro-unit per position for rounding) is split over its positions in proportion to how
fast each loses value per tick. That gives each position a price band: a long is safe
while the oracle stays at or above ``ref - d``, a short while it stays at or below
``ref + d``. As long as no position's oracle leaves its band, the account cannot have
fallen below maintenance (the losses are bounded by the shares, which sum to at most the
excess). Per market the index keeps longs in a heap by highest lower bound and shorts in a
heap by lowest upper bound, so after a price move only the accounts whose band was crossed
are touched: two comparisons per market when nobody crossed. Re-evaluating an account
pushes its new bounds and leaves the old heap entries behind (lazy deletion, O(log n) in
C, no list shifting): an entry counts only while it is the account's current one, and the
heaps are rebuilt from the live entries when the stale ones outnumber them (a running
count of the heap entries says when).

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
    """Per market: a heap of longs keyed ``(-lower_bound, address)`` and one of shorts keyed
    ``(upper_bound, address)``, plus each indexed account's current entries."""

    __slots__ = ("_longs", "_shorts", "_entries", "_live", "_heaped", "_slack")

    def __init__(self, market_count: int, stale_slack: int = 1024) -> None:
        """``stale_slack``: how many stale heap entries beyond the live count are kept
        before the heaps are rebuilt."""
        self._longs: list[list[tuple[int, bytes]]] = [[] for _ in range(market_count)]
        self._shorts: list[list[tuple[int, bytes]]] = [[] for _ in range(market_count)]
        #: address -> ((market_id, is_long, bound), ...): its live heap entries.
        self._entries: dict[bytes, tuple[tuple[int, bool, int], ...]] = {}
        #: How many heap entries are live (the rest are stale, dropped when popped).
        self._live = 0
        #: How many entries the heaps hold, live or stale.
        self._heaped = 0
        self._slack = stale_slack

    def __len__(self) -> int:
        return len(self._entries)

    def remove(self, address: bytes) -> None:
        entries = self._entries.pop(address, None)
        if entries:
            self._live -= len(entries)
            if self._heaped > 2 * self._live + self._slack:
                self._rebuild()

    def _rebuild(self) -> None:
        """Drop the stale heap entries: rebuild every heap from the live entries."""
        longs: list[list[tuple[int, bytes]]] = [[] for _ in self._longs]
        shorts: list[list[tuple[int, bytes]]] = [[] for _ in self._shorts]
        for address, entries in self._entries.items():
            for market_id, is_long, bound in entries:
                if is_long:
                    longs[market_id].append((-bound, address))
                else:
                    shorts[market_id].append((bound, address))
        for heap in longs + shorts:
            heapify(heap)
        self._longs, self._shorts = longs, shorts
        self._heaped = self._live

    def update(
        self, account: Account, markets: list[MarketState], state: Sequence[int] | None = None
    ) -> bool:
        """Re-evaluate ``account`` at the current prices: returns True (and leaves it out of
        the index) if it is below maintenance margin, else indexes its bands. ``state`` is
        the account's :class:`Health` (or the same three numbers: net, initial, maintenance)
        at these prices if the caller has it (computed if None)."""
        address = account.address
        if address in self._entries:
            self.remove(address)
        positions = account.positions
        if not positions:
            return False
        if state is None:
            state = health(account, markets)
        net = state[0]
        maintenance = state[2]
        if net < maintenance:
            return True
        excess = net - maintenance - len(positions)
        if len(positions) == 1:
            ((market_id, position),) = positions.items()
            market = markets[market_id]
            size = position.size
            if excess <= 0:
                distance = 0
            else:
                # share = excess (the whole of it); distance = share * PPM // rate
                distance = (
                    excess * PPM // (abs(size) * market.quantum * (PPM + market.maintenance_ppm))
                )
            entry = self._push(market_id, size, market.oracle_price, distance, address)
            self._entries[address] = (entry,)
            self._live += 1
            return False
        rates: list[tuple[int, int, int]] = []  # (market_id, size, loss per tick × PPM)
        total_weight = 0
        for market_id in sorted(positions):
            market = markets[market_id]
            size = positions[market_id].size
            rate = abs(size) * market.quantum * (PPM + market.maintenance_ppm)
            rates.append((market_id, size, rate))
            total_weight += rate * market.oracle_price
        entries = []
        for market_id, size, rate in rates:
            price = markets[market_id].oracle_price
            if excess <= 0:
                distance = 0
            else:
                share = excess * rate * price // total_weight
                distance = share * PPM // rate
            entries.append(self._push(market_id, size, price, distance, address))
        self._entries[address] = tuple(entries)
        self._live += len(entries)
        return False

    def _push(
        self, market_id: int, size: int, price: int, distance: int, address: bytes
    ) -> tuple[int, bool, int]:
        self._heaped += 1
        if size > 0:
            bound = price - distance
            heappush(self._longs[market_id], (-bound, address))
            return (market_id, True, bound)
        bound = price + distance
        heappush(self._shorts[market_id], (bound, address))
        return (market_id, False, bound)

    def crossed(self, market_id: int, price: int) -> list[bytes]:
        """Remove and return the accounts whose band in ``market_id`` the oracle ``price``
        (ticks) has left: longs with ``price < bound``, shorts with ``price > bound``
        (ascending address)."""
        found: dict[bytes, None] = {}
        entries = self._entries
        longs = self._longs[market_id]
        while longs and -longs[0][0] > price:
            key, address = heappop(longs)
            self._heaped -= 1
            if (market_id, True, -key) in entries.get(address, ()):
                found[address] = None
        shorts = self._shorts[market_id]
        while shorts and shorts[0][0] < price:
            bound, address = heappop(shorts)
            self._heaped -= 1
            if (market_id, False, bound) in entries.get(address, ()):
                found[address] = None
        for address in found:
            self.remove(address)
        return sorted(found)


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
