"""Price-time-priority limit order book of one market: the exchange's matching engine.

(long because: this is the compiled matching path, one class and the structures it walks:
every invariant below is kept by several methods of :class:`OrderBook` at once (a fill,
a cancel, a resize and an expiry all maintain the levels, the owner index and the expiry
index), and moving some of them to another module would put a call boundary and a second
statement of the invariants inside the hot loop. Conditional orders are
:mod:`orderbook.triggers`, the order types :mod:`orderbook.types`.)

Pure and deterministic: integers and bytes only, no clock, no randomness, no I/O, no
iteration whose order came from outside the chain. Prices in ticks, sizes in lots.

State and its invariants (checked by tests/orderbook against a slow reference):

- ``_orders`` (an :class:`_OrderIndex`) maps every resting order id to its
  :class:`RestingOrder`, whose ``size`` is the remaining size in lots (> 0). A partial fill or a resize changes ``size`` in place;
  an order leaving the book gets ``size == 0``. Its canonical form (what is snapshotted,
  encoded and hashed) is :meth:`RestingOrder.record`, a tuple of ints and bytes.
- A side's price levels (:class:`_Level`) are found by *key*: the price for asks and
  minus the price for bids, so that on both sides a smaller key is a better price and
  "crosses" is ``best_key <= limit_key``. Keys are grouped in *buckets* of 32 consecutive
  keys (number ``key >> 5``, slot ``key & 31``): the side's ``occupied`` maps the number
  of every bucket holding a level (and only those) to its :class:`_Bucket`, which holds
  its levels in 32 slots and a bitmask of the slots in use. ``best`` is the smallest key
  with a level, or ``MAX_PRICE`` when the side is empty, and ``best_bucket`` its bucket.
  ``buckets`` is a min-heap holding every number of ``occupied`` (plus numbers of buckets
  that emptied, dropped lazily), whose top is always the best bucket. So the next best
  level is a bit scan of the best bucket away, a deep sweep takes levels without a
  single dict operation, and only a bucket opening or emptying costs a dict or heap
  operation (a dict of levels and a heap of every key cost two dict operations and a
  heap pop with 15 or so boxed-int comparisons per level taken).
- A level's ``volume`` is the sum of its live orders' sizes (lots) and ``live`` their
  count, so it is empty iff ``volume == 0`` iff ``live == 0``; ``queue[head:]`` holds its
  orders in time priority, interleaved with dead ones (cancelled: ``size == 0``, lazy
  removal, so a cancel is O(1)). Matching moves ``head`` past the orders it takes; a queue
  is compacted once its dead entries outnumber the live ones.
- A level exists iff it has a live order: matching and cancels drop empty levels at once,
  so ``best`` is always a real price and the book is never crossed after an operation.
- ``_by_owner[owner]`` is an :class:`_Owner` for every owner with a resting order (and
  only those): ``live`` counts its resting orders (the open-order cap) and
  ``clients[client_id]`` is the id of each one (the client-id index, cancel-all,
  reduce-only resizing). ``clients`` may also hold ids of orders that have left the book
  or never rested: an order's entry is not deleted when it leaves (a random-access dict
  operation saved per fill and cancel), and the duplicate check of a new order inserts
  its entry at once (one dict operation instead of two); stale entries are overwritten
  when their client id is used again, or purged once they outnumber live ones by far. An entry
  is live iff its id is in ``_orders`` (ids are never reused). Every resting order points
  at its owner's ``_Owner`` (``holder``) and holds its level's key (``key``).
- No reference cycles: an order refers to its ids, owner and ``_Owner``, none of which
  refers back to it, a level only to its orders and a bucket to its levels. Orders,
  levels, buckets and owners are
  therefore compiled *acyclic*: untracked by the cyclic garbage collector, whose
  collections would otherwise traverse every resting order again and again while the
  book grows or churns, and freed by reference counting alone.
- ``_expiry[height]`` lists ids of orders whose good_til_block is ``height``; stale ids
  (orders gone earlier) are skipped when the height is expired.

The matching loop is :meth:`OrderBook._match`; :meth:`OrderBook.place` is the one entry for
every taker (the benchmark adapter drives exactly this code).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from heapq import heapify, heappop, heappush
from itertools import islice
from typing import Any, Final

from mypy_extensions import mypyc_attr

from orderbook.triggers import TriggerStore
from orderbook.types import (
    MAX_PRICE,
    BookStatistics,
    ConditionalOrder,
    Fill,
    Impact,
    OrderBookError,
    OrderRecord,
    Outcome,
    Reason,
    Removal,
    TimeInForce,
)

__all__ = ["OrderBook", "MakerCheck", "RestingOrder"]

#: An order id or client id as the caller passes it: always an int (checked), typed
#: ``Any`` where the book keeps the caller's object (the client index, the expiry index),
#: so that the compiled build does not unbox it and box a fresh one for every dict
#: operation. A :class:`RestingOrder` holds its ids unboxed: a fill record boxes a fresh
#: int (an allocation from memory in use) instead of touching the caller's int object,
#: which is cold by the time the order fills (that one touch was 10% of a deep sweep).
Id = Any

_NO_PRICE: Final = MAX_PRICE
#: The highest valid price (ticks). Bounds are checked as ``price <= _HIGHEST_PRICE``, not
#: ``price < MAX_PRICE``: compiled, ints below 2**62 are unboxed and MAX_PRICE is not, so
#: a comparison with it takes the slow (boxed) path on every order.
_HIGHEST_PRICE: Final = MAX_PRICE - 1
_GTC: Final = 0
_POST_ONLY: Final = 1
_IOC: Final = 2
_FOK: Final = 3
assert (_GTC, _POST_ONLY, _IOC, _FOK) == tuple(TimeInForce)
_RESTING: Final = Outcome.RESTING
_FILLED: Final = Outcome.FILLED
_CANCELLED_IOC: Final = Outcome.CANCELLED_IOC
_SELF_TRADE: Final = 1
_VETOED: Final = 2
_CANCELLED: Final = 0
_EXPIRED: Final = 3
assert (_CANCELLED, _SELF_TRADE, _VETOED, _EXPIRED) == (
    Reason.CANCELLED,
    Reason.SELF_TRADE,
    Reason.VETOED,
    Reason.EXPIRED,
)
_UNLIMITED: Final = 1 << 62
#: A side's keys are grouped in buckets of ``_BUCKET_KEYS = 2**_BUCKET_BITS`` consecutive
#: keys (their bitmasks stay below 2**32: small ints, unboxed when compiled).
_BUCKET_BITS: Final = 5
_BUCKET_KEYS: Final = 1 << _BUCKET_BITS
_SPARE_BUCKETS: Final = 64
#: An owner's client index is purged once its stale entries outnumber its live ones
#: ``_CLIENT_STALE_RATIO`` times over, plus ``_CLIENT_SLACK``. A purge walks every entry,
#: so the ratio is what a departed order costs: 1 + 1/ratio entries walked (at 1, with two
#: owners of 100,000 orders each, purges took 15-20% of lobbench's deep-sweep workloads).
#: Memory: at most ``ratio + 1`` entries (ints) per resting order of the owner.
_CLIENT_STALE_RATIO: Final = 8
_CLIENT_SLACK: Final = 32
#: The order index's window is thinned out once less than 1/_WINDOW_SPARSE of its slots
#: hold an order (8 bytes a slot: at most 512 bytes per order), to at least
#: 1/_WINDOW_DENSE full, unless it is at most _WINDOW_MIN slots long (see
#: :class:`_OrderIndex`).
_WINDOW_SPARSE: Final = 64
_WINDOW_DENSE: Final = 16
_WINDOW_MIN: Final = 1024
#: Matching compacts a level's queue once at least this many entries before its head have
#: left the book (and they are more than half of the queue).
_COMPACT_AT: Final = 32


@mypyc_attr(acyclic=True)
class RestingOrder:
    """One resting order. ``size`` is what is left (lots, > 0 while it rests; set to 0 the
    moment it leaves the book, which is how a level's queue tells live entries from dead
    ones). Read-only outside the book: :meth:`record` gives its canonical tuple.

    Acyclic (compiled: no garbage-collector header, never tracked): nothing an order refers
    to refers back to it, so reference counting alone frees it (see the module docstring)."""

    __slots__ = (
        "order_id",
        "owner",
        "side",
        "price",
        "time_in_force",
        "flags",
        "client_id",
        "good_til_block",
        "size",
        "holder",
        "key",
    )

    def __init__(
        self,
        order_id: int,
        owner: bytes,
        side: int,
        price: int,
        time_in_force: int,
        flags: int,
        client_id: int,
        good_til_block: int,
        size: int,
        holder: _Owner,
        key: int,
    ) -> None:
        self.order_id = order_id
        self.owner = owner
        self.side = side
        self.price = price
        self.time_in_force = time_in_force
        self.flags = flags
        self.client_id = client_id
        self.good_til_block = good_til_block
        self.size = size
        #: The book's bookkeeping for this order's owner (internal).
        self.holder = holder
        #: Its level's key (internal): the price, or minus the price for a buy.
        self.key = key

    def record(self) -> OrderRecord:
        """The canonical :data:`OrderRecord` of this order as it rests now."""
        return (
            self.order_id,
            self.owner,
            self.side,
            self.price,
            self.time_in_force,
            self.flags,
            self.client_id,
            self.good_til_block,
            self.size,
        )

    def stored(self, priority: int) -> list[object]:
        """``[priority, *record()]``, built directly: the form the exchange stores and
        hashes for every changed order of a block."""
        return [
            priority, self.order_id, self.owner, self.side, self.price, self.time_in_force,
            self.flags, self.client_id, self.good_til_block, self.size,
        ]  # fmt: skip

    def __repr__(self) -> str:
        return f"RestingOrder{self.record()!r}"


#: ``check(maker, taker_order_id, taker_owner, fill_size) -> allowed_size``, called before
#: every fill with a maker of another owner when the book has a check. ``maker`` is the
#: maker's :class:`RestingOrder` (its ``size`` is what it has left; do not mutate it);
#: ``fill_size`` is what the fill would be in lots. Return ``fill_size`` (or more) to allow
#: it; a smaller ``n >= 0`` to fill only ``n`` lots and remove the rest of the maker
#: (``Reason.VETOED``); or ``STOP_TAKER`` to leave this maker alone and cancel the taker's
#: remainder. A return ``n > 0`` commits the book to a fill of exactly ``min(n, fill_size)``
#: lots with this maker, except for a FOK taker, whose makers are all checked before
#: anything is filled: if the order cannot fill completely it is rejected after the checks
#: and nothing is filled (the check is never called twice for the same maker and taker).
MakerCheck = Callable[[RestingOrder, int, bytes, int], int]


@mypyc_attr(acyclic=True)
class _Level:
    """One price level: live volume in lots and the FIFO of its orders in time priority.

    ``queue[head:]`` is the FIFO; entries whose ``size`` is 0 left the book (cancelled:
    lazy removal) and are skipped. ``live`` counts the others. ``price`` is its price
    (ticks) as an int object, which its fill records share."""

    __slots__ = ("queue", "head", "volume", "live", "price")

    def __init__(self, price: Id) -> None:
        self.price = price
        self.queue: list[RestingOrder] = []
        self.head = 0
        self.volume = 0
        self.live = 0

    def orders(self) -> Iterator[RestingOrder]:
        """The live orders, oldest first."""
        queue = self.queue
        for i in range(self.head, len(queue)):
            order = queue[i]
            if order.size:
                yield order

    def compact(self) -> None:
        """Drop the dead entries (O(queue)); called when they outnumber the live ones."""
        self.queue = [order for order in self.orders()]
        self.head = 0


@mypyc_attr(acyclic=True)
class _Owner:
    """One owner's resting orders in a book: ``live`` counts them; ``clients`` maps each
    one's client id to its order id, among stale entries of orders that left the book or
    never rested (an entry is live iff its id is in the book's ``_orders``)."""

    __slots__ = ("clients", "live")

    def __init__(self) -> None:
        self.clients: dict[Id, Id] = {}
        self.live = 0

    def purge(self, orders: _OrderIndex) -> None:
        """Drop the entries of orders that are not in ``orders`` (O(entries); the lookups
        go by ascending id, mostly, which is cache-friendly)."""
        self.clients = {
            client_id: order_id
            for client_id, order_id in self.clients.items()
            if orders.get(order_id) is not None
        }


@mypyc_attr(acyclic=True)
class _OrderIndex:
    """The book's resting orders by order id.

    ``window[i]`` is the order with id ``base + i``, or None; ``spilled`` maps the ids of
    the other orders to them: ids too far ahead of the window when they came, or moved out
    of it when it thinned out. An id is in one of the two at most; ``held`` counts the
    window's orders. The application numbers orders in sequence, so ids mostly grow and
    the window is appended to at its end and empties from its front: finding or removing
    an order is one list access (no hashing, and no touching a dict's index, entry and key
    object: a fill or a cancel in a big book was two or three cache misses in a dict). When
    less than 1/_WINDOW_SPARSE of the window holds orders, its empty front is dropped and,
    while it is still under 1/_WINDOW_DENSE full, the orders of its older half go to
    ``spilled``: so the window costs at most _WINDOW_SPARSE slots per order it holds, an
    order pinned at its front for long goes to ``spilled``, and ids spread thinly (many
    markets sharing one sequence, say) end up in ``spilled``: a dict, as before."""

    __slots__ = ("window", "base", "held", "spilled")

    def __init__(self) -> None:
        self.window: list[RestingOrder | None] = []
        self.base = 0
        self.held = 0
        self.spilled: dict[int, RestingOrder] = {}

    def __len__(self) -> int:
        return self.held + len(self.spilled)

    def get(self, order_id: int) -> RestingOrder | None:
        """The order with this id, or None."""
        window = self.window
        i = order_id - self.base
        if 0 <= i < len(window):
            order = window[i]
            if order is not None:
                return order
        spilled = self.spilled
        return spilled.get(order_id) if spilled else None

    def add(self, order_id: int, order: RestingOrder) -> None:
        """Index ``order`` under ``order_id`` (not indexed yet)."""
        window = self.window
        i = order_id - self.base
        n = len(window)
        if 0 <= i < n:
            window[i] = order
        elif n <= i <= 2 * n + _WINDOW_MIN:  # ahead of the window, not too far: extend it
            while n < i:
                window.append(None)
                n += 1
            window.append(order)
            held = self.held + 1
            self.held = held
            if held * _WINDOW_SPARSE <= n and n >= _WINDOW_MIN:
                self._thin()
            return
        elif not self.held:  # the window is empty: start it here
            window.clear()
            self.base = order_id
            window.append(order)
        else:
            self.spilled[order_id] = order
            return
        self.held += 1

    def pop(self, order_id: int) -> RestingOrder | None:
        """Take the order with this id out of the index; None if there is none."""
        window = self.window
        i = order_id - self.base
        n = len(window)
        if 0 <= i < n:
            order = window[i]
            if order is not None:
                window[i] = None
                held = self.held - 1
                self.held = held
                if held * _WINDOW_SPARSE < n and n > _WINDOW_MIN:
                    self._thin()
                return order
        spilled = self.spilled
        return spilled.pop(order_id, None) if spilled else None

    def _thin(self) -> None:
        """Drop the window's empty front and, while it is still under 1/_WINDOW_DENSE full
        (and longer than _WINDOW_MIN), move the orders of its older half to ``spilled``.
        O(window), after O(window) removals since the window was last that full."""
        window = self.window
        n = len(window)
        start = _first_held(window, 0)
        while n - start > _WINDOW_MIN and self.held * _WINDOW_DENSE < n - start:
            half = start + (n - start) // 2
            base = self.base
            for i in range(start, half):
                order = window[i]
                if order is not None:
                    self.spilled[base + i] = order
                    self.held -= 1
            start = _first_held(window, half)
        del window[:start]
        self.base += start


def _first_held(window: list[RestingOrder | None], start: int) -> int:
    """The index of the first order in ``window`` from ``start`` (len(window) if none)."""
    n = len(window)
    while start < n and window[start] is None:
        start += 1
    return start


def _id_of(key: Id) -> int | None:
    """The order id ``key`` stands for, as a dict keyed by the ids would look it up: an int
    is itself, a number equal to an int is that int (``True`` is 1, ``5.0`` is 5), any other
    key is no id (None); an unhashable key raises TypeError. The book's lookups by id go
    through this, so the resting orders and the trigger store (whose ids are ``int``
    parameters, checked when compiled) are asked with an int: both builds answer alike."""
    return key if type(key) is int else _int_equal_to(key)


def _int_equal_to(key: object) -> int | None:
    """The int that ``key`` (not an int) is equal to as a dict key (``True`` is 1, ``5.0``
    is 5), or None; TypeError if ``key`` is unhashable, as a dict lookup raises."""
    key_hash = hash(key)
    if isinstance(key, int):
        return int(key)
    try:
        value = int(key)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return None
    return value if value == key and hash(value) == key_hash else None


@mypyc_attr(acyclic=True)
class _Bucket:
    """32 consecutive keys of a side, from ``number << 5``: ``levels[i]`` is the level at
    key ``(number << 5) + i`` or None, and bit ``i`` of ``mask`` is set iff it is a level.
    ``number`` is the very int object that keys the bucket in ``occupied`` and sits in
    ``buckets`` (boxed once)."""

    __slots__ = ("number", "mask", "levels")

    def __init__(self, number: Id) -> None:
        self.number = number
        self.mask = 0
        self.levels: list[_Level | None] = [None] * _BUCKET_KEYS

    def first_key(self) -> int:
        """The smallest key with a level in this bucket (not empty)."""
        number: int = self.number
        return (number << _BUCKET_BITS) + _lowest_bit(self.mask)


class _BookSide:
    """One side of the book. Keys are prices (asks) or minus prices (bids): smaller is better."""

    __slots__ = ("occupied", "buckets", "spare", "best", "best_bucket", "count", "sign")

    def __init__(self, sign: int) -> None:
        self.occupied: dict[int, _Bucket] = {}
        self.buckets: list[int] = []
        #: Buckets that emptied (all slots None), for new ones: in a thin book nearly every
        #: price level opens and empties a bucket (at most _SPARE_BUCKETS kept).
        self.spare: list[_Bucket] = []
        self.best: int = _NO_PRICE
        self.best_bucket: _Bucket | None = None
        #: Levels on this side.
        self.count = 0
        self.sign = sign

    def reaches(self, limit: int) -> bool:
        """True if this side has a level at a key ``<= limit`` (a taker with that limit key
        crosses). Tests for an empty side first: its best, MAX_PRICE, is a boxed int, and
        comparing with it takes the slow path."""
        return self.best_bucket is not None and self.best <= limit

    def level_at(self, key: int) -> _Level | None:
        """The level at ``key``, or None."""
        bucket = self.occupied.get(key >> _BUCKET_BITS)
        return None if bucket is None else bucket.levels[key & _BUCKET_KEYS - 1]

    def bucket_of(self, key: int) -> _Bucket:
        """The bucket of ``key``, which has a level."""
        return self.occupied[key >> _BUCKET_BITS]

    def level_for(self, key: int) -> _Level:
        """The level at ``key``, opened (empty) if there is none."""
        number: Id = key >> _BUCKET_BITS
        slot = key & _BUCKET_KEYS - 1
        bucket = self.occupied.get(number)
        if bucket is None:
            spare = self.spare
            if spare:
                bucket = spare.pop()
                bucket.number = number
            else:
                bucket = _Bucket(number)
            self.occupied[number] = bucket
            _push(self.buckets, number)
        else:
            level = bucket.levels[slot]
            if level is not None:
                return level
        level = _Level(key * self.sign)
        bucket.levels[slot] = level
        bucket.mask |= 1 << slot
        self.count += 1
        if self.best_bucket is None or key < self.best:
            self.best = key
            self.best_bucket = bucket
        return level

    def drop_level(self, bucket: _Bucket, key: int) -> None:
        """Forget the (now empty) level at ``key`` in ``bucket``, keeping ``best``,
        ``best_bucket`` and the bucket invariants."""
        slot = key & _BUCKET_KEYS - 1
        bucket.levels[slot] = None
        mask = bucket.mask & ~(1 << slot)
        bucket.mask = mask
        self.count -= 1
        if mask:
            if key == self.best:  # the next key of the same bucket
                self.best = bucket.first_key()
            return
        occupied = self.occupied
        del occupied[bucket.number]
        if len(self.spare) < _SPARE_BUCKETS:
            self.spare.append(bucket)
        buckets = self.buckets
        if key == self.best:  # the first key of the next bucket
            _pop(buckets)
            while buckets and buckets[0] not in occupied:
                _pop(buckets)
            if buckets:
                best_bucket = occupied[buckets[0]]
                self.best_bucket = best_bucket
                self.best = best_bucket.first_key()
            else:
                self.best_bucket = None
                self.best = _NO_PRICE
        elif len(buckets) > 2 * len(occupied) + 64:
            buckets[:] = occupied
            heapify(buckets)

    def levels_in_order(self) -> Iterator[tuple[int, _Level]]:
        """(key, level) from best to worst, lazily."""
        for number, bucket in sorted(self.occupied.items()):
            base = number << _BUCKET_BITS
            mask = bucket.mask
            levels = bucket.levels
            while mask:
                slot = _lowest_bit(mask)
                mask &= mask - 1
                level = levels[slot]
                assert level is not None
                yield base + slot, level

    def total_volume(self) -> int:
        """Lots resting on this side."""
        total = 0
        for bucket in self.occupied.values():
            for level in bucket.levels:
                if level is not None:
                    total += level.volume
        return total


def _push(heap: list[Id], item: Id) -> None:
    """``heapq.heappush`` for a heap of ints (``item`` is one), comparing them unboxed:
    compiled, twice as fast as heapq's generic comparisons."""
    heap.append(item)
    key: int = item
    pos = len(heap) - 1
    while pos:
        parent = (pos - 1) >> 1
        above = heap[parent]
        above_key: int = above
        if key >= above_key:
            break
        heap[pos] = above
        pos = parent
    heap[pos] = item


def _pop(heap: list[Id]) -> None:
    """``heapq.heappop`` (the same algorithm, result dropped) for a heap of ints, comparing
    them unboxed."""
    last = heap.pop()
    size = len(heap)
    if not size:
        return
    key: int = last
    pos = 0
    child = 1
    while child < size:  # move the smaller child up, down to a leaf
        right = child + 1
        if right < size:
            left_key: int = heap[child]
            right_key: int = heap[right]
            if right_key <= left_key:
                child = right
        heap[pos] = heap[child]
        pos = child
        child = 2 * pos + 1
    while pos:  # then the last item up from that leaf to its place
        parent = (pos - 1) >> 1
        above = heap[parent]
        above_key: int = above
        if key >= above_key:
            break
        heap[pos] = above
        pos = parent
    heap[pos] = last


def _lowest_bit(mask: int) -> int:
    """The index of the lowest set bit of ``mask`` (> 0)."""
    return (mask & -mask).bit_length() - 1


class OrderBook:
    """The order book of one market: resting orders, their indexes, and the trigger store.

    Matching output accumulates in ``fills`` (list of :data:`Fill`) and ``removals`` (list of
    :data:`Removal` for makers expired by self-trade prevention or vetoed by the check), in
    the order it happened; the application takes them with :meth:`take_fills` and
    :meth:`take_removals` (or clears the lists) after each order or block.

    ``maker_check`` (a :data:`MakerCheck` or None) and ``max_makers`` (how many makers one
    taker may reach: filled, expired or vetoed) may be changed between calls. Order ids are
    the application's and are never reused over the life of the book.
    """

    __slots__ = (
        "_orders",
        "_bids",
        "_asks",
        "_by_owner",
        "_expiry",
        "_expiry_heights",
        "_stopped",
        "_conditional_owners",
        "triggers",
        "fills",
        "removals",
        "maker_check",
        "max_makers",
    )

    def __init__(
        self, maker_check: MakerCheck | None = None, max_makers: int | None = None
    ) -> None:
        self._orders = _OrderIndex()
        self._bids = _BookSide(-1)
        self._asks = _BookSide(1)
        self._by_owner: dict[bytes, _Owner] = {}
        self._expiry: dict[int, list[int]] = {}
        self._expiry_heights: list[int] = []
        self._stopped = Outcome.CANCELLED_MAKER_LIMIT
        self.triggers = TriggerStore()
        self._conditional_owners = self.triggers.owners
        self.fills: list[Fill] = []
        self.removals: list[Removal] = []
        self.maker_check: MakerCheck | None = maker_check
        self.max_makers = _UNLIMITED if max_makers is None else max_makers

    # ------------------------------------------------------------------ taking orders

    def place(
        self,
        order_id: Id,
        owner: bytes,
        side: int,
        price: int,
        size: int,
        time_in_force: int = _GTC,
        flags: int = 0,
        client_id: Id = 0,
        good_til_block: int = 0,
    ) -> Outcome:
        """Submit an order (price in ticks, size in lots): match it, then rest or cancel the
        remainder according to ``time_in_force``. Fills and maker removals are appended to
        ``fills`` and ``removals``; the taker's fate is the returned :class:`Outcome`.

        Rejections mutate nothing. Self-trade prevention expires the resting maker and
        carries on. A GTC/post-only order's ``(owner, client_id)`` must not be open already;
        IOC/FOK orders never rest, so their client id is not checked. ``order_id`` must
        never have been used in this book before (only open ids are detected); order and
        client ids must be ``int`` (the book keeps the caller's objects). ``side`` is
        0/1 (or a bool or :class:`Side`), ``time_in_force`` a :class:`TimeInForce` value
        (both are stored as plain ints). A resting order may fill in later blocks until
        ``good_til_block`` (0 = no expiry) has passed :meth:`expire`.
        """
        orders = self._orders
        if (
            not _is_int(order_id)
            or not _is_int(client_id)
            or size <= 0
            or not 0 < price <= _HIGHEST_PRICE
            or orders.get(order_id) is not None
        ):
            return self._invalid(order_id)
        if not _GTC <= time_in_force <= _FOK:
            return Outcome.REJECTED_INVALID
        time_in_force += 0  # a plain int, even when given a TimeInForce
        side = 1 if side else 0
        holder = self._by_owner.get(owner)
        indexed: _Owner | None = None  # the holder whose client index has client_id -> order_id
        if time_in_force < _IOC:
            if holder is not None:
                # One dict operation for the check and the insert: an entry for an order
                # that does not rest in the end is just stale (see the module docstring).
                same: Id = holder.clients.setdefault(client_id, order_id)
                if same is order_id:
                    indexed = holder
                elif orders.get(same) is not None:
                    return Outcome.REJECTED_DUPLICATE_CLIENT_ID
            if self._conditional_owners and self._is_conditional_client(owner, client_id):
                return Outcome.REJECTED_DUPLICATE_CLIENT_ID
        if side:
            opposite = self._asks
            limit = price
        else:
            opposite = self._bids
            limit = -price
        if opposite.reaches(limit):
            if time_in_force == _POST_ONLY:
                return Outcome.REJECTED_POST_ONLY
            check = self.maker_check
            if time_in_force == _FOK:
                plan = self._plan_fill_or_kill(opposite, limit, order_id, owner, size, check)
                if plan is None:
                    return Outcome.REJECTED_FOK
                if check is not None:
                    check = _replay(plan)
            size = self._match(opposite, limit, order_id, owner, side, size, check)
            if not size:
                return _FILLED
            if opposite.reaches(limit):
                return self._stopped
            holder = self._by_owner.get(owner)  # self-trade prevention may have removed it
        if time_in_force >= _IOC:
            return _CANCELLED_IOC
        if side:
            own = self._bids
            key = -price
        else:
            own = self._asks
            key = price
        if holder is None:
            holder = self._by_owner[owner] = _Owner()
        elif len(holder.clients) > (_CLIENT_STALE_RATIO + 1) * holder.live + _CLIENT_SLACK:
            holder.purge(orders)  # drops this order's entry too: it is not resting yet
            indexed = None
        level = own.level_for(key)
        order = RestingOrder(
            order_id,
            owner,
            side,
            price,
            time_in_force,
            flags | 0,
            client_id,
            good_til_block,
            size,
            holder,
            key,
        )
        level.queue.append(order)
        level.volume += size
        level.live += 1
        orders.add(order_id, order)
        if holder is not indexed:
            holder.clients[client_id] = order_id
        holder.live += 1
        if good_til_block:
            self._index_expiry(order_id, good_til_block)
        return _RESTING

    def _invalid(self, order_id: Id) -> Outcome:
        if order_id in self:
            return Outcome.REJECTED_DUPLICATE_ORDER_ID
        return Outcome.REJECTED_INVALID

    def _is_conditional_client(self, owner: bytes, client_id: int) -> bool:
        return self.triggers.order_id_for_client(owner, client_id) is not None

    def _match(
        self,
        opposite: _BookSide,
        limit: int,
        taker_id: Id,
        taker_owner: bytes,
        taker_side: int,
        size: int,
        check: MakerCheck | None,
    ) -> int:
        """Fill ``size`` lots against ``opposite`` at keys ``<= limit``, best first, oldest
        first; return the unfilled lots. Stops early (with the book still crossing and
        ``_stopped`` set) when ``max_makers`` is reached or the check says ``STOP_TAKER``.
        """
        orders = self._orders
        fills = self.fills
        makers_left = self.max_makers
        best = opposite.best
        while best <= limit:
            bucket = opposite.best_bucket
            assert bucket is not None
            level = bucket.levels[best & _BUCKET_KEYS - 1]
            assert level is not None
            queue = level.queue
            price = level.price  # the makers' price: one int object for all their fills
            head = level.head
            while True:
                maker = queue[head]
                maker_size = maker.size
                if not maker_size:  # cancelled earlier: skip it for good
                    head += 1
                    continue
                if not makers_left:
                    level.head = head
                    self._stopped = Outcome.CANCELLED_MAKER_LIMIT
                    return size
                makers_left -= 1
                maker_owner = maker.owner
                if maker_owner != taker_owner and check is None:  # a plain fill
                    if size < maker_size:  # the taker is done, the maker stays
                        left = maker_size - size
                        fills.append(
                            (
                                maker.order_id,
                                maker_owner,
                                taker_id,
                                taker_owner,
                                taker_side,
                                price,
                                size,
                                left,
                            )
                        )
                        maker.size = left
                        level.volume -= size
                        level.head = head
                        return 0
                    fills.append(
                        (
                            maker.order_id,
                            maker_owner,
                            taker_id,
                            taker_owner,
                            taker_side,
                            price,
                            maker_size,
                            0,
                        )
                    )
                    size -= maker_size
                else:
                    fill = self._fill_or_remove(
                        maker, taker_id, taker_owner, taker_side, size, check
                    )
                    if fill < 0:
                        level.head = head
                        return size
                    size -= fill
                    if fill < maker_size and maker.size:  # the taker is done, the maker stays
                        maker.size = maker_size - fill
                        level.volume -= fill
                        level.head = head
                        return 0
                # The maker leaves the book: filled, expired by STP or vetoed. Its entry in
                # its owner's client index goes stale (see the module docstring).
                maker.size = 0
                head += 1
                orders.pop(maker.order_id)
                holder = maker.holder
                holder.live -= 1
                if not holder.live:
                    del self._by_owner[maker_owner]
                level.live -= 1
                level.volume -= maker_size
                if not level.volume:
                    opposite.drop_level(bucket, best)
                    best = opposite.best
                    break
                if not size:
                    level.head = head
                    if head >= _COMPACT_AT and head * 2 > len(queue):
                        level.compact()
                    return 0
            if not size:
                return 0
        return size

    def _fill_or_remove(
        self,
        maker: RestingOrder,
        taker_id: Id,
        taker_owner: bytes,
        taker_side: int,
        size: int,
        check: MakerCheck | None,
    ) -> int:
        """The uncommon step of :meth:`_match`: the maker is the taker's own (self-trade
        prevention) or the check has a say. Returns the lots filled with this maker,
        appending the fill and removal records, and marks a maker removed unfilled or
        part-filled by setting its ``size`` to 0; or -1 (with ``_stopped`` set) if the
        check stops the taker."""
        maker_size = maker.size
        if maker.owner == taker_owner:
            self.removals.append((maker.order_id, maker.owner, _SELF_TRADE, maker_size))
            maker.size = 0
            return 0
        assert check is not None
        fill = maker_size if maker_size < size else size
        allowed = check(maker, taker_id, taker_owner, fill)
        if allowed < 0:
            self._stopped = Outcome.CANCELLED_BY_CHECK
            return -1
        vetoed = allowed < fill
        if vetoed:
            fill = allowed
        if fill:
            self.fills.append(
                (
                    maker.order_id,
                    maker.owner,
                    taker_id,
                    taker_owner,
                    taker_side,
                    maker.price,
                    fill,
                    0 if vetoed else maker_size - fill,
                )
            )
        if vetoed:
            self.removals.append((maker.order_id, maker.owner, _VETOED, maker_size - fill))
            maker.size = 0
        return fill

    def _plan_fill_or_kill(
        self,
        opposite: _BookSide,
        limit: int,
        taker_id: Id,
        taker_owner: bytes,
        size: int,
        check: MakerCheck | None,
    ) -> list[int] | None:
        """Walk the makers a FOK taker would reach, without mutating anything, exactly as
        :meth:`_match` would; return the check's answers in order (empty without a check),
        or None if the taker would not fill completely."""
        answers: list[int] = []
        makers_left = self.max_makers
        for key, level in opposite.levels_in_order():
            if key > limit:
                return None
            for maker in level.orders():
                if not makers_left:
                    return None
                makers_left -= 1
                if maker.owner == taker_owner:
                    continue
                fill = min(maker.size, size)
                if check is not None:
                    allowed = check(maker, taker_id, taker_owner, fill)
                    if allowed < 0:
                        return None
                    answers.append(allowed)
                    fill = min(fill, allowed)
                size -= fill
                if not size:
                    return answers
        return None

    # ------------------------------------------------------------------ removing orders

    def cancel(self, order_id: Id) -> int:
        """Cancel a resting or conditional order by id (O(1) resting, O(log n) conditional).

        Returns the lots removed, 0 if no such order is open."""
        key = _id_of(order_id)
        if key is None:
            return 0
        order = self._orders.pop(key)
        if order is None:
            conditional = self.triggers.remove(key)
            return 0 if conditional is None else conditional.size
        holder = order.holder
        holder.live -= 1
        if not holder.live:
            del self._by_owner[order.owner]
        size = order.size
        order.size = 0
        own = self._bids if order.side else self._asks
        key = order.key
        bucket = own.bucket_of(key)
        level = bucket.levels[key & _BUCKET_KEYS - 1]
        assert level is not None
        live = level.live - 1
        if not live:
            own.drop_level(bucket, key)
            return size
        level.live = live
        level.volume -= size
        if len(level.queue) - level.head > 2 * live + 16:
            level.compact()
        return size

    def cancel_by_client_id(self, owner: bytes, client_id: int) -> int:
        """Cancel ``owner``'s open order with ``client_id`` (resting or conditional), O(1).

        Returns the lots removed, 0 if none is open."""
        order_id = self.order_id_for_client(owner, client_id)
        return 0 if order_id is None else self.cancel(order_id)

    def cancel_all(self, owner: bytes) -> list[Removal]:
        """Cancel every open order of ``owner``, resting and conditional, by ascending id."""
        removed: list[Removal] = []
        for order_id in sorted(self.order_ids_of(owner) + self.triggers.order_ids_of(owner)):
            removed.append((order_id, owner, _CANCELLED, self.cancel(order_id)))
        return removed

    def resize(self, order_id: Id, size: int) -> int:
        """Shrink an open order to ``size`` lots in place, keeping its time priority
        (``size == 0`` cancels it). Used to keep reduce-only orders within the position.

        Returns the lots removed (0 if the order is not open). Growing an order is refused
        with OrderBookError: that is a cancel and a new order, which loses priority."""
        key = _id_of(order_id)
        if key is None:
            return 0
        order = self._orders.get(key)
        if order is None:
            conditional = self.triggers.get(key)
            if conditional is None:
                return 0
            current = conditional.size
        else:
            current = order.size
        if not 0 <= size <= current:
            raise OrderBookError(f"order {order_id}: cannot resize {current} lots to {size}")
        if size == 0:
            return self.cancel(key)
        if order is None:
            self.triggers.resize(key, size)
        else:
            order.size = size
            own = self._bids if order.side else self._asks
            level = own.level_at(order.key)
            assert level is not None
            level.volume -= current - size
        return current - size

    def expire(self, height: int) -> list[Removal]:
        """Remove every open order (resting or conditional) whose good_til_block is in
        ``1..height``: call it at the end of block ``height``. An order is good through its
        good_til_block. Removals come by height, then ascending order id."""
        removed: list[Removal] = []
        heights = self._expiry_heights
        while heights and heights[0] <= height:
            expiring = heappop(heights)
            for order_id in sorted(self._expiry.pop(expiring)):
                order = self._orders.get(order_id)
                if order is not None and order.good_til_block == expiring:
                    owner = order.owner
                else:
                    conditional = self.triggers.get(order_id)
                    if conditional is None or conditional.good_til_block != expiring:
                        continue
                    owner = conditional.owner
                removed.append((order_id, owner, _EXPIRED, self.cancel(order_id)))
        return removed

    def _index_expiry(self, order_id: Id, good_til_block: int) -> None:
        expiring = self._expiry.get(good_til_block)
        if expiring is None:
            self._expiry[good_til_block] = [order_id]
            heappush(self._expiry_heights, good_til_block)
        else:
            expiring.append(order_id)

    # ------------------------------------------------------------------ conditional orders

    def add_conditional(self, order: ConditionalOrder) -> Outcome:
        """Hold a stop / take-profit order in the trigger store until :meth:`trigger` fires it.

        Also how conditional orders are restored. Rejections (duplicate order id or
        client id, invalid size or trigger price) mutate nothing. Returns ``RESTING``."""
        if order.order_id in self:
            return Outcome.REJECTED_DUPLICATE_ORDER_ID
        if order.size <= 0 or not 0 < order.trigger_price <= _HIGHEST_PRICE:
            return Outcome.REJECTED_INVALID
        if self.order_id_for_client(order.owner, order.client_id) is not None:
            return Outcome.REJECTED_DUPLICATE_CLIENT_ID
        self.triggers.add(order)
        if order.good_til_block:
            self._index_expiry(order.order_id, order.good_til_block)
        return _RESTING

    def trigger(self, oracle_price: int) -> list[ConditionalOrder]:
        """Remove and return the conditional orders the oracle price (ticks) fires, in the
        deterministic order of :meth:`TriggerStore.fire`; the application then submits each
        with :meth:`place`."""
        return self.triggers.fire(oracle_price)

    def conditional_orders(self) -> Iterator[ConditionalOrder]:
        """Every held conditional order (for snapshots), in a canonical order."""
        return iter(self.triggers)

    # ------------------------------------------------------------------ queries

    def best_bid(self) -> int | None:
        """Highest resting buy price in ticks, or None."""
        best = self._bids.best
        return None if best == _NO_PRICE else -best

    def best_ask(self) -> int | None:
        """Lowest resting sell price in ticks, or None."""
        best = self._asks.best
        return None if best == _NO_PRICE else best

    def depth(self, side: int, levels: int) -> list[tuple[int, int]]:
        """The best ``levels`` price levels of ``side``: (price ticks, total size lots)."""
        own = self._bids if side else self._asks
        sign = own.sign
        return [(key * sign, level.volume) for key, level in islice(own.levels_in_order(), levels)]

    def volume(self, side: int) -> int:
        """Total resting size in lots on ``side``."""
        own = self._bids if side else self._asks
        return own.total_volume()

    def impact(self, taker_side: int, size: int) -> Impact | None:
        """What a taker on ``taker_side`` would pay to fill ``size`` lots now, ignoring
        self-trade and checks: worst price and notional (tick-lots). None if too thin."""
        if size <= 0:
            raise OrderBookError(f"impact of a non-positive size: {size}")
        opposite = self._asks if taker_side else self._bids
        sign = opposite.sign
        wanted = size
        notional = 0
        for key, level in opposite.levels_in_order():
            take = min(level.volume, wanted)
            notional += take * key * sign
            wanted -= take
            if not wanted:
                return Impact(key * sign, size, notional)
        return None

    def impact_for_notional(self, taker_side: int, notional: int) -> Impact | None:
        """Like :meth:`impact`, for the fewest whole lots whose cost reaches ``notional``
        tick-lots (funding's impact notional). None if the book is too thin."""
        if notional <= 0:
            raise OrderBookError(f"impact of a non-positive notional: {notional}")
        opposite = self._asks if taker_side else self._bids
        sign = opposite.sign
        size = 0
        cost = 0
        for key, level in opposite.levels_in_order():
            price = key * sign
            volume = level.volume
            needed = -(-(notional - cost) // price)  # lots to reach the notional, rounded up
            if needed <= volume:
                return Impact(price, size + needed, cost + needed * price)
            size += volume
            cost += volume * price
        return None

    def resting(self, order_id: Id) -> RestingOrder | None:
        """The resting order with this id (read-only: do not mutate it), or None."""
        key = _id_of(order_id)
        return None if key is None else self._orders.get(key)

    def order(self, order_id: Id) -> OrderRecord | None:
        """Canonical record of the resting order with this id, or None."""
        order = self.resting(order_id)
        return None if order is None else order.record()

    def __contains__(self, order_id: Id) -> bool:
        """True if an order with this id is open (resting or conditional)."""
        key = _id_of(order_id)
        return key is not None and (self._orders.get(key) is not None or key in self.triggers)

    def __len__(self) -> int:
        """Number of resting orders (conditional orders not included)."""
        return len(self._orders)

    def order_id_for_client(self, owner: bytes, client_id: int) -> int | None:
        """Id of ``owner``'s open order (resting or conditional) with ``client_id``, O(1)."""
        holder = self._by_owner.get(owner)
        if holder is not None:
            order_id: int | None = holder.clients.get(client_id)
            if order_id is not None and self._orders.get(order_id) is not None:
                return order_id
        return self.triggers.order_id_for_client(owner, client_id)

    def order_ids_of(self, owner: bytes) -> list[int]:
        """Ids of ``owner``'s resting orders, ascending (= placement order, since the
        application assigns ids in order). Independent of restore history."""
        holder = self._by_owner.get(owner)
        if holder is None:
            return []
        orders = self._orders
        return sorted(
            [order_id for order_id in holder.clients.values() if orders.get(order_id) is not None]
        )

    def open_order_count(self, owner: bytes) -> int:
        """Resting plus conditional orders of ``owner`` (for the per-account cap)."""
        holder = self._by_owner.get(owner)
        held = self._conditional_owners.get(owner)
        return (0 if holder is None else holder.live) + (0 if held is None else len(held))

    def statistics(self) -> BookStatistics:
        """Counts for metrics."""
        return BookStatistics(
            resting_orders=len(self._orders),
            bid_levels=self._bids.count,
            ask_levels=self._asks.count,
            conditional_orders=len(self.triggers),
        )

    # ------------------------------------------------------------------ output buffers

    def take_fills(self) -> list[Fill]:
        """The fills since the last take, oldest first; the buffer starts empty again."""
        fills = self.fills
        self.fills = []
        return fills

    def take_removals(self) -> list[Removal]:
        """The maker removals (STP, vetoes) since the last take, oldest first."""
        removals = self.removals
        self.removals = []
        return removals

    # ------------------------------------------------------------------ snapshot / restore

    def resting_orders(self) -> Iterator[OrderRecord]:
        """Every resting order in priority order: bids best first, then asks best first,
        oldest first within a level. Re-inserting them in this order with
        :meth:`insert_resting` rebuilds the same book."""
        for own in (self._bids, self._asks):
            for _, level in own.levels_in_order():
                for order in level.orders():
                    yield order.record()

    def insert_resting(self, record: OrderRecord) -> None:
        """Append a resting order at the back of its level without matching (restore).

        Raises OrderBookError, mutating nothing, if the record is invalid, its id or client
        id is already open, or it would cross the book."""
        order_id, owner, side, price, time_in_force, flags, client_id, good_til, size = record
        if size <= 0 or not 0 < price <= _HIGHEST_PRICE or not 0 <= time_in_force < _IOC:
            raise OrderBookError(f"order {order_id}: not a restable order: {record!r}")
        if order_id in self:
            raise OrderBookError(f"order {order_id}: already open")
        if self.order_id_for_client(owner, client_id) is not None:
            raise OrderBookError(f"order {order_id}: client id {client_id} already open")
        if (self._asks if side else self._bids).best <= (price if side else -price):
            raise OrderBookError(f"order {order_id}: would cross the book")
        outcome = self.place(
            order_id, owner, side, price, size, time_in_force, flags, client_id, good_til
        )
        assert outcome == _RESTING, outcome


def _is_int(value: Id) -> bool:
    """``type(value) is int``, as a call: written inline, the check would narrow ``value``
    to ``int``, and the compiled build would then unbox the id and box it again."""
    return type(value) is int


def _replay(answers: list[int]) -> MakerCheck:
    """A maker check that returns recorded answers in order (FOK fills after its plan)."""
    pending = iter(answers)

    def replay(maker: RestingOrder, taker_id: int, taker_owner: bytes, fill: int) -> int:
        return next(pending)

    return replay
