"""The order rules of the end of a block: expiry, triggers, reduce-only upkeep.

They run after the block's txs, in this order, with the funding step and the
liquidations between the triggers and the reduce-only upkeep (see
:mod:`appchaind.exchange.app`):

1. **Expiry.** Orders whose ``good_til_block`` is below the block's height leave the book
   (``expired``), in every market.
2. **Triggers.** Conditional orders whose trigger the oracle price reached fire, per
   market in ascending market id, in the order the trigger store gives: each leaves the
   store (``triggered``), its owner's funding is settled, and it is submitted like a new
   order (margin check and all), with a fresh order id as its time priority: a stop or
   take-profit *market* order as IOC (FOK stays FOK) limited by the price band, a *limit*
   order with its own price and time in force. A refused one is reported ``rejected``
   with the refusal's code and reason.
3. **Reduce-only upkeep.** The reduce-only orders (resting or conditional) of every
   account whose position changed in the block shrink to the position, and are cancelled
   when the position is flat or on the order's side.

Prices in ticks, sizes in lots.
"""

from __future__ import annotations

from typing import Final

from appchaind.chain.events import Event, PendingEvent
from appchaind.exchange.funding import settle_funding
from appchaind.exchange.orders import note_removals, order_event, submit
from appchaind.exchange.state import RECORD_FLAGS, RECORD_SIDE, RECORD_SIZE, ExchangeState
from margin import protection_price
from orderbook import OrderFlag, TimeInForce

__all__ = ["expire_orders", "fire_triggers", "reduce_only_upkeep"]

_REDUCE_ONLY: Final = int(OrderFlag.REDUCE_ONLY)
_IOC: Final = int(TimeInForce.IOC)
_FOK: Final = int(TimeInForce.FOK)


def expire_orders(state: ExchangeState, events: list[PendingEvent]) -> None:
    height = state.height
    for market_id, book in enumerate(state.books):
        expired = book.expire(height)
        if expired:
            note_removals(state, market_id, expired, events)


def fire_triggers(state: ExchangeState, events: list[PendingEvent]) -> None:
    accounts = state.clearing.accounts
    for market in state.markets:
        market_id = market.market_id
        for order in state.books[market_id].trigger(market.oracle_price):
            state.dirty_orders[market_id][order.order_id] = None
            events.append(
                order_event(
                    market_id, order.order_id, order.owner, order.client_id, "triggered",
                    order.size,
                )
            )  # fmt: skip
            account = accounts[order.owner]
            if account.positions:
                settle_funding(state, account, events)
            if order.kind in (0, 2):  # *_MARKET kinds
                price = protection_price(market, order.side)
                tif = _FOK if order.time_in_force == _FOK else _IOC
            else:
                price = order.price
                tif = order.time_in_force
            seq = state.next_order_id
            state.next_order_id += 1
            code, log = submit(
                state, account, market_id, order.order_id, order.side, price, order.size, tif,
                order.flags, order.client_id, order.good_til_block, events, seq,
            )  # fmt: skip
            if code:
                events.append(
                    Event("order", {
                        "market": market_id, "order_id": order.order_id, "owner": order.owner,
                        "client_id": order.client_id, "status": "rejected", "size": order.size,
                        "code": int(code), "reason": log,
                    })
                )  # fmt: skip


def reduce_only_upkeep(state: ExchangeState, events: list[PendingEvent]) -> None:
    """Each reduce-only order is capped on its own (so their order is irrelevant); an
    account's markets without a reduce-only order left are forgotten."""
    changed = state.clearing.take_position_changed()
    owners = state.reduce_only
    if not owners:
        return
    accounts = state.clearing.accounts
    for address in sorted(a for a in changed if a in owners):
        account = accounts[address]
        markets = owners[address]
        for market_id in sorted(markets):
            book = state.books[market_id]
            held = account.position_size(market_id)
            found = False
            ids = book.order_ids_of(address) + book.triggers.order_ids_of(address)
            for order_id in sorted(ids):
                record = book.order(order_id)
                if record is not None:
                    side, size, flags = (
                        record[RECORD_SIDE], record[RECORD_SIZE], record[RECORD_FLAGS]
                    )  # fmt: skip
                else:
                    conditional = book.triggers.get(order_id)
                    assert conditional is not None
                    side, size, flags = conditional.side, conditional.size, conditional.flags
                if not flags & _REDUCE_ONLY:
                    continue
                reducing = held < 0 if side else held > 0
                keep = min(size, abs(held)) if reducing else 0
                if keep < size:
                    book.resize(order_id, keep)
                    state.dirty_orders[market_id][order_id] = None
                    status = "resized" if keep else "cancelled"
                    events.append(order_event(market_id, order_id, address, -1, status, keep))
                if keep:
                    found = True
            if not found:
                del markets[market_id]
        if not markets:
            del owners[address]
