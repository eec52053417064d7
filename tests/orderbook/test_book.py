"""Unit tests, one rule each: pre state (resting orders), the operation, post state."""

from __future__ import annotations

import gc
from fractions import Fraction

import pytest

from orderbook import (
    STOP_TAKER,
    ConditionalOrder,
    Impact,
    OrderBook,
    OrderBookError,
    OrderFlag,
    Outcome,
    Reason,
    RestingOrder,
    Side,
    TimeInForce,
    TriggerKind,
)

ALICE = b"\x0a" * 20
BOB = b"\x0b" * 20
CAROL = b"\x0c" * 20
BUY, SELL = Side.BUY, Side.SELL
GTC, POST_ONLY, IOC, FOK = (
    TimeInForce.GTC,
    TimeInForce.POST_ONLY,
    TimeInForce.IOC,
    TimeInForce.FOK,
)


def book_with(*orders: tuple[int, bytes, int, int, int]) -> OrderBook:
    """A book holding GTC orders (order_id, owner, side, price ticks, size lots); client id
    = order id."""
    book = OrderBook()
    for order_id, owner, side, price, size in orders:
        assert book.place(order_id, owner, side, price, size, GTC, 0, order_id) == Outcome.RESTING
    return book


def asks_100_101() -> OrderBook:
    return book_with((1, ALICE, SELL, 100, 5), (2, BOB, SELL, 100, 5), (3, ALICE, SELL, 101, 10))


def resting(book: OrderBook) -> list[tuple[int, int]]:
    """(order id, size lots) of every resting order in priority order."""
    return [(r[0], r[8]) for r in book.resting_orders()]


# ---------------------------------------------------------------------------- limit orders


def test_full_fill_takes_best_price_then_oldest_at_maker_price() -> None:
    book = asks_100_101()
    assert book.place(10, CAROL, BUY, 101, 7, GTC, 0, 1) == Outcome.FILLED
    assert book.take_fills() == [
        (1, ALICE, 10, CAROL, 1, 100, 5, 0),
        (2, BOB, 10, CAROL, 1, 100, 2, 3),
    ]
    assert resting(book) == [(2, 3), (3, 10)]


def test_partial_fill_rests_remainder_at_limit() -> None:
    book = asks_100_101()
    assert book.place(10, CAROL, BUY, 100, 12, GTC, 0, 1) == Outcome.RESTING
    assert [f[6] for f in book.take_fills()] == [5, 5]
    assert book.best_bid() == 100 and book.best_ask() == 101
    assert book.order(10) == (10, CAROL, 1, 100, 0, 0, 1, 0, 2)


def test_sell_taker_walks_bids_downwards() -> None:
    book = book_with((1, ALICE, BUY, 99, 1), (2, BOB, BUY, 100, 1), (3, ALICE, BUY, 98, 1))
    assert book.place(10, CAROL, SELL, 99, 5, IOC) == Outcome.CANCELLED_IOC
    assert [(f[0], f[5]) for f in book.take_fills()] == [(2, 100), (1, 99)]
    assert resting(book) == [(3, 1)]


def test_non_crossing_limit_rests_without_fills() -> None:
    book = asks_100_101()
    assert book.place(10, CAROL, BUY, 99, 4, GTC, 0, 1) == Outcome.RESTING
    assert book.take_fills() == []
    assert book.depth(BUY, 5) == [(99, 4)]


def test_invalid_orders_are_rejected_and_change_nothing() -> None:
    book = asks_100_101()
    before = list(book.resting_orders())
    assert book.place(10, CAROL, BUY, 100, 0) == Outcome.REJECTED_INVALID
    assert book.place(10, CAROL, BUY, 0, 1) == Outcome.REJECTED_INVALID
    assert book.place(1, CAROL, BUY, 100, 1) == Outcome.REJECTED_DUPLICATE_ORDER_ID
    assert list(book.resting_orders()) == before and book.take_fills() == []


