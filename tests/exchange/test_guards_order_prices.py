"""The prices an order may carry (appchaind/exchange/orders.py, ``place_order``):

- a limit order's price must lie in the block's price band, the oracle price ±
  ``price_band_ppm``, both ends included;
- a stop-limit or take-profit-limit order's price, and every conditional order's trigger
  price, must be in (0, MAX_PRICE): 1 and MAX_PRICE - 1 accepted, 0 and MAX_PRICE refused;
- a market order runs as IOC (whatever time in force it was sent with) limited by the
  band's end on its side.

Markets of tests/exchange/support.py: BTC-PERP (0) at 50000 ticks, ETH-PERP (1) at 3000,
price band 10%: [45000, 55000] and [2700, 3300].
"""

from __future__ import annotations

import dataclasses

import pytest

from appchaind.chain.codes import Code
from appchaind.exchange import ExchangeApp, PlaceOrder
from appchaind.exchange.txs import OrderType
from orderbook import MAX_PRICE
from tests.exchange.support import (
    BUY,
    GTC,
    POST_ONLY,
    SELL,
    Driver,
    address,
    conditional,
    genesis,
    limit,
    market_order,
)

BTC, ETH = 0, 1
RICH = "100000000"


def _codes(d: Driver, name: str, bodies: list[PlaceOrder]) -> list[int]:
    return [r.code for r in d.block([d.tx(name, b) for b in bodies]).tx_results]


def test_a_limit_price_at_either_end_of_the_price_band_is_accepted_one_tick_out_refused() -> None:
    app = ExchangeApp(genesis({"alice": RICH}))
    d = Driver(app)
    bodies = [
        limit(BTC, BUY, 45000, 1, client_id=1),
        limit(BTC, SELL, 55000, 1, client_id=2),
        limit(BTC, BUY, 44999, 1, client_id=3),
        limit(BTC, SELL, 55001, 1, client_id=4),
        limit(ETH, BUY, 2700, 1, client_id=5),
        limit(ETH, SELL, 3300, 1, client_id=6),
        limit(ETH, BUY, 2699, 1, client_id=7),
        limit(ETH, SELL, 3301, 1, client_id=8),
    ]
    ok, out = Code.OK, Code.PRICE_OUTSIDE_BAND
    assert _codes(d, "alice", bodies) == [ok, ok, out, out] * 2


def test_the_price_band_follows_the_oracle_price() -> None:
    """At an oracle of 51000 the band is [45900, 56100]."""
    app = ExchangeApp(genesis({"alice": RICH}))
    d = Driver(app)
    result = d.block(
        [
            d.tx("alice", limit(BTC, BUY, 45900, 1, client_id=1)),
            d.tx("alice", limit(BTC, SELL, 56100, 1, client_id=2)),
            d.tx("alice", limit(BTC, BUY, 45899, 1, client_id=3)),
            d.tx("alice", limit(BTC, SELL, 56101, 1, client_id=4)),
        ],
        prices=[51000, 3000],
    )
    ok, out = Code.OK, Code.PRICE_OUTSIDE_BAND
    assert [r.code for r in result.tx_results] == [ok, ok, out, out]


@pytest.mark.parametrize("kind", [OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT])
def test_a_conditional_limit_price_is_from_one_tick_to_below_max_price(kind: OrderType) -> None:
    """Not bound by the price band: any price in (0, MAX_PRICE). (Sells whose trigger the
    oracle does not reach.)"""
    app = ExchangeApp(genesis({"alice": RICH}))
    d = Driver(app)
    trigger = 40000 if kind == OrderType.STOP_LIMIT else 60000
    bodies = [
        conditional(BTC, SELL, kind, trigger, 1, 1, client_id=1),
        conditional(BTC, SELL, kind, trigger, 1, MAX_PRICE - 1, client_id=2),
        conditional(BTC, SELL, kind, trigger, 1, 0, tif=GTC, client_id=3),
        conditional(BTC, SELL, kind, trigger, 1, MAX_PRICE, client_id=4),
    ]
    ok, bad = Code.OK, Code.INVALID_ORDER
    assert _codes(d, "alice", bodies) == [ok, ok, bad, bad]
    assert len(list(app.books[BTC].conditional_orders())) == 2


@pytest.mark.parametrize(
    "kind",
    [
        OrderType.STOP_MARKET,
        OrderType.STOP_LIMIT,
        OrderType.TAKE_PROFIT_MARKET,
        OrderType.TAKE_PROFIT_LIMIT,
    ],
)
def test_a_trigger_price_is_from_one_tick_to_below_max_price(kind: OrderType) -> None:
    app = ExchangeApp(genesis({"alice": RICH}))
    d = Driver(app)
    price = 50000 if kind in (OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT) else 0
    bodies = [
        conditional(BTC, BUY, kind, 1, 1, price, client_id=1),
        conditional(BTC, BUY, kind, MAX_PRICE - 1, 1, price, client_id=2),
        conditional(BTC, BUY, kind, 0, 1, price, client_id=3),
        conditional(BTC, BUY, kind, MAX_PRICE, 1, price, client_id=4),
    ]
    ok, bad = Code.OK, Code.INVALID_ORDER
    assert _codes(d, "alice", bodies) == [ok, ok, bad, bad]
    # the refusal names the trigger price (not the book's "invalid price or size")
    body = conditional(BTC, BUY, kind, MAX_PRICE, 1, price, client_id=5)
    (refused,) = d.block([d.tx("alice", body)]).tx_results
    assert (refused.code, refused.log) == (bad, "trigger_price must be a positive number of ticks")


@pytest.mark.parametrize("tif", [GTC, POST_ONLY])
@pytest.mark.parametrize(("side", "inside", "beyond", "oracle_then"), [
    (BUY, 55000, 55500, 51000),
    (SELL, 45000, 44500, 49000),
])  # fmt: skip
def test_a_market_order_runs_as_ioc_limited_by_the_band(
    tif: int, side: int, inside: int, beyond: int, oracle_then: int
) -> None:
    """Orders of 2 at the band's end (55000 for a buy, 45000 for a sell) rest, and 2 beyond
    it from when the oracle was further out: a market order of 5 (sent GTC or post-only)
    takes the 2 at the band's end, not the 2 beyond, and nothing of it rests."""
    app = ExchangeApp(genesis({"alice": RICH, "maker": RICH}))
    d = Driver(app)
    maker_side = 1 - side
    d.block(
        [d.tx("maker", limit(BTC, maker_side, beyond, 2, client_id=1))], prices=[oracle_then, 3000]
    )
    d.block([d.tx("maker", limit(BTC, maker_side, inside, 2, client_id=2))], prices=[50000, 3000])
    order = dataclasses.replace(market_order(BTC, side, 5), time_in_force=tif)
    result = d.block([d.tx("alice", order)])
    assert result.tx_results[0].code == Code.OK
    held = app.account(address("alice")).position_size(BTC)  # type: ignore[union-attr]
    assert held == (2 if side == BUY else -2)
    assert app.books[BTC].order_ids_of(address("alice")) == []
    assert app.books[BTC].volume(maker_side) == 2
