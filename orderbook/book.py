"""Price-time-priority limit order book of one market: the exchange's matching engine.

Pure and deterministic: integers and bytes only, no clock, no randomness, no I/O, no
iteration whose order came from outside the chain. Prices in ticks, sizes in lots.

State and its invariants (checked by tests/orderbook against a slow reference):

- ``_orders`` maps every resting order id to its canonical
  :data:`~orderbook.types.OrderRecord`, a tuple of ints and bytes (so the garbage collector
  stops tracking it) whose last field is the remaining size in lots (> 0). A partial fill
  or a resize replaces the tuple.
- Each side keeps ``levels``, a dict from *key* to :class:`_Level`, where the key is the
  price for asks and minus the price for bids, so that on both sides a smaller key is a
  better price and "crosses" is ``best_key <= limit_key``. ``keys`` is a min-heap holding
  every key of ``levels`` (plus stale keys of dropped levels, dropped lazily);
  ``keys[0] == best`` is always a live level, or ``best == MAX_PRICE`` when the side is
  empty.
- A level's ``volume`` is the sum of its live orders' sizes (lots), so it is empty iff
  ``volume == 0``; its FIFO ``queue`` holds the ids of its live orders in time priority,
  interleaved with ``dead`` ids of cancelled orders (lazy cancellation): an id is live iff
  it is in ``_orders``. Order ids are therefore never reused over the life of a book (the
  application assigns them from a counter). Cancels compact a queue once its dead ids
  outnumber the live ones.
- A level exists iff it has a live order: matching and cancels drop empty levels at once,
  so ``best`` is always a real price and the book is never crossed after an operation.
- ``_by_owner[owner][client_id]`` is the order id of each resting order: the per-owner
  index (cap on open orders, cancel-all, reduce-only resizing) and the client-id index.
- ``_expiry[height]`` lists ids of orders whose good_til_block is ``height``; stale ids
  (orders gone earlier) are skipped when the height is expired.

The matching loop is :meth:`OrderBook._match`; :meth:`OrderBook.place` is the one entry for
every taker (the benchmark adapter drives exactly this code).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from heapq import heapify, heappop, heappush
from itertools import islice

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

__all__ = ["OrderBook", "MakerCheck"]

#: ``check(maker, taker_order_id, taker_owner, fill_size) -> allowed_size``, called before
#: every fill with a maker of another owner when the book has a check. ``maker`` is the
#: maker's :data:`OrderRecord` (its size is what it has left); ``fill_size`` is what the
#: fill would be in lots. Return ``fill_size`` (or more) to allow it; a smaller ``n >= 0``
#: to fill only ``n`` lots and remove the rest of the maker (``Reason.VETOED``); or
#: ``STOP_TAKER`` to leave this maker alone and cancel the taker's remainder. A return
#: ``n > 0`` commits the book to a fill of exactly ``min(n, fill_size)`` lots with this
#: maker, except for a FOK taker, whose makers are all checked before anything is filled:
#: if the order cannot fill completely it is rejected after the checks and nothing is
#: filled (the check is never called twice for the same maker and taker).
MakerCheck = Callable[[OrderRecord, int, bytes, int], int]

_NO_PRICE = MAX_PRICE
_GTC = int(TimeInForce.GTC)
_POST_ONLY = int(TimeInForce.POST_ONLY)
_IOC = int(TimeInForce.IOC)
_FOK = int(TimeInForce.FOK)
#: Indexing these turns a side (bool, int or Side) or a time in force (int or TimeInForce)
#: into a plain int: records must hold no enum members, which the garbage collector tracks.
_PLAIN_SIDE = (0, 1)
_PLAIN_TIME_IN_FORCE = (_GTC, _POST_ONLY, _IOC, _FOK)
_RESTING = Outcome.RESTING
_FILLED = Outcome.FILLED
_SELF_TRADE = int(Reason.SELF_TRADE)
_VETOED = int(Reason.VETOED)
_UNLIMITED = 1 << 62


class _Level:
    """One price level: live volume in lots, FIFO of order ids, count of dead ids in it."""

    __slots__ = ("queue", "volume", "dead")

    def __init__(self, order_id: int, size: int) -> None:
        self.queue: deque[int] = deque((order_id,))
        self.volume = size
        self.dead = 0


class _BookSide:
    """One side of the book. Keys are prices (asks) or minus prices (bids): smaller is better."""

    __slots__ = ("levels", "keys", "best", "sign")

    def __init__(self, sign: int) -> None:
        self.levels: dict[int, _Level] = {}
        self.keys: list[int] = []
        self.best: int = _NO_PRICE
        self.sign = sign

    def drop_level(self, key: int) -> None:
        """Forget the (now empty) level at ``key``, keeping ``best`` and the heap invariant."""
        levels = self.levels
        del levels[key]
        keys = self.keys
        if key == self.best:
            heappop(keys)
            while keys and keys[0] not in levels:
                heappop(keys)
            self.best = keys[0] if keys else _NO_PRICE
        elif len(keys) > 2 * len(levels) + 64:
            keys[:] = levels
            heapify(keys)

    def keys_in_order(self) -> Iterator[int]:
        """Live keys from best to worst, lazily (O(levels) copy + O(log) per key taken)."""
        heap = self.keys.copy()
        levels = self.levels
        last = None
        while heap:
            key = heappop(heap)
            if key != last and key in levels:
                last = key
                yield key


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
        self._orders: dict[int, OrderRecord] = {}
        self._bids = _BookSide(-1)
        self._asks = _BookSide(1)
        self._by_owner: dict[bytes, dict[int, int]] = {}
        self._expiry: dict[int, list[int]] = {}
        self._expiry_heights: list[int] = []
        self._stopped = Outcome.CANCELLED_MAKER_LIMIT
        self.triggers = TriggerStore()
        self._conditional_owners = self.triggers.owners
        self.fills: list[Fill] = []
        self.removals: list[Removal] = []
        self.maker_check = maker_check
        self.max_makers = _UNLIMITED if max_makers is None else max_makers

    # ------------------------------------------------------------------ taking orders

    def place(
        self,
        order_id: int,
        owner: bytes,
        side: int,
        price: int,
        size: int,
        time_in_force: int = _GTC,
        flags: int = 0,
        client_id: int = 0,
        good_til_block: int = 0,
    ) -> Outcome:
        """Submit an order (price in ticks, size in lots): match it, then rest or cancel the
        remainder according to ``time_in_force``. Fills and maker removals are appended to
        ``fills`` and ``removals``; the taker's fate is the returned :class:`Outcome`.

        Rejections mutate nothing. Self-trade prevention expires the resting maker and
        carries on. A GTC/post-only order's ``(owner, client_id)`` must not be open already;
        IOC/FOK orders never rest, so their client id is not checked. ``order_id`` must
        never have been used in this book before (only open ids are detected). ``side`` is
        0/1 (or a bool or :class:`Side`), ``time_in_force`` a :class:`TimeInForce` value
        (the application decodes them; both are stored as plain ints). A resting order may fill in later blocks until ``good_til_block`` (0 = no
        expiry) has passed :meth:`expire`.
        """
        orders = self._orders
        if order_id in orders or size <= 0 or not 0 < price < _NO_PRICE:
            return self._invalid(order_id)
        time_in_force = _PLAIN_TIME_IN_FORCE[time_in_force]
        side = _PLAIN_SIDE[side]
        owned = self._by_owner.get(owner)
        if time_in_force < _IOC and (
            (owned is not None and client_id in owned)
            or (self._conditional_owners and self._is_conditional_client(owner, client_id))
        ):
            return Outcome.REJECTED_DUPLICATE_CLIENT_ID
        if side:
            opposite = self._asks
            limit = price
        else:
            opposite = self._bids
            limit = -price
        if opposite.best <= limit:
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
            if opposite.best <= limit:
                return self._stopped
            owned = self._by_owner.get(owner)  # self-trade prevention may have emptied it
        if time_in_force >= _IOC:
            return Outcome.CANCELLED_IOC
        if side:
            own = self._bids
            key = -price
        else:
            own = self._asks
            key = price
        orders[order_id] = (
            order_id,
            owner,
            side,
            price,
            time_in_force,
            flags | 0,
            client_id,
            good_til_block,
            size,
        )
        if owned is None:
            self._by_owner[owner] = {client_id: order_id}
        else:
            owned[client_id] = order_id
        level = own.levels.get(key)
        if level is None:
            own.levels[key] = _Level(order_id, size)
            heappush(own.keys, key)
            if key < own.best:
                own.best = key
        else:
            level.queue.append(order_id)
            level.volume += size
        if good_til_block:
            self._index_expiry(order_id, good_til_block)
        return _RESTING

    def _invalid(self, order_id: int) -> Outcome:
        if order_id in self:
            return Outcome.REJECTED_DUPLICATE_ORDER_ID
        return Outcome.REJECTED_INVALID

    def _is_conditional_client(self, owner: bytes, client_id: int) -> bool:
        return self.triggers.order_id_for_client(owner, client_id) is not None

    def _match(
        self,
        opposite: _BookSide,
        limit: int,
        taker_id: int,
        taker_owner: bytes,
        taker_side: int,
        size: int,
        check: MakerCheck | None,
    ) -> int:
        """Fill ``size`` lots against ``opposite`` at keys ``<= limit``, best first, oldest
        first; return the unfilled lots. Stops early (with the book still crossing and
        ``_stopped`` set) when ``max_makers`` is reached or the check says ``STOP_TAKER``.
        """
        levels = opposite.levels
        orders = self._orders
        add_fill = self.fills.append
        makers_left = self.max_makers
        best = opposite.best
        while best <= limit:
            level = levels[best]
            queue = level.queue
            while True:
                maker_id = queue[0]
                maker = orders.get(maker_id)
                if maker is None:
                    queue.popleft()
                    level.dead -= 1
                    continue
                if not makers_left:
                    self._stopped = Outcome.CANCELLED_MAKER_LIMIT
                    return size
                makers_left -= 1
                maker_size = maker[8]
                if maker[1] != taker_owner and check is None:  # the common case: a plain fill
                    if size < maker_size:  # the taker is done, the maker stays
                        add_fill(
                            (
                                maker_id,
                                maker[1],  # owner
                                taker_id,
                                taker_owner,
                                taker_side,
                                maker[3],  # price
                                size,
                                maker_size - size,
                            )
                        )
                        orders[maker_id] = maker[:8] + (maker_size - size,)
                        level.volume -= size
                        return 0
                    add_fill(
                        (
                            maker_id,
                            maker[1],
                            taker_id,
                            taker_owner,
                            taker_side,
                            maker[3],
                            maker_size,
                            0,
                        )
                    )
                    size -= maker_size
                else:
                    step = self._fill_or_remove(
                        maker, taker_id, taker_owner, taker_side, size, check
                    )
                    if step is None:
                        return size
                    fill, removed = step
                    size -= fill
                    if not removed and fill < maker_size:  # the taker is done, the maker stays
                        orders[maker_id] = maker[:8] + (maker_size - fill,)
                        level.volume -= fill
                        return 0
                # The maker leaves the book: filled, expired by STP or vetoed.
                queue.popleft()
                del orders[maker_id]
                owned = self._by_owner[maker[1]]
                del owned[maker[6]]  # client_id
                if not owned:
                    del self._by_owner[maker[1]]
                level.volume -= maker_size
                if not level.volume:
                    opposite.drop_level(best)
                    best = opposite.best
                    break
                if not size:
                    return 0
            if not size:
                return 0
        return size

    def _fill_or_remove(
        self,
        maker: OrderRecord,
        taker_id: int,
        taker_owner: bytes,
        taker_side: int,
        size: int,
        check: MakerCheck | None,
    ) -> tuple[int, bool] | None:
        """The uncommon step of :meth:`_match`: the maker is the taker's own (self-trade
        prevention) or the check has a say. Returns (lots filled with this maker, whether the
        maker is removed unfilled or part-filled), appending the fill and the removal
        records; or None (with ``_stopped`` set) if the check stops the taker."""
        maker_size = maker[8]
        if maker[1] == taker_owner:
            self.removals.append((maker[0], maker[1], _SELF_TRADE, maker_size))
            return 0, True
        assert check is not None
        fill = maker_size if maker_size < size else size
        allowed = check(maker, taker_id, taker_owner, fill)
        if allowed < 0:
            self._stopped = Outcome.CANCELLED_BY_CHECK
            return None
        vetoed = allowed < fill
        if vetoed:
            fill = allowed
        if fill:
            self.fills.append(
                (
                    maker[0],
                    maker[1],
                    taker_id,
                    taker_owner,
                    taker_side,
                    maker[3],
                    fill,
                    0 if vetoed else maker_size - fill,
                )
            )
        if vetoed:
            self.removals.append((maker[0], maker[1], _VETOED, maker_size - fill))
        return fill, vetoed

    def _plan_fill_or_kill(
        self,
        opposite: _BookSide,
        limit: int,
        taker_id: int,
        taker_owner: bytes,
        size: int,
        check: MakerCheck | None,
    ) -> list[int] | None:
        """Walk the makers a FOK taker would reach, without mutating anything, exactly as
        :meth:`_match` would; return the check's answers in order (empty without a check),
        or None if the taker would not fill completely."""
        answers: list[int] = []
        makers_left = self.max_makers
        orders = self._orders
        for key in opposite.keys_in_order():
            if key > limit:
                return None
            for maker_id in opposite.levels[key].queue:
                maker = orders.get(maker_id)
                if maker is None:
                    continue
                if not makers_left:
                    return None
                makers_left -= 1
                if maker[1] == taker_owner:
                    continue
                fill = min(maker[8], size)
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

    def cancel(self, order_id: int) -> int:
        """Cancel a resting or conditional order by id (O(1) resting, O(log n) conditional).

        Returns the lots removed, 0 if no such order is open."""
        entry = self._orders.pop(order_id, None)
        if entry is None:
            conditional = self.triggers.remove(order_id)
            return 0 if conditional is None else conditional.size
        by_owner = self._by_owner
        owned = by_owner[entry[1]]  # owner
        del owned[entry[6]]  # client_id
        if not owned:
            del by_owner[entry[1]]
        size = entry[8]
        if entry[2]:  # side
            own = self._bids
            key = -entry[3]  # price
        else:
            own = self._asks
            key = entry[3]
        level = own.levels[key]
        volume = level.volume - size
        if not volume:
            own.drop_level(key)
            return size
        level.volume = volume
        dead = level.dead + 1
        level.dead = dead
        if dead > 8 and dead * 2 > len(level.queue):
            orders = self._orders
            level.queue = deque([i for i in level.queue if i in orders])
            level.dead = 0
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
            removed.append((order_id, owner, int(Reason.CANCELLED), self.cancel(order_id)))
        return removed

    def resize(self, order_id: int, size: int) -> int:
        """Shrink an open order to ``size`` lots in place, keeping its time priority
        (``size == 0`` cancels it). Used to keep reduce-only orders within the position.

        Returns the lots removed (0 if the order is not open). Growing an order is refused
        with OrderBookError: that is a cancel and a new order, which loses priority."""
        entry = self._orders.get(order_id)
        if entry is None:
            conditional = self.triggers.get(order_id)
            if conditional is None:
                return 0
            current = conditional.size
        else:
            current = entry[8]
        if not 0 <= size <= current:
            raise OrderBookError(f"order {order_id}: cannot resize {current} lots to {size}")
        if size == 0:
            return self.cancel(order_id)
        if entry is None:
            self.triggers.resize(order_id, size)
        else:
            self._orders[order_id] = entry[:8] + (size,)
            own, key = (self._bids, -entry[3]) if entry[2] else (self._asks, entry[3])
            own.levels[key].volume -= current - size
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
                entry = self._orders.get(order_id)
                if entry is not None and entry[7] == expiring:  # good_til_block
                    owner = entry[1]
                elif (conditional := self.triggers.get(order_id)) is not None and (
                    conditional.good_til_block == expiring
                ):
                    owner = conditional.owner
                else:
                    continue
                removed.append((order_id, owner, int(Reason.EXPIRED), self.cancel(order_id)))
        return removed

    def _index_expiry(self, order_id: int, good_til_block: int) -> None:
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
        if order.size <= 0 or not 0 < order.trigger_price < _NO_PRICE:
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
        return [(key * sign, own.levels[key].volume) for key in islice(own.keys_in_order(), levels)]

    def volume(self, side: int) -> int:
        """Total resting size in lots on ``side``."""
        own = self._bids if side else self._asks
        return sum(level.volume for level in own.levels.values())

    def impact(self, taker_side: int, size: int) -> Impact | None:
        """What a taker on ``taker_side`` would pay to fill ``size`` lots now, ignoring
        self-trade and checks: worst price and notional (tick-lots). None if too thin."""
        if size <= 0:
            raise OrderBookError(f"impact of a non-positive size: {size}")
        opposite = self._asks if taker_side else self._bids
        sign = opposite.sign
        wanted = size
        notional = 0
        for key in opposite.keys_in_order():
            take = min(opposite.levels[key].volume, wanted)
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
        for key in opposite.keys_in_order():
            price = key * sign
            volume = opposite.levels[key].volume
            needed = -(-(notional - cost) // price)  # lots to reach the notional, rounded up
            if needed <= volume:
                return Impact(price, size + needed, cost + needed * price)
            size += volume
            cost += volume * price
        return None

    def order(self, order_id: int) -> OrderRecord | None:
        """Canonical record of the resting order with this id, or None."""
        return self._orders.get(order_id)

    def __contains__(self, order_id: int) -> bool:
        """True if an order with this id is open (resting or conditional)."""
        return order_id in self._orders or order_id in self.triggers

    def __len__(self) -> int:
        """Number of resting orders (conditional orders not included)."""
        return len(self._orders)

    def order_id_for_client(self, owner: bytes, client_id: int) -> int | None:
        """Id of ``owner``'s open order (resting or conditional) with ``client_id``, O(1)."""
        owned = self._by_owner.get(owner)
        if owned is not None:
            order_id = owned.get(client_id)
            if order_id is not None:
                return order_id
        return self.triggers.order_id_for_client(owner, client_id)

    def order_ids_of(self, owner: bytes) -> list[int]:
        """Ids of ``owner``'s resting orders, ascending (= placement order, since the
        application assigns ids in order). Independent of restore history."""
        owned = self._by_owner.get(owner)
        return [] if owned is None else sorted(owned.values())

    def open_order_count(self, owner: bytes) -> int:
        """Resting plus conditional orders of ``owner`` (for the per-account cap)."""
        owned = self._by_owner.get(owner)
        held = self._conditional_owners.get(owner)
        return (0 if owned is None else len(owned)) + (0 if held is None else len(held))

    def statistics(self) -> BookStatistics:
        """Counts for metrics."""
        return BookStatistics(
            resting_orders=len(self._orders),
            bid_levels=len(self._bids.levels),
            ask_levels=len(self._asks.levels),
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
        orders = self._orders
        for own in (self._bids, self._asks):
            for key in own.keys_in_order():
                for order_id in own.levels[key].queue:
                    record = orders.get(order_id)
                    if record is not None:
                        yield record

    def insert_resting(self, record: OrderRecord) -> None:
        """Append a resting order at the back of its level without matching (restore).

        Raises OrderBookError, mutating nothing, if the record is invalid, its id or client
        id is already open, or it would cross the book."""
        order_id, owner, side, price, time_in_force, flags, client_id, good_til, size = record
        if size <= 0 or not 0 < price < _NO_PRICE or not 0 <= time_in_force < _IOC:
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


def _replay(answers: list[int]) -> MakerCheck:
    """A maker check that returns recorded answers in order (FOK fills after its plan)."""
    pending = iter(answers)

    def replay(maker: OrderRecord, taker_id: int, taker_owner: bytes, fill: int) -> int:
        return next(pending)

    return replay