def test_order_ids_match_as_dict_keys_do() -> None:
    """Ids must be ints; a number equal to an open id still finds that order (as the ids'
    dict did before the order index) in both builds, and an unhashable id raises
    TypeError."""
    book = asks_100_101()
    for same_as_1 in (1.0, True, Fraction(1)):
        assert same_as_1 in book and book.resting(same_as_1) is book.resting(1)
        assert book.place(same_as_1, CAROL, BUY, 90, 1) == Outcome.REJECTED_DUPLICATE_ORDER_ID
    for client_id, other in enumerate((2**70, -1)):
        assert other not in book and book.resting(other) is None and book.cancel(other) == 0
        assert book.place(other, CAROL, BUY, 90, 1, GTC, 0, client_id) == Outcome.RESTING
    assert book.resting(1.5) is None and book.resting(2.5) is None
    with pytest.raises(TypeError):
        book.place([1], CAROL, BUY, 90, 1)
    assert book.cancel(2.0) == 5 and 2 not in book and book.cancel(True) == 5
    assert [r[0] for r in book.resting_orders()] == [2**70, -1, 3]


def test_order_ids_far_apart_and_out_of_order() -> None:
    """The order index keeps a window of consecutive ids and a dict for the others: ids
    that jump far ahead, come back below the window, or are huge or negative all work,
    and a window thinned out by cancels hands its orders over."""
    book = OrderBook()
    ids = [5, 6, 7, 10**6, 8, 3, 2**70, -(2**70), 10**6 + 1, 2000, 9000, 1]
    ids += list(range(20_000, 30_000))
    for n, order_id in enumerate(ids):
        assert book.place(order_id, ALICE, SELL, 100 + n % 7, 1, GTC, 0, n) == Outcome.RESTING
    for order_id in range(20_000, 29_990):  # thins the window out
        assert book.cancel(order_id) == 1
    left = ids[:12] + list(range(29_990, 30_000))
    assert len(book) == len(left) and all(order_id in book for order_id in left)
    assert book.place(9000, BOB, SELL, 100, 1) == Outcome.REJECTED_DUPLICATE_ORDER_ID
    assert book.place(30_000, BOB, BUY, 106, len(left)) == Outcome.FILLED
    assert sorted(f[0] for f in book.take_fills()) == sorted(left) and len(book) == 0
    assert not any(order_id in book for order_id in left)


# ---------------------------------------------------------------------------- time in force


def test_ioc_cancels_remainder() -> None:
    book = asks_100_101()
    assert book.place(10, CAROL, BUY, 100, 12, IOC) == Outcome.CANCELLED_IOC
    assert sum(f[6] for f in book.take_fills()) == 10
    assert 10 not in book and book.best_bid() is None


def test_ioc_that_does_not_cross_is_cancelled() -> None:
    book = asks_100_101()
    assert book.place(10, CAROL, BUY, 99, 1, IOC) == Outcome.CANCELLED_IOC
    assert book.take_fills() == [] and len(book) == 3


def test_market_order_is_ioc_bounded_by_protection_price() -> None:
    book = asks_100_101()
    assert book.place(10, CAROL, BUY, 100, 20, IOC) == Outcome.CANCELLED_IOC
    assert {f[5] for f in book.take_fills()} == {100}
    assert resting(book) == [(3, 10)]


def test_fok_fills_completely() -> None:
    book = asks_100_101()
    assert book.place(10, CAROL, BUY, 101, 20, FOK) == Outcome.FILLED
    assert sum(f[6] for f in book.take_fills()) == 20 and len(book) == 0


def test_fok_kill_changes_nothing() -> None:
    book = asks_100_101()
    before = list(book.resting_orders())
    assert book.place(10, CAROL, BUY, 101, 21, FOK) == Outcome.REJECTED_FOK
    assert book.place(11, CAROL, BUY, 100, 11, FOK) == Outcome.REJECTED_FOK
    assert list(book.resting_orders()) == before
    assert book.take_fills() == [] and book.take_removals() == []


def test_fok_does_not_count_own_orders_as_liquidity() -> None:
    book = asks_100_101()  # ALICE has 15 of the 20 lots
    assert book.place(10, ALICE, BUY, 101, 6, FOK) == Outcome.REJECTED_FOK
    assert book.take_removals() == [] and len(book) == 3
    assert book.place(11, ALICE, BUY, 101, 5, FOK) == Outcome.FILLED
    assert book.take_fills() == [(2, BOB, 11, ALICE, 1, 100, 5, 0)]
    assert book.take_removals() == [(1, ALICE, Reason.SELF_TRADE, 5)]


def test_post_only_rests_when_it_does_not_cross() -> None:
    book = asks_100_101()
    assert book.place(10, CAROL, BUY, 99, 1, POST_ONLY, 0, 1) == Outcome.RESTING
    assert book.order(10) is not None


