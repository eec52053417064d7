"""Property tests: random order flow gives identical results in OrderBook and the reference.

After every operation: same outcomes, fills, removals, resting orders in priority order,
depth and per-owner indexes; the book is never crossed; and lots are conserved:
accepted size = 2 x filled + removed + cancelled taker remainders + resting.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderbook import (
    MAX_PRICE,
    STOP_TAKER,
    ConditionalOrder,
    OrderBook,
    OrderBookError,
    Outcome,
    Side,
)
from orderbook.book import RestingOrder, _OrderIndex, _Owner, _pop, _push
from tests.orderbook.reference import ReferenceBook

OWNERS = [bytes([n]) * 20 for n in (1, 2, 3)]
owner_index = st.integers(0, len(OWNERS) - 1)
size = st.integers(1, 12)
client_id = st.integers(0, 4)
#: Prices (ticks) far apart, around powers of two and at the ends of the valid range (asks
#: are keyed by price, bids by minus price).
WIDE_PRICES = [1, 2, 31, 32, 33, 63, 64, 65, 96, 97, 100, 1023, 1024, MAX_PRICE - 2, MAX_PRICE - 1]


def placements(price: st.SearchStrategy[int]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(
        st.just("place"),
        owner_index,
        st.integers(0, 1),
        price,
        size,
        st.integers(0, 3),
        st.integers(0, 1),
        client_id,
        st.sampled_from([0, 0, 1, 2, 3]),
    )


def order_flow(price: st.SearchStrategy[int]) -> st.SearchStrategy[tuple[Any, ...]]:
    """Operations with prices from ``price``: mostly orders, so that books fill up and
    cross; the rest spread over the other operations."""
    others = st.one_of(
        st.tuples(st.just("cancel"), st.integers(0, 60)),
        st.tuples(st.just("cancel_client"), owner_index, client_id),
        st.tuples(st.just("resize"), st.integers(0, 60), st.integers(0, 12)),
        st.tuples(st.just("expire")),
        st.tuples(st.just("cancel_all"), owner_index),
        st.tuples(
            st.just("conditional"),
            owner_index,
            st.integers(0, 1),
            st.integers(0, 3),
            price,
            size,
            client_id,
            st.sampled_from([0, 2]),
        ),
        st.tuples(st.just("trigger"), price),
    )
    place = placements(price)
    return st.integers(0, 9).flatmap(lambda n: place if n < 6 else others)


place = placements(st.integers(98, 102))
operation = order_flow(st.integers(98, 102))
wide_operation = order_flow(st.sampled_from(WIDE_PRICES))


def checker(kind: int) -> Any:
    """A pure maker check: allow, veto, allow part, or stop the taker, by the maker's id."""
    if kind == 0:
        return None

    def check(maker: RestingOrder, taker_id: int, taker_owner: bytes, fill: int) -> int:
        verdict = (maker.order_id * 7 + taker_id) % 11
        if verdict == 0:
            return 0
        if verdict == 1:
            return fill - 1
        if verdict == 2 and kind == 2:
            return STOP_TAKER
        return fill

    return check


def run(fast: Any, ref: Any, op: tuple[Any, ...], order_id: int, height: int) -> Any:
    """Apply one operation to both books; they must agree on what it returned."""
    name = op[0]
    results = []
    for book in (fast, ref):
        try:
            if name == "place":
                _, owner, side, px, sz, tif, flags, cid, gtb = op
                gtb = gtb and height + gtb
                results.append(
                    book.place(order_id, OWNERS[owner], side, px, sz, tif, flags, cid, gtb)
                )
            elif name == "cancel":
                results.append(book.cancel(op[1]))
            elif name == "cancel_client":
                results.append(book.cancel_by_client_id(OWNERS[op[1]], op[2]))
            elif name == "resize":
                results.append(book.resize(op[1], op[2]))
            elif name == "expire":
                results.append(book.expire(height))
            elif name == "cancel_all":
                results.append(book.cancel_all(OWNERS[op[1]]))
            elif name == "conditional":
                _, owner, side, kind, trig, sz, cid, gtb = op
                order = ConditionalOrder(
                    order_id,
                    OWNERS[owner],
                    side,
                    kind,
                    trig,
                    trig,
                    sz,
                    2,
                    0,
                    cid,
                    gtb and height + gtb,
                )
                results.append(book.add_conditional(order))
            elif name == "trigger":
                results.append([c.order_id for c in book.trigger(op[1])])
        except (OrderBookError, ValueError):
            results.append("raised")
    assert results[0] == results[1], (op, results)
    return results[0]


