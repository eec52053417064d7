"""The reduce-only upkeep at the end of a block (appchaind/exchange/order_upkeep.py): for
every account whose position changed, each reduce-only order, resting *or conditional*,
is cut to the position's size when larger (``resized``), kept as it is when not, and
cancelled (``cancelled``, size 0) when the position is flat or on the order's side.
Ordinary orders are never touched. Each change is an ``order`` event: market, order id,
owner, client id -1, status, the lots left.

BTC-PERP of tests/exchange/support.py: oracle 50000 ticks.
"""

from __future__ import annotations

from typing import Any

from appchaind.exchange import ExchangeApp
from appchaind.exchange.state import RECORD_SIZE
from appchaind.exchange.txs import OrderType
from tests.exchange.support import (
    BUY,
    IOC,
    SELL,
    Driver,
    address,
    conditional,
    genesis,
    limit,
)

BTC = 0
RICH = "1000000"


def _order_events(events: Any) -> list[dict[str, Any]]:
    return [e.attributes for e in events if e.kind == "order"]


def _alice_long_five_with_orders() -> tuple[ExchangeApp, Driver, list[int]]:
    """Alice holds +5 and has, in this order: an ordinary stop sell of 6, a reduce-only
    stop sell of 5, an ordinary bid of 3, a reduce-only take-profit sell of 4 and a
    reduce-only ask of 5; the maker bids 10 at 49000. Returns their ids."""
    app = ExchangeApp(genesis({"alice": RICH, "maker": RICH}))
    d = Driver(app)
    d.block([
        d.tx("maker", limit(BTC, SELL, 50000, 5)),
        d.tx("alice", limit(BTC, BUY, 50000, 5, IOC)),
    ])  # fmt: skip
    take_profit = OrderType.TAKE_PROFIT_LIMIT
    placed = d.block([
        d.tx("alice", conditional(BTC, SELL, OrderType.STOP_MARKET, 41000, 6, client_id=1)),
        d.tx("alice", conditional(
            BTC, SELL, OrderType.STOP_MARKET, 40000, 5, reduce_only=True, client_id=2)),
        d.tx("alice", limit(BTC, BUY, 46000, 3, client_id=3)),
        d.tx("alice", conditional(
            BTC, SELL, take_profit, 60000, 4, 60000, reduce_only=True, client_id=4)),
        d.tx("alice", limit(BTC, SELL, 53000, 5, reduce_only=True, client_id=5)),
        d.tx("maker", limit(BTC, BUY, 49000, 10)),
    ])  # fmt: skip
    ids = [_order_events(r.events)[0]["order_id"] for r in placed.tx_results[:5]]
    return app, d, ids


def _sizes(app: ExchangeApp, ids: list[int]) -> list[int | None]:
    book = app.books[BTC]
    sizes: list[int | None] = []
    for order_id in ids:
        record = book.order(order_id)
        held = book.triggers.get(order_id)
        sizes.append(
            record[RECORD_SIZE] if record is not None else None if held is None else held.size
        )
    return sizes


def test_reduce_only_orders_resting_or_conditional_shrink_to_a_reduced_position() -> None:
    """Alice sells 3 (holding +2): her reduce-only stop (5), take-profit (4) and ask (5)
    are resized to 2, in id order; her ordinary stop and bid stay as they were."""
    app, d, ids = _alice_long_five_with_orders()
    result = d.block([d.tx("alice", limit(BTC, SELL, 49000, 3, IOC, client_id=6))])
    assert app.account(address("alice")).position_size(BTC) == 2  # type: ignore[union-attr]
    alice = address("alice")
    assert _order_events(result.events) == [
        {"market": BTC, "order_id": i, "owner": alice, "client_id": -1, "status": "resized",
         "size": 2}
        for i in (ids[1], ids[3], ids[4])
    ]  # fmt: skip
    assert _sizes(app, ids) == [6, 2, 3, 2, 2]


def test_reduce_only_orders_resting_or_conditional_are_cancelled_when_the_position_flips() -> None:
    """Alice sells 7 (holding -2): her reduce-only sells would now grow her short; all
    three are cancelled, the ordinary stop and bid stay."""
    app, d, ids = _alice_long_five_with_orders()
    result = d.block([d.tx("alice", limit(BTC, SELL, 49000, 7, IOC, client_id=6))])
    assert app.account(address("alice")).position_size(BTC) == -2  # type: ignore[union-attr]
    alice = address("alice")
    assert _order_events(result.events) == [
        {"market": BTC, "order_id": i, "owner": alice, "client_id": -1, "status": "cancelled",
         "size": 0}
        for i in (ids[1], ids[3], ids[4])
    ]  # fmt: skip
    assert _sizes(app, ids) == [6, None, 3, None, None]


def test_reduce_only_orders_within_the_position_are_left_as_they_are() -> None:
    """Alice buys 1 more (holding +6): every reduce-only order is within her position;
    nothing is reported, nothing changes, also in the blocks after."""
    app, d, ids = _alice_long_five_with_orders()
    d.block([d.tx("maker", limit(BTC, SELL, 50000, 1, client_id=1))])
    result = d.block([d.tx("alice", limit(BTC, BUY, 50000, 1, IOC, client_id=6))])
    assert app.account(address("alice")).position_size(BTC) == 6  # type: ignore[union-attr]
    assert _order_events(result.events) == []
    assert _sizes(app, ids) == [6, 5, 3, 4, 5]
    # a later cut still finds them all
    result = d.block([d.tx("alice", limit(BTC, SELL, 49000, 5, IOC, client_id=7))])
    assert [(e["order_id"], e["size"]) for e in _order_events(result.events)] == [
        (ids[1], 1), (ids[3], 1), (ids[4], 1),
    ]  # fmt: skip


def test_reduce_only_bids_resting_or_conditional_follow_a_short_position() -> None:
    """Bob holds -5 with a reduce-only stop buy of 5 and a reduce-only bid of 5. He buys 3
    (holding -2): both are resized to 2. He buys 4 more (holding +2): both are cancelled."""
    app = ExchangeApp(genesis({"bob": RICH, "maker": RICH}))
    d = Driver(app)
    d.block([
        d.tx("maker", limit(BTC, BUY, 50000, 5)),
        d.tx("bob", limit(BTC, SELL, 50000, 5, IOC)),
    ])  # fmt: skip
    placed = d.block([
        d.tx("bob", conditional(
            BTC, BUY, OrderType.STOP_MARKET, 60000, 5, reduce_only=True, client_id=1)),
        d.tx("bob", limit(BTC, BUY, 47000, 5, reduce_only=True, client_id=2)),
        d.tx("maker", limit(BTC, SELL, 51000, 10)),
    ])  # fmt: skip
    ids = [_order_events(r.events)[0]["order_id"] for r in placed.tx_results[:2]]
    result = d.block([d.tx("bob", limit(BTC, BUY, 51000, 3, IOC, client_id=3))])
    assert [(e["order_id"], e["status"], e["size"]) for e in _order_events(result.events)] == [
        (ids[0], "resized", 2), (ids[1], "resized", 2),
    ]  # fmt: skip
    result = d.block([d.tx("bob", limit(BTC, BUY, 51000, 4, IOC, client_id=4))])
    assert app.account(address("bob")).position_size(BTC) == 2  # type: ignore[union-attr]
    assert [(e["order_id"], e["status"], e["size"]) for e in _order_events(result.events)] == [
        (ids[0], "cancelled", 0), (ids[1], "cancelled", 0),
    ]  # fmt: skip
    assert _sizes(app, ids) == [None, None]