def test_post_only_that_would_cross_is_rejected_whole() -> None:
    book = asks_100_101()
    before = list(book.resting_orders())
    assert book.place(10, CAROL, BUY, 100, 1, POST_ONLY) == Outcome.REJECTED_POST_ONLY
    assert book.place(11, ALICE, BUY, 100, 1, POST_ONLY) == Outcome.REJECTED_POST_ONLY
    assert list(book.resting_orders()) == before and book.take_fills() == []


# ---------------------------------------------------------------------------- self-trade


def test_self_trade_expires_resting_maker_and_continues() -> None:
    book = asks_100_101()
    assert book.place(10, ALICE, BUY, 101, 8, GTC, 0, 50) == Outcome.RESTING
    assert book.take_removals() == [
        (1, ALICE, Reason.SELF_TRADE, 5),
        (3, ALICE, Reason.SELF_TRADE, 10),
    ]
    assert book.take_fills() == [(2, BOB, 10, ALICE, 1, 100, 5, 0)]
    assert resting(book) == [(10, 3)] and book.best_ask() is None


def test_self_trade_removes_owner_index_entries() -> None:
    book = book_with((1, ALICE, SELL, 100, 5))
    assert book.place(2, ALICE, BUY, 100, 5, GTC, 0, 9) == Outcome.RESTING
    assert book.order_ids_of(ALICE) == [2]
    assert book.order_id_for_client(ALICE, 1) is None
    assert book.order_id_for_client(ALICE, 9) == 2


# ---------------------------------------------------------------------------- maker check


def test_check_veto_removes_maker_and_matching_continues() -> None:
    vetoed = {1}

    def check(maker: RestingOrder, taker_id: int, taker_owner: bytes, fill: int) -> int:
        return 0 if maker.order_id in vetoed else fill

    book = asks_100_101()
    book.maker_check = check
    assert book.place(10, CAROL, BUY, 100, 5) == Outcome.FILLED
    assert book.take_removals() == [(1, ALICE, Reason.VETOED, 5)]
    assert book.take_fills() == [(2, BOB, 10, CAROL, 1, 100, 5, 0)]


def test_check_partial_allowance_fills_part_and_removes_rest() -> None:
    def check(maker: RestingOrder, taker_id: int, taker_owner: bytes, fill: int) -> int:
        return 2 if maker.flags & OrderFlag.REDUCE_ONLY else fill

    book = OrderBook(maker_check=check)
    book.place(1, ALICE, SELL, 100, 5, GTC, OrderFlag.REDUCE_ONLY, 1)
    book.place(2, BOB, SELL, 100, 5, GTC, 0, 2)
    assert book.place(10, CAROL, BUY, 100, 4) == Outcome.FILLED
    assert book.take_fills() == [
        (1, ALICE, 10, CAROL, 1, 100, 2, 0),
        (2, BOB, 10, CAROL, 1, 100, 2, 3),
    ]
    assert book.take_removals() == [(1, ALICE, Reason.VETOED, 3)]


def test_check_can_stop_the_taker() -> None:
    def check(maker: RestingOrder, taker_id: int, taker_owner: bytes, fill: int) -> int:
        return STOP_TAKER if maker.order_id == 2 else fill

    book = asks_100_101()
    book.maker_check = check
    assert book.place(10, CAROL, BUY, 101, 20) == Outcome.CANCELLED_BY_CHECK
    assert [f[0] for f in book.take_fills()] == [1]
    assert resting(book) == [(2, 5), (3, 10)] and 10 not in book


def test_fok_with_check_calls_it_once_per_maker() -> None:
    calls: list[int] = []

    def check(maker: RestingOrder, taker_id: int, taker_owner: bytes, fill: int) -> int:
        calls.append(maker.order_id)
        return fill

    book = asks_100_101()
    book.maker_check = check
    assert book.place(10, CAROL, BUY, 101, 12, FOK) == Outcome.FILLED
    assert calls == [1, 2, 3]
    assert [f[6] for f in book.take_fills()] == [5, 5, 2]


def test_max_makers_caps_the_walk() -> None:
    book = asks_100_101()
    book.max_makers = 2
    assert book.place(10, CAROL, BUY, 101, 20) == Outcome.CANCELLED_MAKER_LIMIT
    assert [f[0] for f in book.take_fills()] == [1, 2]
    assert resting(book) == [(3, 10)] and book.best_bid() is None
    assert book.place(11, CAROL, BUY, 101, 20, FOK) == Outcome.REJECTED_FOK


