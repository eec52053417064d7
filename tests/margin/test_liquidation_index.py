"""The liquidation index's bands at the rounding boundaries, found unguarded by ``make
mutate`` (docs/mutation-report.md): the random index tests rarely land where one
micro-unit of excess moves a band by a tick. Swept here over every excess up to two ticks
of loss: each band is exactly the documented one (margin.liquidation; the plain model of
tests/margin/test_margin.py), and at its bound the account is not below maintenance (the
index never misses a liquidation)."""

from __future__ import annotations

import pytest

from margin import Account, MarketState, Position, health
from tests.exchange.support import genesis
from tests.margin.test_margin import _reference_bands
from tests.margin.test_mutants import _crossed_just_beyond_each_band


def _markets() -> list[MarketState]:
    return [MarketState(m) for m in genesis({}).markets]


@pytest.mark.parametrize("sizes", [(1, 0), (-1, 0), (3, 0), (-3, 0), (1, -40)])
def test_every_band_is_exact_and_safe_across_the_rounding_slack(sizes: tuple[int, int]) -> None:
    markets = _markets()
    account = Account(b"s" * 20, 0)
    for market_id, size in enumerate(sizes):
        if size:
            account.positions[market_id] = Position(size, markets[market_id].funding_index, 0)
    base = health(account, markets)
    # a tick of BTC moves one lot's value by 1000 micro-units and its requirement by 50
    for excess in range(0, 2 * 1050 * abs(sizes[0]) + 3):
        account.balance = base.maintenance - base.net + len(account.positions) + excess
        _crossed_just_beyond_each_band(account, markets)
        bands = _reference_bands(account, markets)
        assert bands is not None
        for (market_id, _), bound in bands.items():
            oracle = markets[market_id].oracle_price
            markets[market_id].oracle_price = bound
            assert not health(account, markets).liquidatable, (sizes, excess, bound)
            markets[market_id].oracle_price = oracle
