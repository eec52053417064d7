"""The order lifecycle as a trader sees it, rule by rule, as fixed scenarios with exact
sizes: reduce-only orders down to a one-lot position, the reduce-only upkeep after a
position changes (resized, cancelled, left alone), the open-order cap (what counts, what is
refused, a replacement at the cap), conditional orders (trigger bounds, what a triggered
order becomes: FOK kept, a fresh time priority, funding settled first), and replacements
(what is an amend in place, what is refused).

Found unguarded by ``make mutate`` (docs/mutation-report.md); each test names the rule.
Markets of tests/exchange/support.py: BTC-PERP (0) at 50000 ticks, ETH-PERP (1) at 3000,
price band 10%, one tick-lot is 1000 micro-units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appchaind.abci import FinalizeResult
from appchaind.chain.codes import Code
from appchaind.exchange import ExchangeApp, ReplaceOrder
from appchaind.exchange.state import RECORD_SIZE
from appchaind.exchange.txs import OrderType
from appchaind.store import Store
from orderbook import MAX_PRICE
from tests.exchange.support import (
    BUY,
    FOK,
    GTC,
    IOC,
    SELL,
    Driver,
    address,
    conditional,
    genesis,
    limit,
)

BTC, ETH = 0, 1
ETH_PRICE = 3000
RICH = "1000000"


def _position(app: ExchangeApp, name: str, market_id: int = BTC) -> int:
    account = app.account(address(name))
    return 0 if account is None else account.position_size(market_id)


def _orders(events: Any) -> list[tuple[int, bytes, str, int]]:
    """(order id, owner, status, size) of each ``order`` event."""
    return [
        (a["order_id"], a["owner"], a["status"], a["size"])
        for a in (e.attributes for e in events if e.kind == "order")
    ]


def _order_id(result: FinalizeResult, index: int) -> int:
    """The id of the order tx ``index`` placed (its first ``order`` event)."""
    return _orders(result.tx_results[index].events)[0][0]


def _fills(result: FinalizeResult, index: int) -> list[tuple[bytes, bytes, int, int]]:
    """(maker, taker, price, size) of each fill of tx ``index``."""
    return [
        (a["maker"], a["taker"], a["price"], a["size"])
        for a in (e.attributes for e in result.tx_results[index].events if e.kind == "fill")
    ]


def _long_and_short(names: dict[str, int], **params: Any) -> tuple[ExchangeApp, Driver]:
    """An app where each of ``names`` holds the given BTC position (positive long), bought
    from or sold to ``maker``, who is left with nothing resting."""
    app = ExchangeApp(genesis({"maker": RICH, **dict.fromkeys(names, RICH)}, params=params))
    d = Driver(app)
    txs = []
    for name, size in names.items():
        side = SELL if size > 0 else BUY
        txs += [
            d.tx("maker", limit(BTC, side, 50000, abs(size), GTC)),
            d.tx(name, limit(BTC, 1 - side, 50000, abs(size), IOC)),
        ]
    d.block(txs)
    for name, size in names.items():
        assert _position(app, name) == size
    return app, d


# ---------------------------------------------------------------------------- reduce-only


def test_a_one_lot_position_can_be_reduced_by_a_reduce_only_order() -> None:
    """Holding +1 (or -1), a reduce-only order of 3 on the other side fills 1 lot."""
    app, d = _long_and_short({"alice": 1, "bob": -1})
    d.block([
        d.tx("maker", limit(BTC, BUY, 49000, 5, client_id=11)),
        d.tx("maker", limit(BTC, SELL, 51000, 5, client_id=12)),
    ])  # fmt: skip
    result = d.block([
        d.tx("alice", limit(BTC, SELL, 49000, 3, IOC, reduce_only=True)),
        d.tx("bob", limit(BTC, BUY, 51000, 3, IOC, reduce_only=True)),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [Code.OK, Code.OK]
    assert [f[3] for f in _fills(result, 0)] == [1]
    assert [f[3] for f in _fills(result, 1)] == [1]
    assert (_position(app, "alice"), _position(app, "bob")) == (0, 0)


def test_reduce_only_upkeep_shrinks_orders_to_a_reduced_long_and_leaves_the_rest() -> None:
    """Alice holds +5 with an ordinary ask of 2 (placed first), a reduce-only ask of 5 and
    a reduce-only ask of 1. She sells 4 and holds +1: at the end of the block the
    reduce-only ask of 5 is resized to 1 (reported), the one of 1 is left as it is (no
    event), and the ordinary ask is not touched."""
    app, d = _long_and_short({"alice": 5})
    placed = d.block([
        d.tx("alice", limit(BTC, SELL, 52000, 2, client_id=1)),
        d.tx("alice", limit(BTC, SELL, 53000, 5, reduce_only=True, client_id=2)),
        d.tx("alice", limit(BTC, SELL, 54000, 1, reduce_only=True, client_id=3)),
        d.tx("maker", limit(BTC, BUY, 49000, 10)),
    ])  # fmt: skip
    ordinary, big, small = (_order_id(placed, i) for i in range(3))
    result = d.block([d.tx("alice", limit(BTC, SELL, 49000, 4, IOC))])
    assert _position(app, "alice") == 1
    assert _orders(result.events) == [(big, address("alice"), "resized", 1)]
    book = app.books[BTC]
    assert book.order_ids_of(address("alice")) == [ordinary, big, small]
    sizes = {i: book.order(i)[RECORD_SIZE] for i in (ordinary, big, small)}  # type: ignore[index]
    assert sizes == {ordinary: 2, big: 1, small: 1}


def test_reduce_only_upkeep_shrinks_a_bid_to_a_reduced_short_and_cancels_it_on_a_flip() -> None:
    """Bob holds -5 with a reduce-only bid of 5. He buys 3 (holding -2): the bid is resized
    to 2. He buys 4 more (holding +2): the reduce-only bid, now on his position's side, is
    cancelled."""
    app, d = _long_and_short({"bob": -5})
    placed = d.block([
        d.tx("bob", limit(BTC, BUY, 46000, 5, reduce_only=True)),
        d.tx("maker", limit(BTC, SELL, 51000, 10)),
    ])  # fmt: skip
    bid = _order_id(placed, 0)
    result = d.block([d.tx("bob", limit(BTC, BUY, 51000, 3, IOC))])
    assert _position(app, "bob") == -2
    assert _orders(result.events) == [(bid, address("bob"), "resized", 2)]
    result = d.block([d.tx("bob", limit(BTC, BUY, 51000, 4, IOC))])
    assert _position(app, "bob") == 2
    assert _orders(result.events) == [(bid, address("bob"), "cancelled", 0)]
    assert app.books[BTC].order(bid) is None


def test_a_reduce_only_stop_is_cancelled_when_its_position_closes() -> None:
    """A reduce-only stop (conditional) of a position that is closed is cancelled at the
    end of that block: it must not fire later against a new position."""
    app, d = _long_and_short({"alice": 5})
    stop = conditional(BTC, SELL, OrderType.STOP_MARKET, 45000, 5, reduce_only=True)
    placed = d.block([d.tx("alice", stop), d.tx("maker", limit(BTC, BUY, 49000, 10))])
    stop_id = _order_id(placed, 0)
    assert app.books[BTC].triggers.get(stop_id) is not None
    result = d.block([d.tx("alice", limit(BTC, SELL, 49000, 5, IOC))])
    assert _position(app, "alice") == 0
    assert _orders(result.events) == [(stop_id, address("alice"), "cancelled", 0)]
    assert app.books[BTC].triggers.get(stop_id) is None


# ---------------------------------------------------------------------------- open-order cap


def test_the_open_order_cap_counts_resting_and_conditional_orders_not_ioc_ones() -> None:
    """With a cap of 2: a resting ask and a stop fill it; another resting order or another
    stop is refused, an IOC order still trades (it never rests), and either open order can
    be replaced (the one it replaces does not count)."""
    app = ExchangeApp(
        genesis({"alice": RICH, "maker": RICH}, params={"max_open_orders_per_account": 2})
    )
    d = Driver(app)
    d.block([d.tx("maker", limit(BTC, BUY, 49000, 10))])
    first = d.block([
        d.tx("alice", limit(BTC, SELL, 51000, 1, client_id=1)),
        d.tx("alice", conditional(BTC, BUY, OrderType.STOP_MARKET, 55000, 1, client_id=2)),
    ])  # fmt: skip
    assert [r.code for r in first.tx_results] == [Code.OK, Code.OK]
    ask, stop = _order_id(first, 0), _order_id(first, 1)
    result = d.block([
        d.tx("alice", limit(BTC, SELL, 52000, 1, client_id=3)),
        d.tx("alice", conditional(BTC, BUY, OrderType.STOP_MARKET, 56000, 1, client_id=4)),
        d.tx("alice", limit(BTC, SELL, 49000, 1, IOC, client_id=5)),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [
        Code.TOO_MANY_OPEN_ORDERS, Code.TOO_MANY_OPEN_ORDERS, Code.OK,
    ]  # fmt: skip
    assert _position(app, "alice") == -1
    result = d.block([
        d.tx("alice", ReplaceOrder(ask, 0, False, limit(BTC, SELL, 52000, 1, client_id=6))),
        d.tx("alice", ReplaceOrder(stop, 0, False, conditional(
            BTC, BUY, OrderType.STOP_MARKET, 56000, 1, client_id=7))),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [Code.OK, Code.OK]
    assert app.books[BTC].open_order_count(address("alice")) == 2
    assert app.books[BTC].order(ask) is None and app.books[BTC].triggers.get(stop) is None


# ---------------------------------------------------------------------------- conditional orders


def test_a_trigger_price_is_from_one_tick_to_below_max_price() -> None:
    app = ExchangeApp(genesis({"alice": RICH}))
    d = Driver(app)
    result = d.block([
        d.tx("alice", conditional(BTC, SELL, OrderType.STOP_MARKET, 1, 1, client_id=1)),
        d.tx("alice", conditional(BTC, BUY, OrderType.STOP_MARKET, MAX_PRICE - 1, 1, client_id=2)),
        d.tx("alice", conditional(BTC, BUY, OrderType.STOP_MARKET, MAX_PRICE, 1, client_id=3)),
        d.tx("alice", conditional(BTC, BUY, OrderType.STOP_MARKET, 0, 1, client_id=4)),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [
        Code.OK, Code.OK, Code.INVALID_ORDER, Code.INVALID_ORDER,
    ]  # fmt: skip


def test_a_triggered_fill_or_kill_stop_stays_fill_or_kill() -> None:
    """A stop-market buy of 10, FOK, fires with only 3 lots offered within its protection
    price: nothing fills (an IOC would have taken the 3)."""
    app = ExchangeApp(genesis({"alice": RICH, "maker": RICH}))
    d = Driver(app)
    stop = conditional(BTC, BUY, OrderType.STOP_MARKET, 51000, 10, tif=FOK)
    d.block([d.tx("alice", stop), d.tx("maker", limit(BTC, SELL, 52000, 3))])
    result = d.block([], prices=[51000, ETH_PRICE])
    statuses = [status for _, _, status, _ in _orders(result.events)]
    assert statuses == ["triggered", "rejected", "rejected"]  # the book's, the trigger's
    assert not [e for e in result.events if e.kind == "fill"]
    assert _position(app, "alice") == 0 and app.books[BTC].volume(SELL) == 3


def test_a_triggered_limit_order_rests_behind_orders_placed_before_it_fired(
    tmp_path: Path,
) -> None:
    """Carol's stop-limit (ask 2 at 50500) is placed before Dave's ask at 50500, but its
    time priority is when it fires: it rests behind Dave and ahead of Erin, who asks after
    it fired. Carol then amends her order to 1 lot (in place: it keeps its priority). A
    buyer of 5 at 50500 fills Dave, Carol, Erin in that order, also on validators that
    restarted from their store after each block (the book is rebuilt from the stored time
    priorities, not from the order ids)."""
    g = genesis({"carol": RICH, "dave": RICH, "erin": RICH, "finn": RICH})
    for restart in (False, True):
        store = Store(tmp_path / f"data-{restart}")
        app = ExchangeApp(g, store)
        d = Driver(app)
        stop = conditional(BTC, SELL, OrderType.STOP_LIMIT, 49000, 2, 50500)
        steps = [
            ([d.tx("carol", stop)], None),
            ([d.tx("dave", limit(BTC, SELL, 50500, 2))], None),
            ([], [49000, ETH_PRICE]),
            ([d.tx("erin", limit(BTC, SELL, 50500, 2))], [49000, ETH_PRICE]),
            (
                [d.tx("carol", ReplaceOrder(0, 0, True, limit(BTC, SELL, 50500, 1)))],
                [49000, ETH_PRICE],
            ),
        ]
        for i, (txs, prices) in enumerate(steps):
            result = d.block(txs, prices)
            assert [r.code for r in result.tx_results] == [Code.OK] * len(txs)
            if i == 2:
                assert [s for _, _, s, _ in _orders(result.events)] == ["triggered", "resting"]
            app.commit()
            if restart:
                store.close()
                store = Store(tmp_path / f"data-{restart}")
                app = d.app = ExchangeApp(g, store)
        result = d.block([d.tx("finn", limit(BTC, BUY, 50500, 5, IOC))], [49000, ETH_PRICE])
        makers = [address(n) for n in ("dave", "carol", "erin")]
        assert [(f[0], f[3]) for f in _fills(result, 0)] == list(
            zip(makers, (2, 1, 2), strict=True)
        ), restart
        store.close()


def test_funding_is_settled_before_a_triggered_order_runs() -> None:
    """Alice holds +10 through a funding tick that charges longs; before her stop (fired
    in a later block by a price move) is submitted, the funding she owes is settled and
    reported, as for any tx of hers."""
    app, d = _long_and_short({"alice": 10})
    stop = conditional(BTC, BUY, OrderType.STOP_MARKET, 50500, 1)
    d.block([
        d.tx("alice", stop),
        # impact bid above the oracle: longs pay funding
        d.tx("maker", limit(BTC, BUY, 50400, 30)),
        d.tx("maker", limit(BTC, SELL, 50600, 30, client_id=1)),
    ])  # fmt: skip
    while d.height <= 10:  # the funding tick is at height 10
        d.block([])
    result = d.block([], prices=[50500, ETH_PRICE])
    events = [e for e in result.events if e.kind != "oracle"]
    assert [e.kind for e in events[:2]] == ["order", "funding_payment"]
    payment = events[1].attributes
    # the rate is clamped to 1000 ppm: 1000 ppm x 50000 ticks x 1000 micro-units x 10 lots
    assert payment == {"account": address("alice"), "amount": 500_000}  # paid
    assert _position(app, "alice") == 11


# ---------------------------------------------------------------------------- replacement


def test_a_replacement_of_size_zero_is_refused_and_the_order_stays() -> None:
    app = ExchangeApp(genesis({"alice": RICH}))
    d = Driver(app)
    ask = _order_id(d.block([d.tx("alice", limit(BTC, SELL, 51000, 4))]), 0)
    result = d.block([d.tx("alice", ReplaceOrder(ask, 0, False, limit(BTC, SELL, 51000, 0)))])
    assert result.tx_results[0].code == Code.INVALID_ORDER
    assert app.books[BTC].order(ask)[RECORD_SIZE] == 4  # type: ignore[index]


def test_a_replacement_that_drops_reduce_only_is_a_new_order_not_an_amend() -> None:
    """Alice holds +5 with a reduce-only ask of 5; she replaces it by the same ask of 3
    without reduce-only: that is a new order (new id, at the back of its level), and it is
    not reduce-only (it stays when her position closes)."""
    app, d = _long_and_short({"alice": 5})
    placed = d.block([
        d.tx("alice", limit(BTC, SELL, 53000, 5, reduce_only=True)),
        d.tx("maker", limit(BTC, BUY, 49000, 10)),
    ])  # fmt: skip
    old = _order_id(placed, 0)
    result = d.block([d.tx("alice", ReplaceOrder(old, 0, False, limit(BTC, SELL, 53000, 3)))])
    assert [s for _, _, s, _ in _orders(result.tx_results[0].events)] == ["cancelled", "resting"]
    (new,) = app.books[BTC].order_ids_of(address("alice"))
    assert new != old
    d.block([d.tx("alice", limit(BTC, SELL, 49000, 5, IOC))])
    assert _position(app, "alice") == 0
    assert app.books[BTC].order_ids_of(address("alice")) == [new]
