"""The order index (orderbook/book.py, ``_OrderIndex``) finds every resting order by its id
whatever the window of consecutive ids went through: thinned out by cancels until none of
its orders is left in it (they all went to the spilled dict), then started again."""

from __future__ import annotations

from orderbook import OrderBook, Outcome
from tests.orderbook.test_book import ALICE, BOB, BUY, GTC, SELL, resting


def test_cancelling_the_newest_orders_first_thins_the_window_until_it_is_empty() -> None:
    """1,100 consecutive ids fill a window longer than its 1,024-slot minimum; cancelled
    newest first, it is thinned when 17 orders are left (17 * 64 < 1,100): the older half,
    holding all 17, goes to the spilled dict and the search for the window's next order
    runs to its end."""
    book = OrderBook()
    for order_id in range(1, 1101):
        assert book.place(order_id, ALICE, SELL, 100 + order_id % 3, 1, GTC, 0, order_id) == (
            Outcome.RESTING
        )
    for order_id in range(1100, 17, -1):
        assert book.cancel(order_id) == 1
    assert len(book) == 17 and all(order_id in book for order_id in range(1, 18))
    assert book.place(2000, ALICE, SELL, 100, 1, GTC, 0, 2000) == Outcome.RESTING
    assert [order_id for order_id, _ in resting(book)] == [
        *range(3, 18, 3),
        2000,
        *range(1, 18, 3),
        *range(2, 18, 3),
    ]
    assert book.place(3000, BOB, BUY, 102, 18) == Outcome.FILLED
    assert len(book) == 0 and not any(order_id in book for order_id in (*range(1, 18), 2000))
