"""The open-order cap (appchaind/exchange/orders.py): an account may have at most
``max_open_orders_per_account`` open orders per market, resting and conditional counted
together. An order that could rest (GTC, post-only) or a conditional order is refused at
the cap (TOO_MANY_OPEN_ORDERS) and accepted one below it; IOC and FOK orders never rest
and never count; a replacement does not count the order it replaces; other markets'
orders do not count.

Markets of tests/exchange/support.py: BTC-PERP (0) at 50000 ticks, ETH-PERP (1) at 3000.
"""

from __future__ import annotations

from appchaind.chain.codes import Code
from appchaind.exchange import ExchangeApp, PlaceOrder, ReplaceOrder
from appchaind.exchange.txs import OrderType
from tests.exchange.support import (
    BUY,
    FOK,
    IOC,
    POST_ONLY,
    SELL,
    Driver,
    address,
    conditional,
    genesis,
    limit,
)

BTC, ETH = 0, 1
RICH = "1000000"
CAP = 3


def _capped() -> tuple[ExchangeApp, Driver]:
    app = ExchangeApp(
        genesis({"alice": RICH, "maker": RICH}, params={"max_open_orders_per_account": CAP})
    )
    d = Driver(app)
    d.block([d.tx("maker", limit(BTC, BUY, 49000, 10)), d.tx("maker", limit(ETH, BUY, 2900, 10))])
    return app, d


def _stop(trigger: int, client_id: int) -> PlaceOrder:
    return conditional(BTC, BUY, OrderType.STOP_MARKET, trigger, 1, client_id=client_id)


def test_a_resting_order_is_accepted_one_below_the_cap_and_refused_at_it() -> None:
    """Two resting asks and a stop: the third open order (two open) is accepted; then a
    GTC, a post-only ask and a stop are refused, in BTC only."""
    app, d = _capped()
    first = d.block([
        d.tx("alice", limit(BTC, SELL, 51000, 1, client_id=1)),
        d.tx("alice", limit(BTC, SELL, 51100, 1, POST_ONLY, client_id=2)),
    ])  # fmt: skip
    assert [r.code for r in first.tx_results] == [Code.OK, Code.OK]
    third = d.block([d.tx("alice", _stop(55000, 3))])
    assert third.tx_results[0].code == Code.OK
    assert app.books[BTC].open_order_count(address("alice")) == CAP
    result = d.block([
        d.tx("alice", limit(BTC, SELL, 51200, 1, client_id=4)),
        d.tx("alice", limit(BTC, SELL, 51300, 1, POST_ONLY, client_id=5)),
        d.tx("alice", _stop(56000, 6)),
        d.tx("alice", limit(ETH, SELL, 3100, 1, client_id=7)),
    ])  # fmt: skip
    too_many = Code.TOO_MANY_OPEN_ORDERS
    assert [r.code for r in result.tx_results] == [too_many, too_many, too_many, Code.OK]
    assert app.books[BTC].open_order_count(address("alice")) == CAP


def test_a_conditional_order_is_accepted_one_below_the_cap_and_refused_at_it() -> None:
    app, d = _capped()
    result = d.block([d.tx("alice", _stop(55000 + i, i)) for i in range(CAP + 1)])
    assert [r.code for r in result.tx_results] == [Code.OK] * CAP + [Code.TOO_MANY_OPEN_ORDERS]


def test_ioc_and_fok_orders_trade_at_the_cap() -> None:
    app, d = _capped()
    d.block([
        d.tx("alice", limit(BTC, SELL, 51000 + i, 1, client_id=i)) for i in range(CAP)
    ])  # fmt: skip
    result = d.block([
        d.tx("alice", limit(BTC, SELL, 49000, 1, IOC, client_id=10)),
        d.tx("alice", limit(BTC, SELL, 49000, 2, FOK, client_id=11)),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [Code.OK, Code.OK]
    assert app.account(address("alice")).position_size(BTC) == -3  # type: ignore[union-attr]


def test_at_the_cap_any_open_order_can_be_replaced_by_a_resting_or_a_conditional_one() -> None:
    """At the cap, a resting ask is replaced by a stop, and a stop by a resting ask (each
    is a cancel and a new order: the replaced order does not count)."""
    app, d = _capped()
    placed = d.block([
        d.tx("alice", limit(BTC, SELL, 51000, 1, client_id=1)),
        d.tx("alice", limit(BTC, SELL, 51100, 1, client_id=2)),
        d.tx("alice", _stop(55000, 3)),
    ])  # fmt: skip
    ask, _, stop = (r.events[0].attributes["order_id"] for r in placed.tx_results)
    result = d.block([
        d.tx("alice", ReplaceOrder(ask, 0, False, _stop(56000, 4))),
        d.tx("alice", ReplaceOrder(stop, 0, False, limit(BTC, SELL, 52000, 1, client_id=5))),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [Code.OK, Code.OK]
    book = app.books[BTC]
    assert book.open_order_count(address("alice")) == CAP
    assert book.order(ask) is None and book.triggers.get(stop) is None
