"""The ``order`` and ``fill`` events, field by field (appchaind/exchange/orders.py,
cancels.py, order_upkeep.py; the same events as spec/exchange.py's).

An ``order`` event is (market, order_id, owner, client_id, status, size):

- for the order a tx or a trigger submits: its client id, and as size the lots it leaves
  open: ``resting`` (the unfilled lots), ``filled`` and ``cancelled`` (IOC remainder) 0,
  ``rejected`` (by the book) the lots it asked for, ``conditional`` its size;
  ``triggered`` (a conditional order leaving the trigger store) its size;
- for an order leaving the book otherwise (``cancelled`` by its owner, ``expired``,
  ``self_trade``): client id -1 and the lots it had.

A trigger the margin check refuses is reported ``rejected`` with the refusal's code and
reason. A ``fill`` names both orders and owners, the taker's side, price, lots, the
maker's remaining lots, both fees (micro-units; the maker's a rebate) and whether it is a
liquidation.
"""

from __future__ import annotations

from typing import Any

from appchaind.chain.codes import Code
from appchaind.exchange import CancelAll, CancelOrder, ExchangeApp
from appchaind.exchange.txs import OrderType
from tests.exchange.support import (
    BUY,
    IOC,
    POST_ONLY,
    SELL,
    Driver,
    address,
    conditional,
    genesis,
    limit,
)

BTC = 0
RICH = "1000000"
ALICE, BOB = address("alice"), address("bob")


def _order(order_id: int, owner: bytes, client_id: int, status: str, size: int) -> dict[str, Any]:
    return {
        "market": BTC, "order_id": order_id, "owner": owner, "client_id": client_id,
        "status": status, "size": size,
    }  # fmt: skip


def _events(events: Any, kind: str = "order") -> list[dict[str, Any]]:
    return [e.attributes for e in events if e.kind == kind]


