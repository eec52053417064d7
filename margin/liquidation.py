"""Finding liquidatable accounts without scanning them all, and ranking for deleveraging.

**The index.** When an account is evaluated at the current oracle prices and is above
maintenance margin, its *excess* (net collateral minus maintenance requirement, minus one
micro-unit per position for rounding) is split over its positions in proportion to how
fast each loses value per tick. That gives each position a price band: a long is safe
while the oracle stays at or above ``ref - d``, a short while it stays at or below
``ref + d``. As long as no position's oracle leaves its band, the account cannot have
fallen below maintenance (the losses are bounded by the shares, which sum to at most the
excess). Per market the index keeps longs by lower bound and shorts by upper bound in
sorted lists, so after a price move only the accounts whose band was crossed are touched:
two bisections per market when nobody crossed.

The index is a cache derived from the state, not part of it: an account whose state
changes is re-evaluated exactly (``ClearingHouse.unindexed``), so the set of accounts found
liquidatable is a pure function of the state, whatever prices the bands were computed at.
"""

from __future__ import annotations

from sortedcontainers import SortedList

from margin.accounts import Account
from margin.health import health
from margin.markets import PPM, MarketState

__all__ = ["LiquidationIndex", "deleveraging_ranking"]

_HIGHEST = b"\xff" * 32


class LiquidationIndex:
    """Per market: longs keyed ``(lower_bound, address)``, shorts ``(upper_bound, address)``."""

    __slots__ = ("_longs", "_shorts", "_entries")

    def __init__(self, market_count: int) -> None:
        self._longs = [SortedList() for _ in range(market_count)]
        self._shorts = [SortedList() for _ in range(market_count)]
        #: address -> ((market_id, is_long, bound), ...) currently in the lists.
        self._entries: dict[bytes, tuple[tuple[int, bool, int], ...]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def remove(self, address: bytes) -> None:
        entries = self._entries.pop(address, None)
        if entries:
            for market_id, is_long, bound in entries:
                (self._longs if is_long else self._shorts)[market_id].remove((bound, address))

    def update(self, account: Account, markets: list[MarketState]) -> bool:
        """Re-evaluate ``account`` at the current prices: returns True (and leaves it out of
        the index) if it is below maintenance margin, else indexes its bands."""
        address = account.address
        self.remove(address)
        if not account.positions:
            return False
        state = health(account, markets)
        if state.net < state.maintenance:
            return True
        excess = state.net - state.maintenance - len(account.positions)
        rates: list[tuple[int, int, int]] = []  # (market_id, size, loss per tick × PPM)
        total_weight = 0
        for market_id in account.markets():
            market = markets[market_id]
            size = account.positions[market_id].size
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
            if size > 0:
                bound = price - distance
                self._longs[market_id].add((bound, address))
                entries.append((market_id, True, bound))
            else:
                bound = price + distance
                self._shorts[market_id].add((bound, address))
                entries.append((market_id, False, bound))
        self._entries[address] = tuple(entries)
        return False

    def crossed(self, market_id: int, price: int) -> list[bytes]:
        """Remove and return the accounts whose band in ``market_id`` the oracle ``price``
        (ticks) has left: longs with ``price < bound``, shorts with ``price > bound``."""
        found: list[bytes] = []
        longs = self._longs[market_id]
        start = longs.bisect_right((price, _HIGHEST))
        if start < len(longs):
            found.extend(address for _, address in longs.islice(start))
        shorts = self._shorts[market_id]
        stop = shorts.bisect_left((price, b""))
        if stop:
            found.extend(address for _, address in shorts.islice(0, stop))
        for address in found:
            self.remove(address)
        return found


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