def assert_same_state(fast: OrderBook, ref: ReferenceBook) -> None:
    assert fast.take_fills() == ref.fills
    assert fast.take_removals() == ref.removals
    ref.fills, ref.removals = [], []
    assert list(fast.resting_orders()) == ref.resting_orders()
    assert sorted(c.record() for c in fast.conditional_orders()) == sorted(
        c.record() for c in ref.conditional
    )
    bid, ask = fast.best_bid(), fast.best_ask()
    assert (bid, ask) == (ref.best_bid(), ref.best_ask())
    assert bid is None or ask is None or bid < ask, "crossed book"
    for side in (Side.BUY, Side.SELL):
        assert fast.depth(side, 3) == ref.depth(side, 3)
        assert fast.volume(side) == sum(v for _, v in ref.depth(side, 1000))
    for owner in OWNERS:
        assert fast.order_ids_of(owner) == ref.order_ids_of(owner)
    assert len(fast) == len(ref.resting)


@given(
    ops=st.lists(operation, min_size=20, max_size=80),
    check_kind=st.integers(0, 2),
    max_makers=st.sampled_from([None, None, 1, 3]),
)
def test_property_engine_matches_reference(
    ops: list[tuple[Any, ...]], check_kind: int, max_makers: int | None
) -> None:
    matches_reference(ops, check_kind, max_makers)


@given(
    ops=st.lists(wide_operation, min_size=20, max_size=80),
    check_kind=st.integers(0, 2),
    max_makers=st.sampled_from([None, None, 1, 3]),
)
def test_property_engine_matches_reference_over_wide_prices(
    ops: list[tuple[Any, ...]], check_kind: int, max_makers: int | None
) -> None:
    """The same, with prices far apart and at the ends of the valid range."""
    matches_reference(ops, check_kind, max_makers)


@given(
    ops=st.lists(operation, min_size=20, max_size=80),
    ids=st.lists(
        st.one_of(st.integers(0, 3000), st.integers(-(2**70), 2**70)),
        min_size=80,
        max_size=80,
        unique=True,
    ),
)
def test_property_engine_matches_reference_with_any_order_ids(
    ops: list[tuple[Any, ...]], ids: list[int]
) -> None:
    """The same, with order ids in any order, far apart, huge or negative (the order
    index's window and its dict)."""
    matches_reference(ops, 0, None, ids)


def matches_reference(
    ops: list[tuple[Any, ...]],
    check_kind: int,
    max_makers: int | None,
    ids: list[int] | None = None,
) -> None:
    """Runs ``ops`` on the book and the reference; the n-th operation's order id is
    ``ids[n - 1]`` (default: n), and so is the target of a cancel or resize of n."""
    if ids is not None:
        known = ids

        def id_of(number: int) -> int:
            return known[number - 1] if 0 < number <= len(known) else number

        ops = [
            (op[0], id_of(op[1]), *op[2:]) if op[0] in ("cancel", "resize") else op for op in ops
        ]
    check = checker(check_kind)
    fast = OrderBook(maker_check=check, max_makers=max_makers)
    ref = ReferenceBook(maker_check=check, max_makers=max_makers)
    accepted = filled = removed = dropped = 0
    height = 1
    for number, op in enumerate(ops, start=1):
        order_id = number if ids is None else ids[number - 1]  # fresh ids, never reused
        if op[0] == "expire":
            height += 1
        was_conditional = {c.order_id for c in fast.conditional_orders()}
        target = (
            fast.order_id_for_client(OWNERS[op[1]], op[2])
            if op[0] == "cancel_client"
            else (op[1] if op[0] in ("cancel", "resize") else None)
        )
        result = run(fast, ref, op, order_id, height)
        fills = list(fast.fills)
        filled += sum(f[6] for f in fills)
        removed += sum(r[3] for r in fast.removals)
        if op[0] == "place" and result < Outcome.REJECTED_POST_ONLY:
            accepted += op[4]
            if result not in (Outcome.RESTING, Outcome.FILLED):
                dropped += op[4] - sum(f[6] for f in fills if f[2] == order_id)
        elif op[0] in ("cancel", "resize", "cancel_client") and result != "raised":
            if target not in was_conditional:
                removed += result
        elif op[0] in ("expire", "cancel_all"):
            removed += sum(r[3] for r in result if r[0] not in was_conditional)
        assert_same_state(fast, ref)
        resting = fast.volume(Side.BUY) + fast.volume(Side.SELL)
        assert accepted == 2 * filled + removed + dropped + resting, op