# ---------------------------------------------------------------------------- cancels and resizes


def test_cancel_by_id_and_by_client_id() -> None:
    book = asks_100_101()
    assert book.cancel(2) == 5 and book.cancel(2) == 0
    assert book.cancel_by_client_id(ALICE, 3) == 10 and book.cancel_by_client_id(ALICE, 3) == 0
    assert resting(book) == [(1, 5)] and book.depth(SELL, 5) == [(100, 5)]


def test_cancel_of_last_order_at_best_moves_best() -> None:
    book = asks_100_101()
    book.cancel(1)
    book.cancel(2)
    assert book.best_ask() == 101
    assert book.place(10, CAROL, BUY, 100, 1, POST_ONLY, 0, 1) == Outcome.RESTING


def test_duplicate_client_id_is_rejected_for_resting_orders_only() -> None:
    book = asks_100_101()
    assert book.place(10, ALICE, BUY, 90, 1, GTC, 0, 1) == Outcome.REJECTED_DUPLICATE_CLIENT_ID
    assert book.place(10, ALICE, BUY, 90, 1, IOC, 0, 1) == Outcome.CANCELLED_IOC
    assert book.place(11, BOB, BUY, 90, 1, GTC, 0, 1) == Outcome.RESTING


def test_resize_keeps_priority() -> None:
    book = asks_100_101()
    assert book.resize(1, 2) == 3
    assert book.place(10, CAROL, BUY, 100, 3) == Outcome.FILLED
    assert [(f[0], f[6]) for f in book.take_fills()] == [(1, 2), (2, 1)]


def test_resize_to_zero_cancels_and_growing_is_refused() -> None:
    book = asks_100_101()
    assert book.resize(1, 0) == 5 and 1 not in book
    with pytest.raises(OrderBookError):
        book.resize(2, 6)
    assert book.order(2) == (2, BOB, 0, 100, 0, 0, 2, 0, 5)
    assert book.resize(99, 1) == 0


def test_owner_index_for_caps_cancel_all_and_reduce_only() -> None:
    book = asks_100_101()
    book.add_conditional(
        ConditionalOrder(7, ALICE, BUY, TriggerKind.STOP_MARKET, 110, 0, 1, 2, 0, 9, 0)
    )
    assert book.order_ids_of(ALICE) == [1, 3] and book.order_ids_of(CAROL) == []
    assert book.open_order_count(ALICE) == 3
    assert book.cancel_all(ALICE) == [
        (1, ALICE, Reason.CANCELLED, 5),
        (3, ALICE, Reason.CANCELLED, 10),
        (7, ALICE, Reason.CANCELLED, 1),
    ]
    assert book.open_order_count(ALICE) == 0 and resting(book) == [(2, 5)]


@pytest.mark.parametrize("side", [BUY, SELL])
def test_best_price_survives_many_levels_emptied_while_not_the_best(side: Side) -> None:
    """Hundreds of levels, most emptied while not the best (their keys go stale in the
    side's heap, which is then rebuilt), then the best taken out one by one: each time the
    next best is the right one, on both sides."""
    book = OrderBook()
    prices = [1_000_000 + 32 * k + k % 32 for k in range(1, 400)]
    for order_id, price in enumerate(prices, start=1):
        assert book.place(order_id, ALICE, side, price, 1, GTC, 0, order_id) == Outcome.RESTING
    kept = {order_id for order_id in range(1, 400) if order_id % 37 == 0 or order_id == 200}
    for order_id in range(1, 400):
        if order_id not in kept:
            assert book.cancel(order_id) == 1
    expected = sorted((prices[i - 1] for i in kept), reverse=side == BUY)
    assert [p for p, _ in book.depth(side, 100)] == expected
    best = book.best_bid if side == BUY else book.best_ask
    for number, price in enumerate(expected):
        assert best() == price
        order_id = prices.index(price) + 1
        if number % 2:
            assert book.cancel(order_id) == 1
        else:  # taken by a taker of the other side
            assert book.place(1000 + order_id, BOB, 1 - side, price, 1, IOC) == Outcome.FILLED
    assert best() is None and len(book) == 0


