"""The maker check (orderbook/book.py, :data:`MakerCheck`) has its say on every fill with
another owner's maker, a fill-or-kill taker's included: it is told who the taker is, its
answers bound the fills (FOK: the answers recorded while planning are the ones obeyed),
and an answer of 0 removes that maker without stopping the taker."""

from __future__ import annotations

from orderbook import OrderBook, Outcome, Reason, RestingOrder
from tests.orderbook.test_book import ALICE, BOB, BUY, CAROL, FOK, GTC, IOC, SELL, resting


def _book(check: object) -> OrderBook:
    """Asks: ALICE's order 1 (5 lots at 100), then BOB's order 2 (5 lots at 100)."""
    book = OrderBook(maker_check=check)  # type: ignore[arg-type]
    assert book.place(1, ALICE, SELL, 100, 5, GTC, 0, 1) == Outcome.RESTING
    assert book.place(2, BOB, SELL, 100, 5, GTC, 0, 2) == Outcome.RESTING
    return book


def test_a_fill_or_kill_taker_fills_as_the_check_answered() -> None:
    """The check lets ALICE's maker fill 2 of the 5 lots asked: 2 from it (the rest of it
    vetoed), 5 from BOB's."""
    asked: list[tuple[int, int]] = []

    def check(maker: RestingOrder, taker_id: int, taker_owner: bytes, fill: int) -> int:
        asked.append((maker.order_id, fill))
        return 2 if maker.owner == ALICE else fill

    book = _book(check)
    assert book.place(10, CAROL, BUY, 100, 7, FOK) == Outcome.FILLED
    assert [(f[0], f[6], f[7]) for f in book.take_fills()] == [(1, 2, 0), (2, 5, 0)]
    assert book.take_removals() == [(1, ALICE, Reason.VETOED, 3)]
    assert asked == [(1, 5), (2, 5)]  # once per maker, while planning
    assert resting(book) == []


def test_a_fill_or_kill_taker_passes_a_maker_the_check_refuses_entirely() -> None:
    """An answer of 0 removes ALICE's maker unfilled; BOB's fills the taker completely."""

    def check(maker: RestingOrder, taker_id: int, taker_owner: bytes, fill: int) -> int:
        return 0 if maker.owner == ALICE else fill

    book = _book(check)
    assert book.place(10, CAROL, BUY, 100, 5, FOK) == Outcome.FILLED
    assert [(f[0], f[6]) for f in book.take_fills()] == [(2, 5)]
    assert book.take_removals() == [(1, ALICE, Reason.VETOED, 5)]
    assert resting(book) == []


def test_the_check_is_told_the_taker_s_id_and_owner() -> None:
    told: list[tuple[int, int, bytes, int]] = []

    def check(maker: RestingOrder, taker_id: int, taker_owner: bytes, fill: int) -> int:
        told.append((maker.order_id, taker_id, taker_owner, fill))
        return fill

    book = _book(check)
    assert book.place(10, CAROL, BUY, 100, 3, IOC) == Outcome.FILLED
    assert book.place(11, CAROL, BUY, 100, 4, FOK) == Outcome.FILLED
    assert told == [(1, 10, CAROL, 3), (1, 11, CAROL, 2), (2, 11, CAROL, 2)]
