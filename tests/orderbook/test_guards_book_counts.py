"""What the book reports of itself stays right as orders leave it (orderbook/book.py):
``statistics()`` counts the price levels left after levels empty by fills and cancels
(``_BookSide.drop_level``), and an order placed without flags rests with flags 0."""

from __future__ import annotations

from orderbook import Outcome
from tests.orderbook.test_book import ALICE, BOB, BUY, CAROL, IOC, SELL, book_with


def test_statistics_count_the_levels_left_after_fills_and_cancels() -> None:
    book = book_with(
        (1, ALICE, SELL, 100, 2), (2, BOB, SELL, 101, 3), (3, ALICE, SELL, 102, 1),
        (4, BOB, BUY, 90, 4), (5, ALICE, BUY, 89, 1),
    )  # fmt: skip
    assert (book.statistics().bid_levels, book.statistics().ask_levels) == (2, 3)
    assert book.place(10, CAROL, BUY, 101, 5, IOC) == Outcome.FILLED  # takes 100 and 101
    book.cancel(5)
    stats = book.statistics()
    assert (stats.resting_orders, stats.bid_levels, stats.ask_levels) == (2, 1, 1)
    book.cancel(3)
    book.cancel(4)
    stats = book.statistics()
    assert (stats.resting_orders, stats.bid_levels, stats.ask_levels) == (0, 0, 0)


def test_an_order_placed_without_flags_rests_with_none() -> None:
    book = book_with()
    assert book.place(1, ALICE, SELL, 100, 5) == Outcome.RESTING
    assert book.order(1) == (1, ALICE, SELL, 100, 0, 0, 0, 0, 5)
