"""Replacing an order (appchaind/exchange/cancels.py, ``replace_order``; the rule as
txs.py's ReplaceOrder states it):

- a replacement that only lowers (or keeps) the size of a resting limit order, everything
  else equal (side, price, time in force, reduce-only, client id, good_til_block), is an
  amend in place: the order keeps its id and its time priority (one ``resized`` event);
- any other replacement is a cancel and a new order (a new id, at the back of its level);
- a replacement refused by a check that does not need the book (price band, margin, the
  open-order cap, ...) leaves the old order as it was, and uses no order id: its checks run
  as a dry run first;
- one the book refuses (a post-only order that would take) leaves the old order cancelled.

An order (resting or conditional) is cancelled or replaced by id by its owner only.

BTC-PERP of tests/exchange/support.py: oracle 50000 ticks, price band [45000, 55000].
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from appchaind.abci import FinalizeResult
from appchaind.chain.codes import Code
from appchaind.exchange import CancelOrder, ExchangeApp, PlaceOrder, ReplaceOrder
from appchaind.exchange.state import RECORD_ID, RECORD_SIZE
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
ASK = limit(BTC, SELL, 51000, 4, client_id=7, good_til_block=1000)


def _orders(result: FinalizeResult, index: int = 0) -> list[tuple[int, str, int]]:
    """(order id, status, size) of each ``order`` event of tx ``index``."""
    return [
        (a["order_id"], a["status"], a["size"])
        for a in (e.attributes for e in result.tx_results[index].events if e.kind == "order")
    ]


def _asks_in_priority(app: ExchangeApp) -> list[tuple[int, int]]:
    """(order id, size) of the BTC asks, best price first, oldest first within a level."""
    return [(r[RECORD_ID], r[RECORD_SIZE]) for r in app.books[BTC].resting_orders()]


def _alice_ask_then_bobs() -> tuple[ExchangeApp, Driver, int, int]:
    """Alice's ask (ASK: 4 lots at 51000), then Bob's ask at the same price behind it."""
    app = ExchangeApp(genesis({"alice": RICH, "bob": RICH, "carol": RICH}))
    d = Driver(app)
    placed = d.block([d.tx("alice", ASK), d.tx("bob", limit(BTC, SELL, 51000, 4))])
    (alice, _, _), (bob, _, _) = _orders(placed, 0)[0], _orders(placed, 1)[0]
    return app, d, alice, bob


@pytest.mark.parametrize("size", [1, 3, 4])
def test_a_replacement_that_only_lowers_or_keeps_the_size_is_an_amend_in_place(size: int) -> None:
    """Alice's ask of 4 is replaced by the same ask of ``size``: it keeps its id and stays
    ahead of Bob's ask at the same price (a buyer of 1 fills Alice)."""
    app, d, alice, bob = _alice_ask_then_bobs()
    result = d.block(
        [d.tx("alice", ReplaceOrder(alice, 0, False, dataclasses.replace(ASK, size=size)))]
    )
    assert result.tx_results[0].code == Code.OK
    assert _orders(result) == [(alice, "resized", size)]
    assert _asks_in_priority(app) == [(alice, size), (bob, 4)]
    fill = d.block([d.tx("carol", limit(BTC, BUY, 51000, 1, IOC))])
    assert [e.attributes["maker"] for e in fill.tx_results[0].events if e.kind == "fill"] == [
        address("alice")
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"size": 5},
        {"price": 51001},
        {"side": BUY, "price": 49000},
        {"time_in_force": POST_ONLY},
        {"reduce_only": True},
        {"client_id": 8},
        {"good_til_block": 1001},
        {"good_til_block": 0},
        {"order_type": int(OrderType.STOP_LIMIT), "trigger_price": 40000},
    ],
    ids=lambda change: "-".join(change),
)
def test_a_replacement_that_changes_anything_but_a_lower_size_is_a_new_order(
    change: dict[str, Any],
) -> None:
    """The old order is cancelled (its whole size reported) and the new one gets a new id;
    a new resting ask at 51000 rests behind Bob's."""
    app, d, alice, bob = _alice_ask_then_bobs()
    if change.get("reduce_only"):  # reduce-only needs a long position to reduce
        d.block([
            d.tx("carol", limit(BTC, SELL, 50000, 10)),
            d.tx("alice", limit(BTC, BUY, 50000, 10, IOC, client_id=1)),
        ])  # fmt: skip
    new = dataclasses.replace(ASK, **change)
    result = d.block([d.tx("alice", ReplaceOrder(alice, 0, False, new))])
    assert result.tx_results[0].code == Code.OK, result.tx_results[0].log
    (old, cancelled, size), (new_id, status, _) = _orders(result)
    assert (old, cancelled, size) == (alice, "cancelled", 4)
    assert new_id > bob and status in ("resting", "conditional")
    assert app.books[BTC].order(alice) is None
    if status == "resting" and new.side == SELL and new.price == 51000:
        assert [i for i, _ in _asks_in_priority(app)] == [bob, new_id]


