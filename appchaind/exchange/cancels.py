"""Cancelling and replacing orders.

- **Cancel** (:class:`~appchaind.exchange.txs.CancelOrder`): one open order of the sender
  (resting or conditional), named by its order id or by its client id; refused if the
  market does not exist or the sender has no such open order there.
- **Cancel all** (:class:`~appchaind.exchange.txs.CancelAll`): every open order of the
  sender in one market, or in every market.
- **Replace** (:class:`~appchaind.exchange.txs.ReplaceOrder`): cancel one open order and
  place another in the same market, as one tx. A replacement that only lowers the size of
  a resting limit order, everything else equal, resizes it in place and keeps its time
  priority. Otherwise everything that can refuse the new order without the book taking it
  is checked first, the old order still open (and counted against the open-order cap): if
  that refuses it, the old order stays as it was; if the book then refuses it (post-only
  would take, fill-or-kill cannot fill, duplicate client id), the old order stays
  cancelled.

Cancels run before every other tx of a block (the in-block ordering rule,
:mod:`appchaind.exchange.app`). Sizes in lots.
"""

from __future__ import annotations

from typing import Final

from appchaind.abci import APPLIED
from appchaind.chain.codes import Code
from appchaind.chain.events import PendingEvent
from appchaind.exchange.orders import note_removals, order_event, place_order
from appchaind.exchange.state import (
    RECORD_CLIENT,
    RECORD_FLAGS,
    RECORD_GTB,
    RECORD_OWNER,
    RECORD_PRICE,
    RECORD_SIDE,
    RECORD_SIZE,
    RECORD_TIF,
    ExchangeState,
)
from appchaind.exchange.txs import CancelAll, CancelOrder, OrderType, ReplaceOrder
from margin import Account
from orderbook import OrderBook, OrderFlag

__all__ = ["cancel_order", "cancel_all", "replace_order", "cancel_account_orders"]

_REDUCE_ONLY: Final = int(OrderFlag.REDUCE_ONLY)


def _owned_order(book: OrderBook, address: bytes, order_id: int) -> bool:
    record = book.order(order_id)
    if record is not None:
        return record[RECORD_OWNER] == address
    conditional = book.triggers.get(order_id)
    return conditional is not None and conditional.owner == address


def _find_order(
    book: OrderBook, address: bytes, order_id: int, client_id: int, by_client_id: bool
) -> int | None:
    """The id of ``address``'s open order named by ``order_id`` or ``client_id``, or None."""
    if by_client_id:
        return book.order_id_for_client(address, client_id)
    return order_id if _owned_order(book, address, order_id) else None


def cancel_order(
    state: ExchangeState, account: Account, body: CancelOrder, events: list[PendingEvent]
) -> tuple[int, str]:
    market_id = body.market_id
    if market_id >= len(state.markets):
        return Code.UNKNOWN_MARKET, f"market {market_id} does not exist"
    book = state.books[market_id]
    order_id = _find_order(book, account.address, body.order_id, body.client_id, body.by_client_id)
    if order_id is None:
        return Code.ORDER_NOT_FOUND, "no such open order of yours in this market"
    size = book.cancel(order_id)
    state.dirty_orders[market_id][order_id] = None
    events.append(order_event(market_id, order_id, account.address, -1, "cancelled", size))
    return APPLIED


def cancel_all(
    state: ExchangeState, account: Account, body: CancelAll, events: list[PendingEvent]
) -> tuple[int, str]:
    if body.all_markets:
        market_ids = list(range(len(state.markets)))
    elif body.market_id < len(state.markets):
        market_ids = [body.market_id]
    else:
        return Code.UNKNOWN_MARKET, f"market {body.market_id} does not exist"
    for market_id in market_ids:
        note_removals(state, market_id, state.books[market_id].cancel_all(account.address), events)
    return APPLIED


def cancel_account_orders(
    state: ExchangeState, account: Account, events: list[PendingEvent]
) -> None:
    """Cancel every open order of ``account``, in every market (a liquidation)."""
    address = account.address
    for market_id, book in enumerate(state.books):
        if book.open_order_count(address):
            note_removals(state, market_id, book.cancel_all(address), events)


def replace_order(
    state: ExchangeState, account: Account, body: ReplaceOrder, events: list[PendingEvent]
) -> tuple[int, str]:
    new = body.order
    market_id = new.market_id
    if market_id >= len(state.markets):
        return Code.UNKNOWN_MARKET, f"market {market_id} does not exist"
    book = state.books[market_id]
    address = account.address
    old_id = _find_order(book, address, body.order_id, body.client_id, body.by_client_id)
    if old_id is None:
        return Code.ORDER_NOT_FOUND, "no such open order of yours in this market"
    record = book.order(old_id)
    if (
        record is not None
        and new.order_type == OrderType.LIMIT
        and new.side == record[RECORD_SIDE]
        and new.price == record[RECORD_PRICE]
        and 0 < new.size <= record[RECORD_SIZE]
        and new.time_in_force == record[RECORD_TIF]
        and new.reduce_only == bool(record[RECORD_FLAGS] & _REDUCE_ONLY)
        and new.client_id == record[RECORD_CLIENT]
        and new.good_til_block == record[RECORD_GTB]
    ):
        book.resize(old_id, new.size)
        state.dirty_orders[market_id][old_id] = None
        events.append(order_event(market_id, old_id, address, new.client_id, "resized", new.size))
        return APPLIED
    # Everything that can refuse the new order without the book taking it is checked
    # first, with the old order untouched: a refused replacement leaves it as it was.
    code, log = place_order(state, account, new, events, True)
    if code:
        return code, log + " (the order to replace is left as it was)"
    size = book.cancel(old_id)
    state.dirty_orders[market_id][old_id] = None
    events.append(order_event(market_id, old_id, address, -1, "cancelled", size))
    code, log = place_order(state, account, new, events)
    if code:  # refused by the book (post-only would take, FOK cannot fill, client id)
        log += " (the replaced order stays cancelled)"
    return code, log
