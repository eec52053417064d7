"""Rules of the order book that mutation testing (``make mutate``) found unguarded: what a
restored or conditional order must be, that a resize takes its lots off the level, what
an impact walk over several levels costs, the counts ``statistics()`` reports, and that
the book stays right through the clean-ups that many cancels trigger."""

from __future__ import annotations

import pytest

from orderbook import (
    ConditionalOrder,
    Impact,
    OrderBook,
    OrderBookError,
    Outcome,
    TriggerKind,
)
from orderbook.book import MAX_PRICE
from tests.orderbook.test_book import ALICE, BOB, BUY, GTC, IOC, SELL, book_with, resting


def _record(order_id: int, side: int, price: int, size: int, client_id: int = 0) -> tuple:
    return (order_id, ALICE, side, price, GTC, 0, client_id or order_id, 0, size)


def test_a_restored_order_must_be_a_valid_resting_order_of_an_unused_client_id() -> None:
    book = book_with((1, BOB, SELL, 105, 5), (10, BOB, BUY, 90, 5))
    for bad in (
        _record(2, BUY, 100, 0),  # no size
        _record(3, BUY, 0, 5),  # price 0
        _record(4, SELL, MAX_PRICE, 5),  # the "no price" sentinel
        _record(5, BUY, 100, 5)[:4] + (IOC,) + _record(5, BUY, 100, 5)[5:],  # cannot rest
        _record(6, BUY, 105, 5),  # would cross the ask at 105
        _record(11, SELL, 90, 5),  # would cross the bid at 90
        _record(7, SELL, 104, 5) [:1] + (BOB,) + _record(7, SELL, 104, 5)[2:6] + (1, 0, 5),
    ):  # fmt: skip
        with pytest.raises(OrderBookError):
            book.insert_resting(bad)
    book.insert_resting(_record(8, BUY, 1, 5))  # the lowest price
    book.insert_resting(_record(9, SELL, MAX_PRICE - 1, 5))  # the highest
    assert resting(book) == [(10, 5), (8, 5), (1, 5), (9, 5)]


def test_an_order_is_priced_from_one_tick_to_below_the_no_price_sentinel() -> None:
    book = OrderBook()
    assert book.place(1, ALICE, BUY, 0, 1, GTC, 0, 1) == Outcome.REJECTED_INVALID
    assert book.place(2, ALICE, SELL, MAX_PRICE, 1, GTC, 0, 2) == Outcome.REJECTED_INVALID
    assert book.place(3, ALICE, BUY, 1, 1, GTC, 0, 3) == Outcome.RESTING
    assert book.place(4, ALICE, SELL, MAX_PRICE - 1, 1, GTC, 0, 4) == Outcome.RESTING
    assert resting(book) == [(3, 1), (4, 1)]


def _conditional(order_id: int, trigger: int, size: int, client_id: int = 0) -> ConditionalOrder:
    kind = TriggerKind.STOP_MARKET
    return ConditionalOrder(
        order_id, ALICE, BUY, kind, trigger, 0, size, IOC, 0, client_id or order_id, 0
    )


def test_a_conditional_order_needs_a_size_and_a_trigger_price_inside_the_range() -> None:
    book = OrderBook()
    for bad in (_conditional(1, 110, 0), _conditional(2, 0, 1), _conditional(3, MAX_PRICE, 1)):
        assert book.add_conditional(bad) == Outcome.REJECTED_INVALID
    assert book.add_conditional(_conditional(4, 1, 1)) == Outcome.RESTING
    assert book.add_conditional(_conditional(5, MAX_PRICE - 1, 1)) == Outcome.RESTING
    assert book.statistics().conditional_orders == 2


def test_a_resize_takes_its_lots_off_the_level() -> None:
    book = book_with((1, ALICE, SELL, 100, 10), (2, BOB, SELL, 100, 5))
    assert book.resize(1, 4) == 6
    assert book.depth(SELL, 1) == [(100, 9)] and book.volume(SELL) == 9


def test_an_impact_walks_the_levels_it_needs_and_adds_up_their_cost() -> None:
    book = book_with(
        (1, ALICE, SELL, 100, 2), (2, BOB, SELL, 101, 3), (4, BOB, SELL, 102, 4),
        (3, BOB, BUY, 90, 4),
    )  # fmt: skip
    assert book.impact(BUY, 1) == Impact(100, 1, 100)
    assert book.impact(BUY, 4) == Impact(101, 4, 200 + 202)
    assert book.impact(SELL, 4) == Impact(90, 4, 360)
    assert book.impact(BUY, 10) is None
    assert book.impact_for_notional(BUY, 1) == Impact(100, 1, 100)
    assert book.impact_for_notional(BUY, 450) == Impact(101, 5, 200 + 303)  # 3 lots at 101
    assert book.impact_for_notional(BUY, 800) == Impact(102, 8, 200 + 303 + 306)
    assert book.impact_for_notional(BUY, 2000) is None
    assert book.impact_for_notional(SELL, 181) == Impact(90, 3, 270)
    for impact in (book.impact(BUY, 4), book.impact_for_notional(BUY, 450)):
        assert impact is not None and all(type(value) is int for value in impact)
    assert all(type(price) is int for price, _ in book.depth(SELL, 2))


def test_statistics_count_orders_levels_and_conditional_orders() -> None:
    book = book_with((1, ALICE, SELL, 100, 2), (2, BOB, SELL, 101, 3), (3, BOB, BUY, 90, 4))
    book.add_conditional(_conditional(4, 120, 1))
    stats = book.statistics()
    assert (stats.resting_orders, stats.bid_levels, stats.ask_levels) == (3, 1, 2)
    assert stats.conditional_orders == 1


def test_the_book_stays_right_through_the_clean_ups_of_many_cancels() -> None:
    """Cancelling most of a long queue at one price compacts the queue; cancelling many
    price levels rebuilds the heap of prices; the survivors keep their order and the best
    prices stay right."""
    book = OrderBook()
    for i in range(1, 61):
        assert book.place(i, ALICE, SELL, 100, 1, GTC, 0, i) == Outcome.RESTING
    for i in range(1, 59):
        book.cancel(i)
    assert resting(book) == [(59, 1), (60, 1)] and book.volume(SELL) == 2
    book = OrderBook()
    for i in range(200):
        assert book.place(1000 + i, BOB, BUY, 1 + i, 1, GTC, 0, 1000 + i) == Outcome.RESTING
    for i in range(199):
        book.cancel(1000 + i)  # from the worst price up: the best level stays on top
    assert book.best_bid() == 200 and book.depth(BUY, 5) == [(200, 1)]
    book.cancel(1199)
    assert book.best_bid() is None
    assert book.place(2000, BOB, BUY, 50, 1, GTC, 0, 2000) == Outcome.RESTING
    assert book.place(2001, BOB, BUY, 40, 1, GTC, 0, 2001) == Outcome.RESTING
    assert book.depth(BUY, 5) == [(50, 1), (40, 1)]
    assert book.cancel_by_client_id(BOB, 424242) == 0
