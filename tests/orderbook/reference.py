"""A slow, obviously correct order book: the executable specification of orderbook.OrderBook.

Resting orders are a plain list in arrival order; every step of matching sorts the
crossing makers by (better price, earlier arrival) and takes the first. A fill-or-kill
taker runs on a deep copy that is thrown away unless the order filled completely. It is
quadratic and it does not matter: it only has to be right.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from orderbook import (
    MAX_PRICE,
    ConditionalOrder,
    Fill,
    MakerCheck,
    OrderRecord,
    Outcome,
    Reason,
    Removal,
    TimeInForce,
)


@dataclass
class RefOrder:
    order_id: int
    owner: bytes
    side: int
    price: int
    time_in_force: int
    flags: int
    client_id: int
    good_til_block: int
    size: int

    def record(self) -> OrderRecord:
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


class ReferenceBook:
    def __init__(self, maker_check: MakerCheck | None = None, max_makers: int | None = None):
        self.resting: list[RefOrder] = []  # arrival order
        self.conditional: list[ConditionalOrder] = []
        self.fills: list[Fill] = []
        self.removals: list[Removal] = []
        self.maker_check = maker_check
        self.max_makers = max_makers

    # -- helpers
    def _open_ids(self) -> set[int]:
        return {o.order_id for o in self.resting} | {c.order_id for c in self.conditional}

    def _client_open(self, owner: bytes, client_id: int) -> bool:
        return any(o.owner == owner and o.client_id == client_id for o in self.resting) or any(
            c.owner == owner and c.client_id == client_id for c in self.conditional
        )

    def _crossing(self, side: int, price: int) -> list[RefOrder]:
        if side:
            makers = [o for o in self.resting if o.side == 0 and o.price <= price]
            return sorted(makers, key=lambda o: (o.price, self.resting.index(o)))
        makers = [o for o in self.resting if o.side == 1 and o.price >= price]
        return sorted(makers, key=lambda o: (-o.price, self.resting.index(o)))

    # -- orders
    def place(
        self,
        order_id: int,
        owner: bytes,
        side: int,
        price: int,
        size: int,
        time_in_force: int = 0,
        flags: int = 0,
        client_id: int = 0,
        good_til_block: int = 0,
    ) -> Outcome:
        side = int(bool(side))
        if order_id in self._open_ids():
            return Outcome.REJECTED_DUPLICATE_ORDER_ID
        if size <= 0 or not 0 < price < MAX_PRICE:
            return Outcome.REJECTED_INVALID
        if time_in_force in (TimeInForce.GTC, TimeInForce.POST_ONLY) and self._client_open(
            owner, client_id
        ):
            return Outcome.REJECTED_DUPLICATE_CLIENT_ID
        if self._crossing(side, price):
            if time_in_force == TimeInForce.POST_ONLY:
                return Outcome.REJECTED_POST_ONLY
            if time_in_force == TimeInForce.FOK:
                trial = copy.deepcopy(self)
                trial.maker_check = self.maker_check
                remaining, stopped = trial._match(order_id, owner, side, price, size)
                if remaining:
                    return Outcome.REJECTED_FOK
                self.__dict__.update(trial.__dict__)
                return Outcome.FILLED
            size, stopped = self._match(order_id, owner, side, price, size)
            if not size:
                return Outcome.FILLED
            if stopped is not None:
                return stopped
        if time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            return Outcome.CANCELLED_IOC
        self.resting.append(
            RefOrder(
                order_id, owner, side, price, time_in_force, flags, client_id, good_til_block, size
            )
        )
        return Outcome.RESTING

    def _match(
        self, taker_id: int, owner: bytes, side: int, price: int, size: int
    ) -> tuple[int, Outcome | None]:
        reached = 0
        while size:
            makers = self._crossing(side, price)
            if not makers:
                return size, None
            maker = makers[0]
            if self.max_makers is not None and reached == self.max_makers:
                return size, Outcome.CANCELLED_MAKER_LIMIT
            reached += 1
            fill = min(size, maker.size)
            if maker.owner == owner:
                self._remove(maker, Reason.SELF_TRADE, maker.size)
                continue
            if self.maker_check is not None:
                allowed = self.maker_check(maker, taker_id, owner, fill)  # type: ignore[arg-type]
                if allowed < 0:
                    return size, Outcome.CANCELLED_BY_CHECK
                if allowed < fill:
                    if allowed:
                        self.fills.append(
                            (
                                maker.order_id,
                                maker.owner,
                                taker_id,
                                owner,
                                side,
                                maker.price,
                                allowed,
                                0,
                            )
                        )
                        size -= allowed
                    self._remove(maker, Reason.VETOED, maker.size - allowed)
                    continue
            size -= fill
            maker.size -= fill
            self.fills.append(
                (maker.order_id, maker.owner, taker_id, owner, side, maker.price, fill, maker.size)
            )
            if not maker.size:
                self.resting.remove(maker)
        return 0, None

    def _remove(self, maker: RefOrder, reason: Reason, size: int) -> None:
        self.resting.remove(maker)
        self.removals.append((maker.order_id, maker.owner, int(reason), size))

    def cancel(self, order_id: int) -> int:
        for o in self.resting:
            if o.order_id == order_id:
                self.resting.remove(o)
                return o.size
        for c in self.conditional:
            if c.order_id == order_id:
                self.conditional.remove(c)
                return c.size
        return 0

    def cancel_by_client_id(self, owner: bytes, client_id: int) -> int:
        for o in self.resting + self.conditional:
            if o.owner == owner and o.client_id == client_id:
                return self.cancel(o.order_id)
        return 0

    def cancel_all(self, owner: bytes) -> list[Removal]:
        ids = sorted(o.order_id for o in self.resting + self.conditional if o.owner == owner)
        return [(i, owner, int(Reason.CANCELLED), self.cancel(i)) for i in ids]

    def resize(self, order_id: int, size: int) -> int:
        for o in self.resting:
            if o.order_id == order_id:
                if not 0 <= size <= o.size:
                    raise ValueError("grow")
                if size == 0:
                    return self.cancel(order_id)
                removed, o.size = o.size - size, size
                return removed
        for i, c in enumerate(self.conditional):
            if c.order_id == order_id:
                if not 0 <= size <= c.size:
                    raise ValueError("grow")
                if size == 0:
                    return self.cancel(order_id)
                self.conditional[i] = ConditionalOrder(
                    **{**{f: getattr(c, f) for f in c.__dataclass_fields__}, "size": size}
                )
                return c.size - size
        return 0

    def expire(self, height: int) -> list[Removal]:
        gone = [
            (o.good_til_block, o.order_id, o.owner)
            for o in self.resting + self.conditional
            if 0 < o.good_til_block <= height
        ]
        return [(i, owner, int(Reason.EXPIRED), self.cancel(i)) for _, i, owner in sorted(gone)]

    # -- conditional orders
    def add_conditional(self, order: ConditionalOrder) -> Outcome:
        if order.order_id in self._open_ids():
            return Outcome.REJECTED_DUPLICATE_ORDER_ID
        if order.size <= 0 or not 0 < order.trigger_price < MAX_PRICE:
            return Outcome.REJECTED_INVALID
        if self._client_open(order.owner, order.client_id):
            return Outcome.REJECTED_DUPLICATE_CLIENT_ID
        self.conditional.append(order)
        return Outcome.RESTING

    def trigger(self, oracle_price: int) -> list[ConditionalOrder]:
        rising = sorted(
            (c for c in self.conditional if c.fires_on_rise and c.trigger_price <= oracle_price),
            key=lambda c: (c.trigger_price, c.order_id),
        )
        falling = sorted(
            (
                c
                for c in self.conditional
                if not c.fires_on_rise and c.trigger_price >= oracle_price
            ),
            key=lambda c: (-c.trigger_price, c.order_id),
        )
        for c in rising + falling:
            self.conditional.remove(c)
        return rising + falling

    # -- queries
    def resting_orders(self) -> list[OrderRecord]:
        bids = sorted(
            (o for o in self.resting if o.side), key=lambda o: (-o.price, self.resting.index(o))
        )
        asks = sorted(
            (o for o in self.resting if not o.side),
            key=lambda o: (o.price, self.resting.index(o)),
        )
        return [o.record() for o in bids + asks]

    def best_bid(self) -> int | None:
        return max((o.price for o in self.resting if o.side), default=None)

    def best_ask(self) -> int | None:
        return min((o.price for o in self.resting if not o.side), default=None)

    def depth(self, side: int, levels: int) -> list[tuple[int, int]]:
        totals: dict[int, int] = {}
        for o in self.resting:
            if o.side == side:
                totals[o.price] = totals.get(o.price, 0) + o.size
        prices = sorted(totals, reverse=bool(side))[:levels]
        return [(p, totals[p]) for p in prices]

    def order_ids_of(self, owner: bytes) -> list[int]:
        return sorted(o.order_id for o in self.resting if o.owner == owner)
