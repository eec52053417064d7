"""A funding tick over an interval with no premium sample pays no funding: the rate is 0,
the index does not move, and the market reports 0 as its last rate.

The exchange samples every market before each of its ticks (appchaind/exchange/funding.py),
so a tick without samples is the margin engine's own rule, for a market ticked on its own.
Found unguarded by ``make mutate`` (docs/mutation/margin__funding.md)."""

from __future__ import annotations

from margin import MarketState, funding_tick, sample_premium
from tests.exchange.support import genesis


def test_a_tick_without_samples_pays_no_funding_and_resets_the_last_rate() -> None:
    """BTC (oracle 50000, quantum 1000): a tick over one sample of 700 ppm moves the index
    by 700 x 50000 x 1000; the next tick, with no sample, moves nothing and the last rate
    reads 0 again."""
    market = MarketState(genesis({}).markets[0])
    sample_premium(market, 700)
    assert funding_tick(market, 1_000) == (700, 700 * 50_000 * 1000)
    index = market.funding_index
    assert (market.premium_sum, market.premium_samples) == (0, 0)
    assert funding_tick(market, 1_000) == (0, 0)
    assert market.funding_index == index and market.last_funding_rate_ppm == 0
