"""The funding premium of a block is sampled from the book's impact prices: the average
price of taking ``impact_notional`` (rounded up to whole tick-lots) from each side, the
bid rounded down and the ask up, so that the premium is never overstated. Every market
samples every block and ticks at its own ``funding_interval_blocks``, reporting a
``funding`` event (market, rate in ppm, the new index and its step).

Found unguarded by ``make mutate`` (docs/mutation-report.md, app.py's ``_funding``): the
funding vector has a one-sided or empty book, where the impact walk and its rounding do
not show.

Both markets here trade at prices near 100 ticks with tick 1 and lot 0.001 (a tick-lot is
1000 micro-units); an impact notional of 0.5005 quote units is 500,500 micro-units, so
501 tick-lots once rounded up (500 if it were rounded down). The bands are wide (±50%)
and the rate cap is the whole price (1,000,000 ppm), so neither hides the premium.
"""

from __future__ import annotations

from appchaind.exchange import ExchangeApp
from config.genesis import PPM
from tests.exchange.support import BUY, SELL, Driver, genesis, limit, market

BID_SIDE, ASK_SIDE = 0, 1
RICH = "1000000"
WIDE = {"impact_notional": "0.5005", "price_band_ppm": 500_000, "max_funding_rate_ppm": PPM}


def _funding_events(result) -> list[dict[str, int]]:  # type: ignore[no-untyped-def]
    return [e.attributes for e in result.events if e.kind == "funding"]


def test_the_premium_comes_from_the_impact_prices_of_the_impact_notional_rounded_against_it() -> (
    None
):
    """Market 0 (oracle 90, funding every 2 blocks): bids 105 x 4 lots and 80 x 10. Selling
    501 tick-lots into them takes 4 lots at 105 (420) and 2 at 80 (160): 580 for 6 lots, an
    impact bid of 96.67 rounded down to 96, a premium of (96 - 90) / 90 = 66,666 ppm (500
    tick-lots would stop after 1 lot at 80: 500 / 5 = 100, 111,111 ppm). Market 1 (oracle
    110, funding every block): asks 100 x 3 lots and 107 x 10. Buying 501 tick-lots takes
    3 lots at 100 and 2 at 107: 514 for 5 lots, an impact ask of 102.8 rounded up to 103,
    a premium of -(110 - 103) / 110 = -63,636 ppm.

    Height 1: market 1 ticks at its premium; market 0 only samples. Height 2: both tick,
    market 0 at the mean of its two samples (the same book: 66,666 ppm). The index moves by
    rate x oracle price x quantum. All of it is integers (ticks, ppm, micro-units): a float
    anywhere would change the committed market record and what the event reports."""
    app = ExchangeApp(
        genesis(
            {"mo": RICH},
            markets=[
                market("AAA-PERP", "90", funding_interval_blocks=2, **WIDE),
                market("BBB-PERP", "110", funding_interval_blocks=1, **WIDE),
            ],
        )
    )
    d = Driver(app)
    first = d.block([
        d.tx("mo", limit(BID_SIDE, BUY, 105, 4)),
        d.tx("mo", limit(BID_SIDE, BUY, 80, 10, client_id=1)),
        d.tx("mo", limit(ASK_SIDE, SELL, 100, 3, client_id=2)),
        d.tx("mo", limit(ASK_SIDE, SELL, 107, 10, client_id=3)),
    ])  # fmt: skip
    assert all(r.code == 0 for r in first.tx_results), [r.log for r in first.tx_results]
    ask_step = -63_636 * 110 * 1000
    assert _funding_events(first) == [
        {"market": ASK_SIDE, "rate_ppm": -63_636, "index": ask_step, "index_step": ask_step},
    ]
    second = d.block([])
    bid_step = 66_666 * 90 * 1000
    assert _funding_events(second) == [
        {"market": BID_SIDE, "rate_ppm": 66_666, "index": bid_step, "index_step": bid_step},
        {"market": ASK_SIDE, "rate_ppm": -63_636, "index": 2 * ask_step, "index_step": ask_step},
    ]
    reported = _funding_events(first) + _funding_events(second)
    assert all(type(value) is int for event in reported for value in event.values())