def test_a_conditional_order_replaced_by_a_limit_order_is_a_new_order() -> None:
    """A stop-limit ask of 4 at 51000 replaced by a limit ask of 3 at 51000: no order rests
    to amend, so the stop is cancelled and the ask placed anew."""
    app = ExchangeApp(genesis({"alice": RICH}))
    d = Driver(app)
    stop = conditional(BTC, SELL, OrderType.STOP_LIMIT, 40000, 4, 51000)
    ((stop_id, _, _),) = _orders(d.block([d.tx("alice", stop)]))
    result = d.block([d.tx("alice", ReplaceOrder(stop_id, 0, False, limit(BTC, SELL, 51000, 3)))])
    (old, cancelled, size), (new_id, status, new_size) = _orders(result)
    assert (old, cancelled, size) == (stop_id, "cancelled", 4)
    assert (new_id, status, new_size) == (stop_id + 1, "resting", 3)
    assert app.books[BTC].triggers.get(stop_id) is None


def test_a_replacement_takes_one_order_id_and_its_dry_run_none() -> None:
    """Order ids count up by one per order: Alice's ask takes id n, its replacement n + 1,
    the next order n + 2; a refused replacement takes none."""
    app = ExchangeApp(genesis({"alice": RICH}))
    d = Driver(app)
    ((first, _, _),) = _orders(d.block([d.tx("alice", limit(BTC, SELL, 51000, 4))]))
    result = d.block([d.tx("alice", ReplaceOrder(first, 0, False, limit(BTC, SELL, 52000, 4)))])
    assert [i for i, _, _ in _orders(result)] == [first, first + 1]
    refused = d.block(
        [d.tx("alice", ReplaceOrder(first + 1, 0, False, limit(BTC, SELL, 56000, 4)))]
    )
    assert refused.tx_results[0].code == Code.PRICE_OUTSIDE_BAND
    ((last, _, _),) = _orders(d.block([d.tx("alice", limit(BTC, SELL, 53000, 1, client_id=1))]))
    assert last == first + 2


def _refusals() -> list[Any]:
    return [
        pytest.param(limit(BTC, SELL, 56000, 4), Code.PRICE_OUTSIDE_BAND, id="band"),
        pytest.param(limit(BTC, SELL, 51000, 5000), Code.INSUFFICIENT_MARGIN, id="margin"),
        pytest.param(
            limit(BTC, SELL, 51000, 5, reduce_only=True),
            Code.REDUCE_ONLY_REJECTED,
            id="reduce-only",
        ),
        pytest.param(
            conditional(BTC, SELL, OrderType.STOP_MARKET, 0, 4), Code.INVALID_ORDER, id="trigger"
        ),
    ]


