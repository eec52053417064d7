"""Order ids are looked up as a dict keyed by them would look them up (orderbook/book.py,
``_int_equal_to``): a number finds an order only if it is *equal* to its id; a number
whose hash merely collides with the id's (Python hashes a rational modulo 2**61 - 1) is
another key.

Every lookup by id (``x in book``, ``cancel``, ``resize``, ``resting``, ``order``, and
``place``'s duplicate check) asks the resting orders and the trigger store with the int the
key stands for, or not at all: the compiled trigger store takes ``int`` parameters (checked),
and once raised TypeError for ``cancel(1.5)`` where pure Python answered 0.
:func:`lookup_answers` is the scenario; tests/test_native.py runs it in both builds."""

from __future__ import annotations

from fractions import Fraction

from orderbook import ConditionalOrder, Outcome, TriggerKind
from tests.orderbook.test_book import ALICE, BUY, CAROL, IOC, SELL, asks_100_101

#: Python's modulus for the hashes of numbers.
_HASH_MODULUS = 2**61 - 1


def _hashes_like(order_id: int) -> Fraction:
    """A fraction between ``order_id`` and ``order_id + 1`` (its int() is ``order_id``)
    whose hash is ``order_id``'s: its fractional part ``P / (P + 1)`` hashes to 0."""
    value = Fraction(order_id * (_HASH_MODULUS + 1) + _HASH_MODULUS, _HASH_MODULUS + 1)
    assert int(value) == order_id and hash(value) == hash(order_id) and value != order_id
    return value


def test_a_number_that_only_hashes_like_an_open_id_finds_nothing() -> None:
    book = asks_100_101()
    before = list(book.resting_orders())
    for order_id in (1, 2, 3):
        impostor = _hashes_like(order_id)
        assert {order_id: "open"}.get(impostor) is None  # as the ids' dict did
        assert book.resting(impostor) is None
        assert book.resting(order_id) is not None
    assert list(book.resting_orders()) == before


def lookup_answers() -> list[object]:
    """What the book answers to lookups by keys that are not ints: numbers equal to an
    open id (resting 2, conditional 7), numbers equal to none (1.5, a fraction hashing like
    3), other objects; then the ids of what is still open."""
    book = asks_100_101()
    trigger = ConditionalOrder(7, ALICE, BUY, TriggerKind.STOP_MARKET, 105, 105, 4, IOC, 0, 7, 0)
    assert book.add_conditional(trigger) == Outcome.RESTING
    answers: list[object] = []
    for key in (1.5, _hashes_like(3), "3", b"\x03", None, (3,)):
        answers += [key in book, book.resting(key), book.order(key), book.cancel(key)]
        answers.append(book.resize(key, 0))
        answers.append(book.place(key, CAROL, SELL, 120, 1, IOC, 0, 900).name)
    answers += [2.0 in book, True in book, 7.0 in book, Fraction(14, 2) in book]
    answers += [book.resize(7.0, 2), book.resize(3.0, 4), book.cancel(2.0), book.cancel(7.0)]
    answers.append(book.place(1.0, CAROL, SELL, 120, 1, IOC, 0, 900).name)
    answers.append(sorted((r[0], r[8]) for r in book.resting_orders()))
    answers.append(7 in book)
    return answers


def test_keys_that_are_not_ints_find_the_id_they_equal_or_nothing() -> None:
    no_order = [False, None, None, 0, 0, "REJECTED_INVALID"]
    assert lookup_answers() == [
        *no_order * 6,  # 1.5, the impostor of 3, "3", b"\x03", None, (3,): no order
        True,
        True,
        True,
        True,  # 2.0, True (1), 7.0, 14/2: open ids
        2,
        6,
        5,
        2,  # conditional 7: 4 -> 2 lots; 3: 10 -> 4; cancelled: 2 (5), 7 (2)
        "REJECTED_DUPLICATE_ORDER_ID",  # 1.0 is the open id 1
        [(1, 5), (3, 4)],
        False,
    ]
