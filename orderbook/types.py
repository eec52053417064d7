"""Vocabulary of the order book: sides, time in force, outcomes, removal reasons and
the shapes of the records that leave the book.

Units: every price is an integer number of ticks, every size an integer number of
lots, every notional an integer number of tick-lots (price in ticks x size in lots).
Nothing here is a float; the records are tuples of ints and bytes so the application
can encode and hash them canonically.

Hot-path records (fills, removals, order records) are plain tuples, not classes: one
tuple allocation per fill is what the matching loop can afford. Their field order is
fixed by the ``*_FIELDS`` constants below and is part of the canonical encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

__all__ = [
    "MAX_PRICE",
    "STOP_TAKER",
    "Side",
    "TimeInForce",
    "OrderFlag",
    "Outcome",
    "Reason",
    "TriggerKind",
    "OrderRecord",
    "ORDER_FIELDS",
    "Fill",
    "FILL_FIELDS",
    "Removal",
    "REMOVAL_FIELDS",
    "Impact",
    "ConditionalOrder",
    "BookStatistics",
    "OrderBookError",
]

#: Prices must satisfy ``0 < price < MAX_PRICE`` (ticks). Also the book's "no price" mark.
MAX_PRICE = 1 << 62

#: What a maker check returns to stop the taker: no fill with this maker, and the taker's
#: remainder is cancelled (``Outcome.CANCELLED_BY_CHECK``).
STOP_TAKER = -1


class Side(IntEnum):
    """Order side. ``BUY`` is 1 so that ``if side:`` reads "if buying"."""

    SELL = 0
    BUY = 1


class TimeInForce(IntEnum):
    """What happens to an order's unfilled remainder.

    Values below ``IOC`` may rest on the book.
    """

    #: Good till cancelled (or till its good_til_block): match, then rest the remainder.
    GTC = 0
    #: Rest only: rejected whole, with nothing mutated, if it would take liquidity.
    POST_ONLY = 1
    #: Immediate or cancel: match, then cancel the remainder. Market orders are IOC with a
    #: protection price computed by the application.
    IOC = 2
    #: Fill or kill: fill completely at once, or do nothing at all.
    FOK = 3


class OrderFlag(IntEnum):
    """Bits of an order's ``flags``. The book stores them; the application interprets them."""

    #: The order may only reduce its owner's position (the application enforces it through
    #: the maker check and :meth:`OrderBook.resize`).
    REDUCE_ONLY = 1


class Outcome(IntEnum):
    """What became of a taker (an order passed to :meth:`OrderBook.place`).

    How many lots it filled is the sum of its fills. ``RESTING`` means the unfilled
    remainder now rests (possibly after fills); every ``CANCELLED_*`` means the remainder
    was dropped (possibly after fills); every ``REJECTED_*`` means nothing was mutated.
    """

    RESTING = 0
    FILLED = 1
    #: IOC (or market) order: remainder cancelled once no crossing liquidity was left.
    CANCELLED_IOC = 2
    #: The taker reached the book's ``max_makers``; its remainder is cancelled.
    CANCELLED_MAKER_LIMIT = 3
    #: The maker check returned ``STOP_TAKER``; the remainder is cancelled.
    CANCELLED_BY_CHECK = 4
    REJECTED_POST_ONLY = 5
    REJECTED_FOK = 6
    REJECTED_DUPLICATE_ORDER_ID = 7
    #: A GTC/post-only order whose (owner, client_id) is already open (resting or conditional).
    REJECTED_DUPLICATE_CLIENT_ID = 8
    #: Size not positive, price outside ``0 < price < MAX_PRICE``, or an order or client id
    #: that is not an ``int``.
    REJECTED_INVALID = 9


class Reason(IntEnum):
    """Why an order left the book other than by filling (the ``reason`` of a :data:`Removal`)."""

    #: Cancelled at the request of its owner (or the application).
    CANCELLED = 0
    #: A maker expired by self-trade prevention: a taker of the same owner reached it.
    SELF_TRADE = 1
    #: A maker removed because the maker check allowed less than the fill (margin,
    #: reduce-only...).
    VETOED = 2
    #: Its good_til_block passed.
    EXPIRED = 3
    #: A conditional order that fired and left the trigger store.
    TRIGGERED = 4