def test_the_order_events_of_placed_orders() -> None:
    """Alice asks 5 at 51000 (id 1, resting 5). Bob buys 2 IOC (id 2, filled), then 5 IOC
    (id 3: 3 filled, the rest cancelled), then a post-only bid of 1 that would take from
    Carol's ask (id 5, after Carol's id 4: rejected, 1), then a stop of 3 (id 6); his bid
    of 5 takes Carol's two asks (1 and 2 lots) and rests 2."""
    app = ExchangeApp(genesis({"alice": RICH, "bob": RICH, "carol": RICH}))
    d = Driver(app)
    result = d.block([
        d.tx("alice", limit(BTC, SELL, 51000, 5, client_id=3)),
        d.tx("bob", limit(BTC, BUY, 51000, 2, IOC, client_id=4)),
        d.tx("bob", limit(BTC, BUY, 51000, 5, IOC, client_id=5)),
        d.tx("carol", limit(BTC, SELL, 52000, 1)),
    ])  # fmt: skip
    assert [_events(r.events) for r in result.tx_results] == [
        [_order(1, ALICE, 3, "resting", 5)],
        [_order(2, BOB, 4, "filled", 0)],
        [_order(3, BOB, 5, "cancelled", 0)],
        [_order(4, address("carol"), 0, "resting", 1)],
    ]
    fills = _events(result.tx_results[2].events, "fill")
    assert fills == [{
        "market": BTC, "maker_order_id": 1, "maker": ALICE, "taker_order_id": 3, "taker": BOB,
        "taker_side": BUY, "price": 51000, "size": 3, "maker_remaining": 0,
        "maker_fee": -(51000 * 3 * 1000 * 100 // 1_000_000),
        "taker_fee": 51000 * 3 * 1000 * 500 // 1_000_000, "liquidation": False,
    }]  # fmt: skip
    assert app.account(ALICE).position_size(BTC) == -5  # type: ignore[union-attr]
    assert app.account(BOB).position_size(BTC) == 5  # type: ignore[union-attr]
    result = d.block([
        d.tx("bob", limit(BTC, BUY, 52000, 1, POST_ONLY, client_id=6)),
        d.tx("bob", conditional(BTC, SELL, OrderType.STOP_MARKET, 40000, 3, client_id=7)),
        d.tx("carol", limit(BTC, SELL, 52000, 2, client_id=1)),
        d.tx("bob", limit(BTC, BUY, 52000, 5, client_id=8)),
    ])  # fmt: skip
    assert result.tx_results[0].code == Code.POST_ONLY_WOULD_TAKE
    assert [_events(r.events) for r in result.tx_results] == [
        [_order(5, BOB, 6, "rejected", 1)],
        [_order(6, BOB, 7, "conditional", 3)],
        [_order(7, address("carol"), 1, "resting", 2)],
        [_order(8, BOB, 8, "resting", 2)],  # 1 + 2 lots filled, 2 rest
    ]


def test_the_order_events_of_orders_leaving_the_book() -> None:
    """Alice's bid (by client id) and her stop (by cancel-all) are cancelled with the lots
    they had; Bob's bid expires at the end of its good_til_block; Bob's ask is removed by his own
    crossing bid (self-trade prevention), which rests."""
    app = ExchangeApp(genesis({"alice": RICH, "bob": RICH}))
    d = Driver(app)
    placed = d.block([
        d.tx("alice", limit(BTC, BUY, 48000, 2, client_id=1)),
        d.tx("alice", conditional(BTC, SELL, OrderType.STOP_MARKET, 40000, 3, client_id=2)),
        d.tx("bob", limit(BTC, BUY, 49000, 4, client_id=3, good_til_block=2)),
        d.tx("bob", limit(BTC, SELL, 51000, 5, client_id=4)),
    ])  # fmt: skip
    assert [_events(r.events)[0]["order_id"] for r in placed.tx_results] == [1, 2, 3, 4]
    result = d.block([
        d.tx("alice", CancelOrder(BTC, 0, 1, True)),
        d.tx("alice", CancelAll(BTC, False)),
        d.tx("bob", limit(BTC, BUY, 51000, 1, client_id=5)),
    ])  # fmt: skip
    assert [_events(r.events) for r in result.tx_results] == [
        [_order(1, ALICE, -1, "cancelled", 2)],
        [_order(2, ALICE, -1, "cancelled", 3)],
        [_order(4, BOB, -1, "self_trade", 5), _order(5, BOB, 5, "resting", 1)],
    ]
    # good through its good_til_block: it leaves the book at the end of block 2
    assert result.height == 2
    assert _events(result.events) == [_order(3, BOB, -1, "expired", 4)]


def test_the_order_events_of_triggered_orders() -> None:
    """The oracle falls to 49500: Bob's stop-limit (ask 3 at 52000) fires and rests with
    its client id; Carol's stop-market (sell 2) fires and takes Alice's bid of 1, the rest
    cancelled; Dan's stop-market buy of 1000 fires and is refused for margin."""
    app = ExchangeApp(genesis({"alice": RICH, "bob": RICH, "carol": RICH, "dan": "1"}))
    d = Driver(app)
    d.block([
        d.tx("alice", limit(BTC, BUY, 49500, 1, client_id=1)),
        d.tx("bob", conditional(BTC, SELL, OrderType.STOP_LIMIT, 49500, 3, 52000, client_id=8)),
        d.tx("carol", conditional(BTC, SELL, OrderType.STOP_MARKET, 49500, 2, client_id=9)),
        d.tx("dan", conditional(BTC, BUY, OrderType.TAKE_PROFIT_MARKET, 49500, 1000, client_id=6)),
    ])  # fmt: skip
    result = d.block([], prices=[49500, 3000])
    carol, dan = address("carol"), address("dan")
    events = _events(result.events)
    assert events[:5] == [
        _order(2, BOB, 8, "triggered", 3),
        _order(2, BOB, 8, "resting", 3),
        _order(3, carol, 9, "triggered", 2),
        _order(3, carol, 9, "cancelled", 0),
        _order(4, dan, 6, "triggered", 1000),
    ]
    refused = events[5]
    assert refused.pop("code") == Code.INSUFFICIENT_MARGIN and refused.pop("reason")
    assert refused == _order(4, dan, 6, "rejected", 1000)
    assert len(events) == 6
    (fill,) = _events(result.events, "fill")
    assert (fill["maker_order_id"], fill["taker_order_id"], fill["size"]) == (1, 3, 1)
    assert fill["liquidation"] is False