def test_many_cancels_compact_the_level_queue() -> None:
    book = OrderBook()
    for order_id in range(1, 1001):
        book.place(order_id, ALICE, SELL, 100, 1, GTC, 0, order_id)
    for order_id in range(1, 1000):
        book.cancel(order_id)
    assert book.depth(SELL, 1) == [(100, 1)]
    assert book.place(2000, BOB, BUY, 100, 1) == Outcome.FILLED
    assert book.take_fills()[0][0] == 1000


def test_client_ids_of_departed_orders_are_free_again_and_the_index_stays_small() -> None:
    book = OrderBook()
    for order_id in range(1, 201):
        book.place(order_id, ALICE, SELL, 100, 1, GTC, 0, order_id)
    assert book.place(500, BOB, BUY, 100, 150, IOC) == Outcome.FILLED  # orders 1..150
    for order_id in range(151, 191):
        assert book.cancel(order_id) == 1
    departed = [order_id for order_id in range(1, 201) if order_id not in book]
    assert departed == list(range(1, 191)) and book.open_order_count(ALICE) == 10
    assert book.order_ids_of(ALICE) == list(range(191, 201))
    assert book.order_id_for_client(ALICE, 5) is None and book.cancel_by_client_id(ALICE, 5) == 0
    assert book.order_id_for_client(ALICE, 195) == 195
    assert book.place(601, ALICE, SELL, 110, 1, GTC, 0, 195) == Outcome.REJECTED_DUPLICATE_CLIENT_ID
    for order_id in range(1000, 1100):  # client ids 1..100 of filled orders, used again
        assert book.place(order_id, ALICE, SELL, 110, 1, GTC, 0, order_id - 999) == Outcome.RESTING
        assert len(book._by_owner[ALICE].clients) <= 9 * book.open_order_count(ALICE) + 33
    assert book.order_id_for_client(ALICE, 5) == 1004 and book.cancel_by_client_id(ALICE, 5) == 1
    assert book.open_order_count(ALICE) == 109 and book.order_ids_of(ALICE)[:2] == [191, 192]
    assert book.place(602, ALICE, SELL, 110, 1, GTC, 0, 5) == Outcome.RESTING


def test_an_order_that_does_not_rest_leaves_its_client_id_free() -> None:
    book = book_with((1, ALICE, SELL, 100, 5), (2, BOB, BUY, 90, 5))
    assert book.place(3, ALICE, BUY, 100, 1, POST_ONLY, 0, 7) == Outcome.REJECTED_POST_ONLY
    assert book.place(4, BOB, BUY, 100, 2, GTC, 0, 8) == Outcome.FILLED
    assert book.order_id_for_client(ALICE, 7) is None and book.order_id_for_client(BOB, 8) is None
    assert 7 not in book.order_ids_of(ALICE) and book.order_ids_of(BOB) == [2]
    assert book.open_order_count(ALICE) == 1 and book.open_order_count(BOB) == 1
    assert book.place(5, ALICE, SELL, 101, 1, GTC, 0, 7) == Outcome.RESTING
    assert book.place(6, BOB, BUY, 91, 1, GTC, 0, 8) == Outcome.RESTING
    assert book.order_id_for_client(ALICE, 7) == 5 and book.order_id_for_client(BOB, 8) == 6
    assert book.place(9, BOB, BUY, 92, 1, GTC, 0, 8) == Outcome.REJECTED_DUPLICATE_CLIENT_ID


def test_ids_must_be_ints() -> None:
    book = OrderBook()
    assert book.place(True, ALICE, SELL, 100, 1) == Outcome.REJECTED_INVALID
    assert book.place(1, ALICE, SELL, 100, 1, GTC, 0, OrderFlag.REDUCE_ONLY) == (
        Outcome.REJECTED_INVALID
    )
    assert len(book) == 0


def test_ids_pass_through_with_their_values() -> None:
    """Compiled, a resting order holds its ids unboxed (a fill record then boxes a fresh
    int, from memory in use, rather than touch the caller's int object, cold by the time
    the order fills), while the taker's id in a fill is the caller's object (no unboxing
    and boxing again per fill). Either way, ids outside the small-int cache keep their
    values."""
    maker_id, maker_client, taker_id = int("1000001"), int("1000002"), int("1000003")
    book = OrderBook()
    book.place(maker_id, ALICE, SELL, 100, 5, GTC, 0, maker_client)
    order = book.resting(int("1000001"))
    assert order is not None and order.order_id == maker_id and order.client_id == maker_client
    assert book.order_id_for_client(ALICE, int("1000002")) == maker_id
    book.place(taker_id, BOB, BUY, 100, 2, IOC)
    (fill,) = book.take_fills()
    assert fill[0] == maker_id and fill[2] is taker_id


