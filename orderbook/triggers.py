"""The trigger store: conditional orders (stops and take-profits) waiting for the oracle.

Invariants:

- every held order is in exactly one of two sorted indexes: ``rising`` keyed
  ``(trigger_price, order_id)`` for orders that fire when the price rises to their trigger
  (buy stops, sell take-profits), and ``falling`` keyed ``(-trigger_price, order_id)`` for
  orders that fire when it falls to it (sell stops, buy take-profits);
- ``(owner, client_id)`` is unique among held orders and indexed for O(1) lookup.

Firing order is a pure function of the held orders and the oracle price (see
:meth:`TriggerStore.fire`), never of insertion history. Prices in ticks, sizes in lots.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from sortedcontainers import SortedList

from orderbook.types import ConditionalOrder

__all__ = ["TriggerStore"]


class TriggerStore:
    """Conditional orders of one market, indexed by trigger price, order id and client id."""

    __slots__ = ("_orders", "_rising", "_falling", "owners")

    def __init__(self) -> None:
        self._orders: dict[int, ConditionalOrder] = {}
        self._rising: SortedList = SortedList()
        self._falling: SortedList = SortedList()
        #: owner -> {client_id: order_id} of held orders (read-only outside this class).
        self.owners: dict[bytes, dict[int, int]] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: int) -> bool:
        return order_id in self._orders

    def get(self, order_id: int) -> ConditionalOrder | None:
        """The held conditional order with this id, or None."""
        return self._orders.get(order_id)

    def order_id_for_client(self, owner: bytes, client_id: int) -> int | None:
        """The order id of ``owner``'s held conditional order with ``client_id``, or None."""
        owned = self.owners.get(owner)
        return None if owned is None else owned.get(client_id)

    def add(self, order: ConditionalOrder) -> None:
        """Hold ``order``. The caller has checked that its id and client id are free."""
        self._orders[order.order_id] = order
        if order.fires_on_rise:
            self._rising.add((order.trigger_price, order.order_id))
        else:
            self._falling.add((-order.trigger_price, order.order_id))
        owned = self.owners.get(order.owner)
        if owned is None:
            owned = self.owners[order.owner] = {}
        owned[order.client_id] = order.order_id

    def remove(self, order_id: int) -> ConditionalOrder | None:
        """Take the order with this id out of the store (O(log n)); None if not held."""
        order = self._orders.pop(order_id, None)
        if order is None:
            return None
        if order.fires_on_rise:
            self._rising.remove((order.trigger_price, order_id))
        else:
            self._falling.remove((-order.trigger_price, order_id))
        owned = self.owners[order.owner]
        del owned[order.client_id]
        if not owned:
            del self.owners[order.owner]
        return order

    def resize(self, order_id: int, size: int) -> None:
        """Set the held order's size in lots (the caller has checked 0 < size <= current)."""
        order = self._orders[order_id]
        self._orders[order_id] = dataclasses.replace(order, size=size)

    def order_ids_of(self, owner: bytes) -> list[int]:
        """Ids of ``owner``'s held conditional orders, ascending (placement order)."""
        owned = self.owners.get(owner)
        return [] if owned is None else sorted(owned.values())

    def fire(self, oracle_price: int) -> list[ConditionalOrder]:
        """Remove and return every order the oracle price (ticks) triggers, in firing order.

        First the rising kind with ``trigger_price <= oracle_price``, by ascending
        (trigger_price, order_id); then the falling kind with ``trigger_price >=
        oracle_price``, by descending trigger_price then ascending order_id. That is: the
        triggers a move would cross first fire first, ties by age.
        """
        fired: list[ConditionalOrder] = []
        for index, bound in ((self._rising, oracle_price), (self._falling, -oracle_price)):
            stop = index.bisect_right((bound, 1 << 127))
            keys = list(index.islice(0, stop))
            for _, order_id in keys:
                order = self.remove(order_id)
                assert order is not None
                fired.append(order)
        return fired

    def __iter__(self) -> Iterator[ConditionalOrder]:
        """Every held order, rising kind then falling kind, each in firing order."""
        for index in (self._rising, self._falling):
            for _, order_id in index:
                yield self._orders[order_id]
