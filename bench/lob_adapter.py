"""Adapter that plugs the exchange's matching engine into ../shared/bench/lob/lobbench.py.

The engine is :class:`orderbook.lob_engine.LobEngine`: every ``add`` goes through
:meth:`orderbook.OrderBook.place`, the entry the application uses for every order in a
block (GTC limit orders with an owner, a client id, self-trade prevention, the owner and
client-id indexes and the fill records the exchange settles from). Nothing is stubbed
out. It is compiled with the book, so it calls ``place`` natively, as the compiled
application does; see its module docstring for how the workload maps onto accounts.

The book is whichever build of the cores is installed (``appchaind version`` tells):
compiled with mypyc by ``make``, or pure Python with ``APPCHAIND_PURE_PYTHON=1``.

Run: ``PYTHONPATH=. python ../shared/bench/lob/lobbench.py --adapter bench.lob_adapter:make_engine``
"""

from __future__ import annotations

from orderbook.lob_engine import LobEngine


def make_engine() -> LobEngine:
    """A fresh engine over an empty book (lobbench's adapter entry point)."""
    return LobEngine()
