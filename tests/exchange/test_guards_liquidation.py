"""Liquidation rules only reachable through the exchange's end-of-block step
(margin/liquidator.py run by appchaind/exchange): a liquidated account's funding is
settled, and reported, before anything else happens to it.

Markets of tests/exchange/support.py: BTC-PERP at 50000 ticks, one tick-lot is 1000
micro-units, maintenance margin 5%, funding every 10 blocks clamped to 1000 ppm."""

from __future__ import annotations

from appchaind.exchange import ExchangeApp
from tests.exchange.support import BUY, IOC, SELL, Driver, address, genesis, limit

BTC = 0
ETH_PRICE = 3000
RICH = "1000000"


def test_a_liquidated_account_settles_its_funding_first_and_reports_it() -> None:
    """Carol (502.54 quote) is long 100 at 50000. A bid above the oracle makes longs pay
    the clamped 1000 ppm at the funding tick (height 10): 1000 ppm x 50000 x 1000 x 100 =
    5 quote, owed but not settled (she sends no tx). At 47000 she is liquidated: the first
    thing reported of her is that payment, then her liquidation."""
    app = ExchangeApp(genesis({"carol": "502.54", "bob": RICH, "maker": RICH}))
    d = Driver(app)
    d.block([
        d.tx("bob", limit(BTC, SELL, 50000, 100)),
        d.tx("carol", limit(BTC, BUY, 50000, 100, IOC)),
        d.tx("maker", limit(BTC, BUY, 50400, 30)),
    ])  # fmt: skip
    while d.height <= 10:
        d.block([])
    carol = app.account(address("carol"))
    assert carol is not None and carol.position_size(BTC) == 100
    result = d.block([], prices=[47000, ETH_PRICE])
    of_carol = [
        e for e in result.events
        if address("carol") in (e.attributes.get("account"), e.attributes.get("owner"),
                                e.attributes.get("taker"))
    ]  # fmt: skip
    assert of_carol[0].kind == "funding_payment"
    assert of_carol[0].attributes == {"account": address("carol"), "amount": 5_000_000}
    assert "liquidation" in [e.kind for e in of_carol[1:]]
    assert carol.position_size(BTC) < 100
    assert app.clearing.conservation_gap() == 0
