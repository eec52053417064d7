"""Order ids are looked up as a dict keyed by them would look them up (orderbook/book.py,
``_int_equal_to``): a number finds an order only if it is *equal* to its id; a number
whose hash merely collides with the id's (Python hashes a rational modulo 2**61 - 1) is
another key.

(Only :meth:`OrderBook.resting` is used: compiled, ``x in book``, ``cancel(x)`` and
``place(x, ...)`` with a non-int ``x`` that is no open id raise TypeError from the trigger
store's ``int`` parameters, where pure Python answers False, 0 and REJECTED_INVALID.)"""

from __future__ import annotations

from fractions import Fraction

from tests.orderbook.test_book import asks_100_101

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
