"""Adapter that plugs the exchange's matching engine into ../shared/bench/lob/lobbench.py:
the engine contract (add a GTC limit order, cancel one, summarise) over one
:class:`orderbook.OrderBook`.

Every ``add`` goes through :meth:`orderbook.OrderBook.place`, the entry the application
uses for every order in a block: GTC limit orders with an owner and a client id,
self-trade prevention, the owner and client-id indexes, and the fill records the exchange
settles from. Nothing is stubbed out.

The workload has no accounts: every sell belongs to :data:`SELLER` and every buy to
:data:`BUYER`, so self-trade prevention is checked on every fill but never fires (the
benchmark's reference book has no owners). The client id is the order id. Each taker's
fills are counted and dropped, as the application drops them once settled.

The book is whichever build of the cores is installed (``appchaind version`` tells):
compiled with mypyc by ``make``, or pure Python with ``APPCHAIND_PURE_PYTHON=1``. This
adapter itself is a benchmark tool and stays interpreted: each ``add`` pays one Python
call into the (compiled) book, which the compiled exchange does not.

Run: ``PYTHONPATH=. python ../shared/bench/lob/lobbench.py --adapter bench.lob_adapter:make_engine``
"""

from __future__ import annotations

from typing import Final

from orderbook.book import Id, OrderBook
from orderbook.types import Outcome, Side

__all__ = ["LobEngine", "SELLER", "BUYER", "make_engine"]

#: The account of every sell order.
SELLER: Final = bytes(19) + b"\x01"
#: The account of every buy order.
BUYER: Final = bytes(19) + b"\x02"
_RESTING: Final = Outcome.RESTING
_GTC: Final = 0


class LobEngine:
    """``add``, ``cancel`` and ``summary`` over one :class:`OrderBook`."""

    def __init__(self) -> None:
        self.book = OrderBook()
        self._place = self.book.place
        #: Fills produced so far (each taker's are counted, then dropped).
        self.fills_settled = 0

    def add(self, order_id: Id, is_buy: bool, price: int, size: int) -> None:
        """A GTC limit order (price in ticks, size in lots, no expiry): match, then rest.
        (``place`` takes the bool as the side.)"""
        outcome = self._place(
            order_id, BUYER if is_buy else SELLER, is_buy, price, size, _GTC, 0, order_id
        )
        if outcome is not _RESTING:
            fills = self.book.fills
            self.fills_settled += len(fills)
            fills.clear()

    def cancel(self, order_id: Id) -> None:
        """Cancel a resting order (nothing if it is not open)."""
        self.book.cancel(order_id)

    def summary(self) -> dict[str, int | None]:
        """Final state in the benchmark's terms: order count, best prices, volume per side."""
        book = self.book
        return {
            "n_orders": len(book),
            "best_bid": book.best_bid(),
            "best_ask": book.best_ask(),
            "bid_vol": book.volume(Side.BUY),
            "ask_vol": book.volume(Side.SELL),
        }


def make_engine() -> LobEngine:
    """A fresh engine over an empty book (lobbench's adapter entry point)."""
    return LobEngine()
