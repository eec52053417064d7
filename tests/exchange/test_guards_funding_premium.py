"""The funding premium's impact prices (appchaind/exchange/funding.py with
margin/funding.py): the average price of taking the impact notional from each side of
the book, rounded so that the premium is never overstated (the impact bid down, the
impact ask up), sampled every block and averaged into the rate at the funding tick.

Market BTC-PERP of tests/exchange/support.py: oracle 50000 ticks (one tick is 20 ppm),
one tick-lot is 1000 micro-units, impact notional 500 quote (500,000 tick-lots), funding
every 10 blocks, the rate clamped to 1000 ppm."""

from __future__ import annotations

from typing import Any

import pytest

from appchaind.exchange import ExchangeApp
from tests.exchange.support import BUY, SELL, Driver, genesis, limit

BTC = 0
RICH = "1000000"


def _rate_at_the_tick(levels: list[tuple[int, int, int]]) -> dict[str, Any]:
    """Bob's resting orders (side, price, lots) through a funding interval; the BTC
    funding event of the tick at height 10."""
    app = ExchangeApp(genesis({"bob": RICH}))
    d = Driver(app)
    placed = d.block([
        d.tx("bob", limit(BTC, side, price, lots, client_id=i))
        for i, (side, price, lots) in enumerate(levels)
    ])  # fmt: skip
    assert [r.code for r in placed.tx_results] == [0] * len(levels)
    while d.height < 10:
        d.block([])
    result = d.block([])
    (event,) = [e.attributes for e in result.events if e.kind == "funding" and
                e.attributes["market"] == BTC]  # fmt: skip
    return event


@pytest.mark.parametrize(
    ("levels", "rate_ppm"),
    [
        # asks below the oracle: 10 lots at 49990 and 1 at 49991 reach 500,000 tick-lots;
        # 549,891 / 11 = 49990.09, rounded up to 49991: 9 ticks below, -180 ppm
        ([(SELL, 49990, 10), (SELL, 49991, 5)], -180),
        # bids above the oracle: 9 lots at 50010 and 1 at 50009;
        # 500,099 / 10 = 50009.9, rounded down to 50009: 9 ticks above, +180 ppm
        ([(BUY, 50010, 9), (BUY, 50009, 5)], 180),
    ],
    ids=["impact-ask-rounds-up", "impact-bid-rounds-down"],
)
def test_the_premium_is_never_overstated_by_the_impact_prices_rounding(
    levels: list[tuple[int, int, int]], rate_ppm: int
) -> None:
    """Every sample of the interval sees the same book, so the rate is the one premium:
    the impact price rounded toward the oracle."""
    event = _rate_at_the_tick(levels)
    assert event["rate_ppm"] == rate_ppm
    assert event["index_step"] == rate_ppm * 50000 * 1000