def test_the_book_leaves_no_garbage_cycles() -> None:
    """Nothing an order refers to refers back to it (it holds its level's key, not the
    level), so every emptied price level, every order that leaves and, last, the whole book
    are freed by reference counting. (The compiled build relies on this: its orders,
    levels and owners are acyclic, invisible to the collector; the pure build, run by this
    test too, shows any cycle to it.)"""
    gc.collect()
    gc.disable()
    try:
        book = OrderBook()
        order_id = 0
        for round_ in range(20):
            for price in range(100, 110):
                for owner in (ALICE, BOB):
                    order_id += 1
                    book.place(order_id, owner, SELL, price, 2, GTC, 0, order_id, round_ + 5)
            book.cancel(order_id - 3)
            book.resize(order_id - 5, 1)
            order_id += 1
            book.place(order_id, ALICE, BUY, 104, 25, IOC)  # self-trade and fills, drops levels
            book.expire(round_ + 5)
            book.take_fills()
            book.take_removals()
        assert gc.collect() == 0
        assert len(book) == book.statistics().resting_orders
        for price in range(100, 110):  # a book with resting orders on several levels
            order_id += 1
            book.place(order_id, BOB, BUY if price < 105 else SELL, price, 2, GTC, 0, order_id)
        assert gc.collect() == 0 and len(book) == 10
        del book
        assert gc.collect() == 0
    finally:
        gc.enable()


# ---------------------------------------------------------------------------- expiry


def test_good_til_block_expiry() -> None:
    book = OrderBook()
    book.place(1, ALICE, SELL, 100, 1, GTC, 0, 1, 5)
    book.place(2, BOB, SELL, 100, 1, GTC, 0, 2, 6)
    book.place(3, BOB, SELL, 100, 1, GTC, 0, 3, 5)
    book.place(4, BOB, SELL, 100, 1, GTC, 0, 4, 0)
    book.cancel(3)
    assert book.expire(4) == []
    assert book.expire(5) == [(1, ALICE, Reason.EXPIRED, 1)]
    assert book.expire(9) == [(2, BOB, Reason.EXPIRED, 1)]
    assert resting(book) == [(4, 1)]


# ---------------------------------------------------------------------------- conditional orders


def conditional(
    order_id: int, side: int, kind: int, trigger: int, owner: bytes = ALICE
) -> ConditionalOrder:
    return ConditionalOrder(order_id, owner, side, kind, trigger, trigger, 1, IOC, 0, order_id, 0)


def test_rise_fires_buy_stops_and_sell_take_profits_in_trigger_then_id_order() -> None:
    book = OrderBook()
    for order in (
        conditional(1, BUY, TriggerKind.STOP_MARKET, 105),
        conditional(2, SELL, TriggerKind.TAKE_PROFIT_LIMIT, 103),
        conditional(3, BUY, TriggerKind.STOP_LIMIT, 103),
        conditional(4, BUY, TriggerKind.STOP_MARKET, 107),
        conditional(5, SELL, TriggerKind.STOP_MARKET, 95),  # fires on a fall
        conditional(6, BUY, TriggerKind.TAKE_PROFIT_MARKET, 96),  # fires on a fall
    ):
        assert book.add_conditional(order) == Outcome.RESTING
    assert [c.order_id for c in book.trigger(100)] == []
    assert [c.order_id for c in book.trigger(105)] == [2, 3, 1]
    assert [c.order_id for c in book.trigger(94)] == [6, 5]
    assert [c.order_id for c in book.conditional_orders()] == [4]


