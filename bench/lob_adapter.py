"""Adapter that plugs the exchange's matching engine into ../shared/bench/lob/lobbench.py.

Every add goes through :meth:`orderbook.OrderBook.place`, the entry the application uses
for every order in a block: GTC limit orders with an owner, a client id, self-trade
prevention, the owner and client-id indexes and the fill records the exchange settles
from. Nothing is stubbed out.

The workload has no accounts; the adapter gives every buy to one account and every sell
to another, so self-trade prevention is checked on every fill but never fires, as in the
benchmark's reference book (which has no owners). The fills of each taker are counted and
then dropped, as the application drops them once settled.

The book is whichever build of the cores is installed (``appchaind version`` tells):
compiled with mypyc by ``make``, or pure Python with ``APPCHAIND_PURE_PYTHON=1``.

Run: ``PYTHONPATH=. python ../shared/bench/lob/lobbench.py --adapter bench.lob_adapter:make_engine``
"""

from __future__ import annotations

from orderbook import OrderBook, Outcome, Side, TimeInForce

#: The account of every sell order ([0]) and of every buy order ([1]).
ACCOUNTS = (bytes(19) + b"\x01", bytes(19) + b"\x02")


class LobEngine:
    """The lobbench engine contract: ``add``, ``cancel``, ``summary``."""

    __slots__ = ("book", "add", "cancel", "fills_settled")

    def __init__(self) -> None:
        book = self.book = OrderBook()
        place = book.place
        fills = book.fills
        resting = Outcome.RESTING
        gtc = int(TimeInForce.GTC)
        settled = [0]

        def add(order_id: int, is_buy: bool, price: int, qty: int) -> None:
            """GTC limit order: match, then rest; client id = order id."""
            if (
                place(order_id, ACCOUNTS[is_buy], is_buy, price, qty, gtc, 0, order_id, 0)
                is not resting
            ):
                settled[0] += len(fills)
                fills.clear()

        self.fills_settled = settled
        self.add = add
        self.cancel = book.cancel

    def summary(self) -> dict[str, int | None]:
        """Final state in lobbench's terms (order count, best prices, volume per side)."""
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
