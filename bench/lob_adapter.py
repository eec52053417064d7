"""Adapter that plugs the exchange's matching engine into ../shared/bench/lob/lobbench.py.

Every add goes through :meth:`orderbook.OrderBook.place`, the entry the application uses
for every order in a block: GTC limit orders with an owner, a client id, self-trade
prevention, the owner and client-id indexes and the fill records the exchange settles
from. Nothing is stubbed out.

The workload's resting orders never cross (buys below, sells above the mid) and its
aggressive orders always fill completely, so the adapter models them as two accounts: a
market maker for orders that would rest and a taker for orders that cross the book when
they arrive. Self-trade prevention is therefore checked on every fill but never fires, as
in the benchmark's reference book. The fills of each taker are counted and then dropped,
as the application drops them once settled.

Run: ``PYTHONPATH=. python ../shared/bench/lob/lobbench.py --adapter bench.lob_adapter:make_engine``
"""

from __future__ import annotations

from orderbook import OrderBook, Outcome, Side, TimeInForce

MAKER = bytes(19) + b"\x01"
TAKER = bytes(19) + b"\x02"


class LobEngine:
    """The lobbench engine contract: ``add``, ``cancel``, ``summary``."""

    __slots__ = ("book", "add", "cancel", "fills_settled")

    def __init__(self) -> None:
        book = self.book = OrderBook()
        place = book.place
        fills = book.fills
        best_bid = book.best_bid
        best_ask = book.best_ask
        resting = Outcome.RESTING
        gtc = TimeInForce.GTC
        self.fills_settled = 0

        def add(order_id: int, is_buy: bool, price: int, qty: int) -> None:
            """GTC limit order: match, then rest; client id = order id."""
            if is_buy:
                best = best_ask()
                owner = TAKER if best is not None and best <= price else MAKER
            else:
                best = best_bid()
                owner = TAKER if best is not None and best >= price else MAKER
            if place(order_id, owner, is_buy, price, qty, gtc, 0, order_id, 0) is not resting:
                self.fills_settled += len(fills)
                fills.clear()

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