class TriggerKind(IntEnum):
    """Conditional order kinds. Stops fire when the oracle moves against the position the
    order closes, take-profits when it moves in favour:

    - buy stop and sell take-profit fire when the oracle price rises to ``trigger_price``
      or above;
    - sell stop and buy take-profit fire when it falls to ``trigger_price`` or below.

    ``*_MARKET`` kinds are submitted as IOC with a protection price the application
    computes when they fire; ``*_LIMIT`` kinds with their own price and time in force.
    """

    STOP_MARKET = 0
    STOP_LIMIT = 1
    TAKE_PROFIT_MARKET = 2
    TAKE_PROFIT_LIMIT = 3


#: Canonical record of one resting order (the form that is snapshotted, encoded, hashed):
#: (order_id, owner, side, price ticks, time_in_force, flags, client_id, good_til_block,
#: remaining size lots). Side, time in force and flags are plain ints.
OrderRecord = tuple[int, bytes, int, int, int, int, int, int, int]
ORDER_FIELDS = (
    "order_id",
    "owner",
    "side",
    "price",
    "time_in_force",
    "flags",
    "client_id",
    "good_til_block",
    "size",
)

#: One fill: (maker_order_id, maker_owner, taker_order_id, taker_owner, taker_side,
#: price ticks (the maker's price), size lots, maker_remaining lots). ``maker_remaining``
#: is what the maker still has resting after this fill: 0 means the maker is filled (or was
#: cut after a partial allowance, which a :data:`Removal` with ``VETOED`` then reports).
Fill = tuple[int, bytes, int, bytes, int, int, int, int]
FILL_FIELDS = (
    "maker_order_id",
    "maker_owner",
    "taker_order_id",
    "taker_owner",
    "taker_side",
    "price",
    "size",
    "maker_remaining",
)

#: An order leaving the book without filling: (order_id, owner, reason, size lots removed).
#: ``reason`` is a :class:`Reason` value.
Removal = tuple[int, bytes, int, int]
REMOVAL_FIELDS = ("order_id", "owner", "reason", "size")


class Impact(NamedTuple):
    """The cost of taking ``size`` lots from one side of the book.

    ``worst_price`` is the price in ticks of the last level touched; ``notional`` is
    sum(price x lots) in tick-lots, so the average price is ``notional / size`` (the caller
    rounds, against the trader).
    """

    worst_price: int
    size: int
    notional: int


class OrderBookError(ValueError):
    """A call the book refuses as a programming error of the caller (e.g. growing an order
    in place, restoring a crossing order). Raised before anything is mutated."""


@dataclass(frozen=True, slots=True)
class ConditionalOrder:
    """An order held in the trigger store until the oracle price reaches ``trigger_price``.

    When it fires, the book hands it back and the application submits it with
    :meth:`OrderBook.place` (``price`` is the limit price in ticks for ``*_LIMIT`` kinds
    and is ignored by the book for ``*_MARKET`` kinds). Size in lots.
    """

    order_id: int
    owner: bytes
    side: int
    kind: int
    trigger_price: int
    price: int
    size: int
    time_in_force: int
    flags: int
    client_id: int
    good_til_block: int

    @property
    def fires_on_rise(self) -> bool:
        """True if it fires when the oracle price rises to the trigger (buy stop, sell TP)."""
        is_stop = self.kind in (TriggerKind.STOP_MARKET, TriggerKind.STOP_LIMIT)
        return is_stop == bool(self.side)

    def record(self) -> tuple[int, bytes, int, int, int, int, int, int, int, int, int]:
        """Canonical tuple in field order (ints and bytes only)."""
        return (
            self.order_id,
            self.owner,
            int(self.side),
            int(self.kind),
            self.trigger_price,
            self.price,
            self.size,
            int(self.time_in_force),
            self.flags,
            self.client_id,
            self.good_til_block,
        )


@dataclass(frozen=True, slots=True)
class BookStatistics:
    """Counts for metrics: resting orders, price levels per side, conditional orders."""

    resting_orders: int
    bid_levels: int
    ask_levels: int
    conditional_orders: int