def test_conditional_cancel_resize_expiry_and_client_ids() -> None:
    book = OrderBook()
    order = ConditionalOrder(1, ALICE, SELL, TriggerKind.STOP_LIMIT, 95, 94, 10, GTC, 1, 77, 8)
    assert book.add_conditional(order) == Outcome.RESTING
    assert book.add_conditional(order) == Outcome.REJECTED_DUPLICATE_ORDER_ID
    assert book.place(2, ALICE, SELL, 120, 1, GTC, 0, 77) == Outcome.REJECTED_DUPLICATE_CLIENT_ID
    assert book.order_id_for_client(ALICE, 77) == 1
    assert book.resize(1, 4) == 6
    fired = book.trigger(95)
    assert [c.size for c in fired] == [4] and 1 not in book
    assert (
        book.add_conditional(
            ConditionalOrder(3, ALICE, SELL, TriggerKind.STOP_LIMIT, 90, 89, 1, GTC, 0, 1, 8)
        )
        == Outcome.RESTING
    )
    assert book.cancel_by_client_id(ALICE, 1) == 1
    book.add_conditional(
        ConditionalOrder(4, BOB, SELL, TriggerKind.STOP_LIMIT, 90, 89, 1, GTC, 0, 1, 8)
    )
    assert book.expire(8) == [(4, BOB, Reason.EXPIRED, 1)]


def test_triggered_order_is_submitted_as_ordinary_order() -> None:
    book = book_with((1, BOB, SELL, 104, 3))
    book.add_conditional(conditional(7, BUY, TriggerKind.STOP_MARKET, 103))
    for order in book.trigger(103):
        protection = 106  # the application's oracle-based protection price
        outcome = book.place(
            order.order_id, order.owner, order.side, protection, order.size, order.time_in_force
        )
        assert outcome == Outcome.FILLED
    assert book.take_fills() == [(1, BOB, 7, ALICE, 1, 104, 1, 2)]


# ---------------------------------------------------------------------------- queries and restore


def test_depth_volume_and_impact() -> None:
    book = asks_100_101()
    book.place(4, CAROL, BUY, 98, 2, GTC, 0, 4)
    book.place(5, CAROL, BUY, 97, 3, GTC, 0, 5)
    assert book.depth(SELL, 1) == [(100, 10)]
    assert book.depth(SELL, 5) == [(100, 10), (101, 10)]
    assert book.depth(BUY, 5) == [(98, 2), (97, 3)]
    assert book.volume(SELL) == 20 and book.volume(BUY) == 5
    assert book.impact(BUY, 12) == Impact(101, 12, 10 * 100 + 2 * 101)
    assert book.impact(SELL, 4) == Impact(97, 4, 2 * 98 + 2 * 97)
    assert book.impact(BUY, 21) is None
    assert book.impact_for_notional(BUY, 1001) == Impact(101, 11, 1101)
    assert book.impact_for_notional(BUY, 1000) == Impact(100, 10, 1000)
    assert book.statistics().ask_levels == 2


def test_restore_rebuilds_priority_and_refuses_bad_records() -> None:
    book = asks_100_101()
    book.place(4, CAROL, BUY, 98, 2, POST_ONLY, 0, 4, 9)
    restored = OrderBook()
    for record in book.resting_orders():
        restored.insert_resting(record)
    assert list(restored.resting_orders()) == list(book.resting_orders())
    assert restored.expire(9) == [(4, CAROL, Reason.EXPIRED, 2)]
    with pytest.raises(OrderBookError):
        restored.insert_resting((9, CAROL, 1, 100, 0, 0, 9, 0, 1))  # crosses the asks
    with pytest.raises(OrderBookError):
        restored.insert_resting((1, CAROL, 1, 90, 0, 0, 9, 0, 1))  # id already open
    with pytest.raises(OrderBookError):
        restored.insert_resting((9, CAROL, 1, 90, IOC, 0, 9, 0, 1))  # IOC never rests


def test_records_hold_plain_ints_whatever_the_caller_passed() -> None:
    book = OrderBook()
    book.place(1, ALICE, Side.SELL, 100, 1, TimeInForce.POST_ONLY, OrderFlag.REDUCE_ONLY, 1)
    book.place(2, BOB, True, 100, 1, TimeInForce.IOC)
    record = book.order(1) or ()
    fills = book.take_fills()
    assert book.order(1) is None and record == ()
    assert all(type(v) in (int, bytes) for v in fills[0])
    book.place(3, ALICE, Side.SELL, 100, 1, TimeInForce.POST_ONLY, OrderFlag.REDUCE_ONLY, 1)
    assert all(type(v) in (int, bytes) for v in book.order(3) or ())


def test_impact_of_nothing_is_refused() -> None:
    book = asks_100_101()
    with pytest.raises(OrderBookError):
        book.impact(BUY, 0)
    with pytest.raises(OrderBookError):
        book.impact_for_notional(BUY, 0)