@pytest.mark.parametrize(("new", "code"), _refusals())
def test_a_replacement_refused_before_the_book_leaves_the_old_order_as_it_was(
    new: PlaceOrder, code: int
) -> None:
    """Alice's ask of 4 at 51000 stays, with its id and its place ahead of Bob's ask, when
    the replacement is refused: outside the band, without the margin for 5000 lots,
    reduce-only without a position, a stop without a trigger price."""
    app = ExchangeApp(genesis({"alice": "100", "bob": RICH}))
    d = Driver(app)
    placed = d.block([d.tx("alice", ASK), d.tx("bob", limit(BTC, SELL, 51000, 4))])
    alice, bob = _orders(placed, 0)[0][0], _orders(placed, 1)[0][0]
    result = d.block([d.tx("alice", ReplaceOrder(alice, 0, False, new))])
    assert result.tx_results[0].code == code
    assert _orders(result) == []
    assert _asks_in_priority(app) == [(alice, 4), (bob, 4)]


def test_a_replacement_the_book_refuses_leaves_the_old_order_cancelled() -> None:
    """Alice replaces her ask by a post-only bid that would take Bob's ask: the bid is
    refused (POST_ONLY_WOULD_TAKE), the book's reason and that her ask stays cancelled
    both said, and her ask stays cancelled."""
    app = ExchangeApp(genesis({"alice": RICH, "bob": RICH}))
    d = Driver(app)
    placed = d.block([d.tx("alice", ASK), d.tx("bob", limit(BTC, SELL, 50500, 4))])
    alice = _orders(placed, 0)[0][0]
    new = limit(BTC, BUY, 50500, 1, POST_ONLY)
    result = d.block([d.tx("alice", ReplaceOrder(alice, 0, False, new))])
    assert (result.tx_results[0].code, result.tx_results[0].log) == (
        Code.POST_ONLY_WOULD_TAKE,
        "post-only order would take liquidity (the replaced order stays cancelled)",
    )
    assert [s for _, s, _ in _orders(result)] == ["cancelled", "rejected"]
    assert app.books[BTC].order(alice) is None
    assert app.books[BTC].open_order_count(address("alice")) == 0


def test_a_conditional_order_is_cancelled_or_replaced_by_id_by_its_owner_only() -> None:
    """Bob names Alice's stop by its id: ORDER_NOT_FOUND, the stop stays. Alice replaces
    it by id (a new stop), then cancels that one by id."""
    app = ExchangeApp(genesis({"alice": RICH, "bob": RICH}))
    d = Driver(app)
    stop = conditional(BTC, SELL, OrderType.STOP_MARKET, 40000, 2)
    ((stop_id, _, _),) = _orders(d.block([d.tx("alice", stop)]))
    # Bob has a stop of his own: the owner check, not an empty trigger store, refuses him
    d.block([d.tx("bob", conditional(BTC, SELL, OrderType.STOP_MARKET, 41000, 1))])
    moved = dataclasses.replace(stop, trigger_price=42000)
    result = d.block([
        d.tx("bob", CancelOrder(BTC, stop_id, 0, False)),
        d.tx("bob", ReplaceOrder(stop_id, 0, False, moved)),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [Code.ORDER_NOT_FOUND] * 2
    assert app.books[BTC].triggers.get(stop_id) is not None
    result = d.block([d.tx("alice", ReplaceOrder(stop_id, 0, False, moved))])
    assert result.tx_results[0].code == Code.OK
    (_, cancelled, _), (new_id, status, _) = _orders(result)
    assert (cancelled, status) == ("cancelled", "conditional")
    assert app.books[BTC].triggers.get(stop_id) is None
    assert app.books[BTC].triggers.get(new_id).trigger_price == 42000  # type: ignore[union-attr]
    result = d.block([d.tx("alice", CancelOrder(BTC, new_id, 0, False))])
    assert _orders(result) == [(new_id, "cancelled", 2)]
    assert app.books[BTC].triggers.get(new_id) is None