@given(ops=st.lists(place, min_size=5, max_size=40))
def test_property_snapshot_restore_rebuilds_same_book(ops: list[tuple[Any, ...]]) -> None:
    book = OrderBook()
    for order_id, (_, owner, side, px, sz, tif, flags, cid, gtb) in enumerate(ops, start=1):
        book.place(order_id, OWNERS[owner], side, px, sz, tif, flags, cid, gtb)
    book.take_fills()
    restored = OrderBook()
    for record in book.resting_orders():
        restored.insert_resting(record)
    assert list(restored.resting_orders()) == list(book.resting_orders())
    probe = 10_000
    for side in (Side.BUY, Side.SELL):
        a = book.place(probe, OWNERS[0], side, 100, 30, 2)
        b = restored.place(probe, OWNERS[0], side, 100, 30, 2)
        assert a == b and book.take_fills() == restored.take_fills()
        probe += 1


index_operation = st.one_of(
    st.tuples(st.just("next"), st.integers(1, 200)),  # the next id, this far ahead
    st.tuples(st.just("run"), st.integers(1, 1500)),  # this many consecutive next ids
    st.tuples(st.just("far"), st.integers(-(2**70), 2**70)),
    st.tuples(st.just("pop"), st.integers(0, 2**30)),  # an indexed id, by position
    st.tuples(st.just("pop_run"), st.integers(0, 2**30), st.integers(1, 1500)),
    st.tuples(st.just("pop_missing"), st.integers(-(10**6), 10**6)),
    st.tuples(st.just("keep_every"), st.integers(2, 300)),  # pop all but every n-th
)


@given(st.lists(index_operation, max_size=60))
def test_property_order_index_is_a_dict(ops: list[tuple[Any, ...]]) -> None:
    """The order index (a window of consecutive ids and a dict for the others) answers as
    a dict of the same orders would, after every operation, as its window extends, moves,
    thins out and spills."""
    order_index_matches_a_dict(ops)


@pytest.mark.parametrize(
    "ops",
    [
        [("run", 5000), ("pop_run", 1, 4999)],  # one old order pins the front: it spills
        [("run", 5000), ("keep_every", 100)],  # thinned out evenly: all spill
        [("run", 5000), ("keep_every", 10), ("pop_run", 0, 300)],  # the front empties
        [("next", 1), *[("next", 200)] * 600],  # ids too far apart for the window
        [("run", 2000), ("far", 10**9), ("pop_run", 0, 2000), ("next", 5), ("far", 3)],
        [("far", -(2**70)), ("far", 2**70), ("run", 3000), ("keep_every", 65), ("run", 10)],
    ],
)
def test_order_index_scenarios(ops: list[tuple[Any, ...]]) -> None:
    order_index_matches_a_dict(ops)


def order_index_matches_a_dict(ops: list[tuple[Any, ...]]) -> None:
    index = _OrderIndex()
    model: dict[int, RestingOrder] = {}
    owner = _Owner()
    last = 0

    def add(order_id: int) -> None:
        if order_id not in model:
            order = RestingOrder(order_id, bytes(20), 0, 1, 0, 0, order_id, 0, 1, owner, 1)
            model[order_id] = order
            index.add(order_id, order)

    def pop(order_id: int) -> None:
        assert index.pop(order_id) is model.pop(order_id, None)

    for op in ops:
        if op[0] == "next":
            last += op[1]
            add(last)
        elif op[0] == "run":
            for order_id in range(last + 1, last + 1 + op[1]):
                add(order_id)
            last += op[1]
        elif op[0] == "far":
            add(op[1])
        elif op[0] == "pop" and model:
            pop(sorted(model)[op[1] % len(model)])
        elif op[0] == "pop_run" and model:
            held = sorted(model)
            start = op[1] % len(held)
            for order_id in held[start : start + op[2]]:
                pop(order_id)
        elif op[0] == "keep_every":
            for position, order_id in enumerate(sorted(model)):
                if position % op[1]:
                    pop(order_id)
        elif op[0] == "pop_missing":
            pop(op[1] if op[1] not in model else -(2**80))
        assert len(index) == len(model)
        assert all(index.get(order_id) is order for order_id, order in model.items())
        window, spilled = index.window, index.spilled
        in_window = {index.base + i for i, order in enumerate(window) if order is not None}
        assert index.held == len(in_window) and not in_window & set(spilled)
        assert in_window | set(spilled) == set(model)
        assert index.held * 64 >= len(window) or len(window) <= 1024 or not in_window


@given(
    st.lists(st.one_of(st.integers(-(2**70), 2**70), st.integers(-3, 3), st.none()), max_size=300)
)
def test_property_bucket_heap_is_heapq(ops: list[int | None]) -> None:
    """The book's own heap operations (unboxed comparisons) keep the very same list as
    heapq's: an int pushes it, None pops the smallest."""
    import heapq

    heap: list[int] = []
    model: list[int] = []
    for op in ops:
        if op is None:
            if model:
                _pop(heap)
                heapq.heappop(model)
        else:
            _push(heap, op)
            heapq.heappush(model, op)
        assert heap == model
