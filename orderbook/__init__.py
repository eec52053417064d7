"""Price-time-priority matching for the exchange: one :class:`OrderBook` per market.

Pure and deterministic (integers and bytes only, no clock, no I/O). Prices are integer
ticks, sizes integer lots. See :mod:`orderbook.book` for the invariants and
:mod:`orderbook.types` for the records that leave the book.
"""

from appchaind import native  # noqa: F401  (first: selects the compiled build or the source)
from orderbook.book import Id, MakerCheck, OrderBook, RestingOrder
from orderbook.triggers import TriggerStore
from orderbook.types import (
    FILL_FIELDS,
    MAX_PRICE,
    ORDER_FIELDS,
    REMOVAL_FIELDS,
    STOP_TAKER,
    BookStatistics,
    ConditionalOrder,
    Fill,
    Impact,
    OrderBookError,
    OrderFlag,
    OrderRecord,
    Outcome,
    Reason,
    Removal,
    Side,
    TimeInForce,
    TriggerKind,
)

__all__ = [
    "OrderBook",
    "RestingOrder",
    "MakerCheck",
    "Id",
    "TriggerStore",
    "FILL_FIELDS",
    "MAX_PRICE",
    "ORDER_FIELDS",
    "REMOVAL_FIELDS",
    "STOP_TAKER",
    "BookStatistics",
    "ConditionalOrder",
    "Fill",
    "Impact",
    "OrderBookError",
    "OrderFlag",
    "OrderRecord",
    "Outcome",
    "Reason",
    "Removal",
    "Side",
    "TimeInForce",
    "TriggerKind",
]
