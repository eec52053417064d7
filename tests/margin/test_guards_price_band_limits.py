"""The price band at the ends of the price range: the worst price an order without a limit
of its own (a market order, a liquidation the insurance fund backs) may trade at is the
oracle price ± ``price_band_ppm``, kept within ``0 < price < MAX_PRICE`` (MAX_PRICE is
also the book's "no price" mark), so a band is never empty and never names a price the
book refuses.

Found unguarded by ``make mutate`` (docs/mutation/margin__markets.md): the bands of the
tests were computed at prices far from both ends, where the clamps do not show.

Markets of tests/exchange/support.py: BTC at 50000 and ETH at 3000 ticks, band ±10%."""

from __future__ import annotations

from appchaind.exchange import ExchangeApp
from margin import MarketState, protection_price
from margin.markets import PPM
from orderbook import MAX_PRICE
from tests.exchange.support import BUY, SELL, Driver, genesis, market


def _market(price: int, band_ppm: int = 100_000) -> MarketState:
    params = genesis({}, markets=[market("BTC-PERP", "50000", price_band_ppm=band_ppm)]).markets[0]
    state = MarketState(params)
    state.oracle_price = price
    return state


def test_at_the_highest_oracle_price_a_buy_may_go_up_to_max_price_minus_one_not_beyond() -> None:
    """Oracle MAX_PRICE - 1: +10% would be far beyond the range, so a buy is bounded by the
    last valid price (MAX_PRICE - 1, not MAX_PRICE + 1 nor MAX_PRICE - 2); a sell by 90% of
    the oracle, rounded up."""
    top = _market(MAX_PRICE - 1)
    assert protection_price(top, BUY) == MAX_PRICE - 1
    assert protection_price(top, SELL) == -(-(MAX_PRICE - 1) * 9 // 10)
    # Just below the clamp: the band itself, rounded down.
    below = _market(MAX_PRICE * 10 // 11 - 1)
    assert protection_price(below, BUY) == (MAX_PRICE * 10 // 11 - 1) * 11 // 10 < MAX_PRICE - 1


def test_at_one_tick_or_with_a_band_of_the_whole_price_a_sell_may_go_down_to_one_tick() -> None:
    """Oracle 1 tick: 90% of it rounds up to 1 tick, and a buy may go to 1.1 rounded down,
    also 1. A band of 100% at 50000 would let a sell go to 0 ticks: it stops at 1 (not 2)."""
    bottom = _market(1)
    assert (protection_price(bottom, SELL), protection_price(bottom, BUY)) == (1, 1)
    whole = _market(50000, band_ppm=PPM)
    assert (protection_price(whole, SELL), protection_price(whole, BUY)) == (1, 100000)


def test_the_blocks_bands_at_the_clamped_oracle_prices_stay_within_the_price_range() -> None:
    """Decided prices 0 and MAX_PRICE are clamped to 1 and MAX_PRICE - 1 (see
    tests/exchange/test_guards_prices.py); the block's bands around them are BTC [1, 1]
    and ETH [90% of MAX_PRICE - 1 rounded up, MAX_PRICE - 1]: each admits the oracle price
    itself."""
    app = ExchangeApp(genesis({}))
    Driver(app).block([], prices=[0, MAX_PRICE])
    assert app.oracle_prices() == [1, MAX_PRICE - 1]
    assert app.bands == [(1, 1), (-(-(MAX_PRICE - 1) * 9 // 10), MAX_PRICE - 1)]
