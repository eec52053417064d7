"""The exchange reports itself through ``statistics()`` (what the metrics collector reads)."""

from __future__ import annotations

from appchaind.exchange import ExchangeApp
from tests.exchange.support import BUY, SELL, Driver, genesis, limit, market_order


def test_statistics_report_books_open_interest_and_funds() -> None:
    app = ExchangeApp(genesis({"alice": "1000000", "bob": "1000000", "carol": "1000000"}))
    d = Driver(app)
    d.block(
        [
            d.tx("alice", limit(0, SELL, 50100, 30)),
            d.tx("alice", limit(0, SELL, 50200, 20, client_id=1)),
            d.tx("carol", limit(0, BUY, 49900, 10)),
            d.tx("alice", limit(1, SELL, 3010, 5)),
        ]
    )
    d.block([d.tx("bob", market_order(0, BUY, 40))])  # takes 30 at 50100 and 10 at 50200
    stats = app.statistics()
    assert stats.height == app.height
    btc, eth = stats.markets
    assert (btc.market_id, btc.symbol, btc.best_bid, btc.best_ask) == (0, "BTC-PERP", 49900, 50200)
    assert (eth.market_id, eth.symbol) == (1, "ETH-PERP")
    assert (btc.resting_orders, eth.resting_orders) == (2, 1)
    assert (btc.open_interest, eth.open_interest) == (40, 0)  # bob long 40, alice short 40
    assert btc.oracle_price == app.markets[0].oracle_price
    assert stats.clearing.accounts == len(app.clearing.accounts)
    assert stats.clearing.insurance_fund == app.clearing.insurance_fund
    longs = sum(max(0, a.position_size(0)) for a in app.clearing.accounts.values())
    shorts = sum(max(0, -a.position_size(0)) for a in app.clearing.accounts.values())
    assert longs == shorts == btc.open_interest


def test_statistics_report_each_markets_last_funding_rate() -> None:
    """Bids above the oracle through a funding interval (10 blocks): longs pay, at the
    market's cap of 1000 ppm."""
    app = ExchangeApp(genesis({"alice": "1000000"}))
    d = Driver(app)
    d.block(
        [
            d.tx("alice", limit(0, BUY, 50400, 30)),
            d.tx("alice", limit(0, SELL, 50600, 30, client_id=1)),
        ]
    )
    assert [m.funding_rate_ppm for m in app.statistics().markets] == [0, 0]
    while app.height < 10:
        d.block([])
    assert [m.funding_rate_ppm for m in app.statistics().markets] == [1000, 0]
