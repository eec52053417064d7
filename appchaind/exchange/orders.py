"""Placing an order: the checks, the book, and the settlement of its fills.

An order (:class:`~appchaind.exchange.txs.PlaceOrder`) is refused, with nothing changed,
when:

- its market does not exist, its side is not 0 (sell) or 1 (buy), its size is not at
  least one lot, or its time in force or type is unknown;
- its ``good_til_block`` (0: none) is below the current height;
- a limit order's price lies outside the block's price band (the oracle ± the market's
  ``price_band_ppm``); a stop-limit or take-profit-limit has no positive price, a
  conditional order no positive trigger price;
- it is reduce-only and would not reduce its owner's position (it is cut to the position
  otherwise), or it could rest and its owner already has ``max_open_orders_per_account``
  open orders in the market;
- unless it only reduces the position, filling it in full at its limit, taker fee paid,
  would leave the account below initial margin (a conditional order: when it fires).

A market order is an IOC (or FOK) order limited by the price band (the worst price it may
fill at). A conditional order (stop or take-profit) waits in the book's trigger store
until the oracle reaches its trigger price (:mod:`~appchaind.exchange.order_upkeep` fires
it). Every other order goes through the book (price-time priority, self-trade prevention,
each maker checked by :func:`margin.makers.maker_check`): each fill is settled at once by
the clearing house (maker fee at the market's maker rate, taker fee at its taker rate,
both into the fee pool) and reported as a ``fill`` event; what is left of the order
rests, or is cancelled (IOC) or was never placed (post-only that would take, FOK that
cannot fill); ``order`` events say which.

Order ids count up from 1, chain-wide: an order takes the next one once its fields are
valid (before the open-order and margin checks); a conditional order takes another when
it fires (its time priority on the book) and each liquidation order takes one.

Units: prices in ticks, sizes in lots, collateral and fees in micro-units, fees in ppm.
The ints that go into the book and the events (ids, fill prices and sizes) are passed on
as the objects they arrived as (``Id``, ``Any``), not unboxed and boxed again by compiled
code.
"""

from __future__ import annotations

from typing import Any, Final, cast

from appchaind.abci import APPLIED
from appchaind.chain.codes import Code
from appchaind.chain.events import PendingEvent
from appchaind.exchange.state import ExchangeState
from appchaind.exchange.txs import OrderType, PlaceOrder
from margin import Account, fee
from orderbook import (
    MAX_PRICE,
    ConditionalOrder,
    Fill,
    Id,
    OrderFlag,
    Outcome,
    Reason,
    TimeInForce,
)

__all__ = [
    "place_order",
    "submit",
    "settle_fills",
    "note_removals",
    "order_event",
    "liquidation_order",
]

_REDUCE_ONLY: Final = int(OrderFlag.REDUCE_ONLY)
_IOC: Final = int(TimeInForce.IOC)
_FOK: Final = int(TimeInForce.FOK)
_RESTING: Final = Outcome.RESTING
_FILLED: Final = Outcome.FILLED
_REJECTIONS: Final = {
    Outcome.REJECTED_POST_ONLY: (Code.POST_ONLY_WOULD_TAKE, "post-only order would take liquidity"),
    Outcome.REJECTED_FOK: (Code.FOK_NOT_FILLED, "fill-or-kill order could not fill completely"),
    Outcome.REJECTED_DUPLICATE_ORDER_ID: (Code.INVALID_ORDER, "order id already open"),
    Outcome.REJECTED_DUPLICATE_CLIENT_ID: (
        Code.DUPLICATE_CLIENT_ID,
        "you already have an open order with this client id in this market",
    ),
    Outcome.REJECTED_INVALID: (Code.INVALID_ORDER, "invalid price or size"),
}
_REASON_STATUS: Final = {
    int(Reason.CANCELLED): "cancelled",
    int(Reason.SELF_TRADE): "self_trade",
    int(Reason.VETOED): "vetoed",
    int(Reason.EXPIRED): "expired",
    int(Reason.TRIGGERED): "triggered",
}
_CONDITIONAL_KIND: Final = {
    OrderType.STOP_MARKET: 0,
    OrderType.STOP_LIMIT: 1,
    OrderType.TAKE_PROFIT_MARKET: 2,
    OrderType.TAKE_PROFIT_LIMIT: 3,
}
# Plain ints for the hot path (enum attribute access is slow on Python 3.11).
_LIMIT: Final = int(OrderType.LIMIT)
_STOP_MARKET: Final = int(OrderType.STOP_MARKET)
_TAKE_PROFIT_LIMIT: Final = int(OrderType.TAKE_PROFIT_LIMIT)
_LIMIT_KINDS: Final = (int(OrderType.STOP_LIMIT), int(OrderType.TAKE_PROFIT_LIMIT))
_UNKNOWN_MARKET: Final = int(Code.UNKNOWN_MARKET)
_INVALID_ORDER: Final = int(Code.INVALID_ORDER)
_PRICE_OUTSIDE_BAND: Final = int(Code.PRICE_OUTSIDE_BAND)
_REDUCE_ONLY_REJECTED: Final = int(Code.REDUCE_ONLY_REJECTED)
_TOO_MANY_OPEN_ORDERS: Final = int(Code.TOO_MANY_OPEN_ORDERS)
_INSUFFICIENT_MARGIN: Final = int(Code.INSUFFICIENT_MARGIN)
_MAX_PRICE: Final = MAX_PRICE


def place_order(
    state: ExchangeState,
    account: Account,
    body: PlaceOrder,
    events: list[PendingEvent],
    replacing: bool = False,
) -> tuple[int, str]:
    """Check and place an order. ``replacing``: a dry run for a replacement (the order to
    replace is still open and counts against the cap): every check that does not need the
    book to take the order, and nothing is mutated."""
    market_id = body.market_id
    if market_id >= len(state.markets):
        return _UNKNOWN_MARKET, f"market {market_id} does not exist"
    side = body.side
    size = body.size
    tif = body.time_in_force
    order_type = body.order_type
    if side > 1:
        return _INVALID_ORDER, "side must be 0 (sell) or 1 (buy)"
    if not 0 < size < _MAX_PRICE:
        return _INVALID_ORDER, "size must be at least one lot"
    if tif > _FOK or order_type > _TAKE_PROFIT_LIMIT:
        return _INVALID_ORDER, "unknown time in force or order type"
    gtb = body.good_til_block
    if gtb and gtb < state.height:
        return _INVALID_ORDER, f"good_til_block {gtb} has already passed"
    flags = _REDUCE_ONLY if body.reduce_only else 0
    price = body.price
    # Read through Any, the client id stays the tx's own int object all the way into the
    # book and the events (typed int, compiled code would unbox it here and box a new
    # object at each of those places; see orderbook.book.Id).
    client_id: Id = cast(Any, body).client_id
    if order_type == _LIMIT:
        low, high = state.bands[market_id]
        if not low <= price <= high:
            return (
                _PRICE_OUTSIDE_BAND,
                f"price {price} is outside the band [{low}, {high}] around the oracle "
                f"{state.markets[market_id].oracle_price}",
            )
    elif order_type in _LIMIT_KINDS:
        if not 0 < price < MAX_PRICE:
            return _INVALID_ORDER, "limit price must be a positive number of ticks"
    else:
        if tif < _IOC:
            tif = _IOC
        price = state.bands[market_id][side]
    order_id: Id = state.next_order_id  # boxed once, shared by the book and the events
    if not replacing:
        state.next_order_id += 1
    if order_type >= _STOP_MARKET:
        return _place_conditional(state, account, body, order_id, tif, flags, events, replacing)
    return submit(
        state, account, market_id, order_id, side, price, size, tif, flags, client_id, gtb,
        events, 0, replacing,
    )  # fmt: skip


def _place_conditional(
    state: ExchangeState,
    account: Account,
    body: PlaceOrder,
    order_id: int,
    tif: int,
    flags: int,
    events: list[PendingEvent],
    replacing: bool = False,
) -> tuple[int, str]:
    """Put a stop or take-profit order in the book's trigger store."""
    market_id = body.market_id
    if not 0 < body.trigger_price < MAX_PRICE:
        return Code.INVALID_ORDER, "trigger_price must be a positive number of ticks"
    book = state.books[market_id]
    address = account.address
    open_orders = book.open_order_count(address) - replacing
    if open_orders >= state.params.max_open_orders_per_account:
        return Code.TOO_MANY_OPEN_ORDERS, "open order limit reached in this market"
    if replacing:
        return APPLIED
    order = ConditionalOrder(
        order_id, address, body.side, _CONDITIONAL_KIND[OrderType(body.order_type)],
        body.trigger_price, body.price, body.size, tif, flags, body.client_id,
        body.good_til_block,
    )  # fmt: skip
    outcome = book.add_conditional(order)
    if outcome != _RESTING:
        code, log = _REJECTIONS[outcome]
        return code, log
    state.dirty_orders[market_id][order_id] = None
    if flags:
        state.note_reduce_only(address, market_id)
    events.append(
        order_event(market_id, order_id, address, body.client_id, "conditional", body.size)
    )
    return APPLIED


def submit(
    state: ExchangeState,
    account: Account,
    market_id: int,
    order_id: Id,
    side: int,
    price: int,
    size: int,
    tif: int,
    flags: int,
    client_id: Id,
    gtb: int,
    events: list[PendingEvent],
    rest_seq: int = 0,
    replacing: bool = False,
) -> tuple[int, str]:
    """Margin-check an order and put it through the book; settle its fills.
    ``rest_seq``: its time priority if it rests, when that is not its id (a triggered
    order). ``replacing``: the dry run of :func:`place_order` (checks only)."""
    book = state.books[market_id]
    market = state.markets[market_id]
    address = account.address
    position = account.positions.get(market_id)
    held = position.size if position is not None else 0
    if flags:
        if not (held < 0 if side else held > 0):
            return _REDUCE_ONLY_REJECTED, "reduce-only order would not reduce your position"
        size = min(size, abs(held))
    if tif < _IOC and book.open_order_count(address) - replacing >= state.max_open_orders:
        return _TOO_MANY_OPEN_ORDERS, "open order limit reached in this market"
    # Unless it only reduces the position, the order must leave the account above
    # initial margin if it filled in full at its limit, paying the taker fee.
    if side:
        new_size = held + size
        risky = held >= 0 or new_size > 0
    else:
        new_size = held - size
        risky = held <= 0 or new_size < 0
    if risky:
        clearing = state.clearing
        notional = price * size * market.quantum
        cash = (-notional if side else notional) - fee(notional, market.taker_fee_ppm)
        if clearing.free_collateral_after(account, market, held, new_size, cash) < 0:
            health = clearing.health_after(account, market_id, new_size, cash)
            return (
                _INSUFFICIENT_MARGIN,
                f"filled in full at {price} ticks this order would leave net collateral "
                f"{health.net} below the initial margin {health.initial} (micro-units)",
            )
    if replacing:
        return APPLIED
    outcome = book.place(order_id, address, side, price, size, tif, flags, client_id, gtb)
    pending = state.pending_fills
    if pending:  # (a rejected fill-or-kill leaves checks without fills)
        pending.clear()
    fills = book.fills
    filled = 0
    if fills:
        settle_fills(state, market_id, fills, account, market.taker_fee_ppm, events, False)
        for fill in fills:
            filled += fill[6]
        fills.clear()  # (the book appends the next taker's fills to the same list)
    if book.removals:
        note_removals(state, market_id, book.take_removals(), events)
    if outcome is _RESTING:
        state.dirty_orders[market_id][order_id] = None
        if rest_seq:
            state.rest_seq[market_id][order_id] = rest_seq
        if flags:
            state.note_reduce_only(address, market_id)
        # what rests: the unfilled lots
        events.append(("order", market_id, order_id, address, client_id, "resting", size - filled))
        return APPLIED
    if outcome is _FILLED:
        events.append(("order", market_id, order_id, address, client_id, "filled", 0))
        return APPLIED
    rejection = _REJECTIONS.get(outcome)
    if rejection is not None:
        events.append(("order", market_id, order_id, address, client_id, "rejected", size))
        return rejection
    events.append(("order", market_id, order_id, address, client_id, "cancelled", 0))
    return APPLIED


def settle_fills(
    state: ExchangeState,
    market_id: int,
    fills: list[tuple[Id, bytes, Id, bytes, int, Any, Any, Any]],
    taker: Account,
    taker_fee_ppm: int,
    events: list[PendingEvent],
    liquidation: bool,
) -> None:
    """Settle the book's fills and record their events. The fill tuples' ints go into
    the events as the book's objects (typed ``Any``: not unboxed and boxed again)."""
    clearing = state.clearing
    accounts = clearing.accounts
    dirty = state.dirty_orders[market_id]
    for (
        maker_oid,
        maker_owner,
        taker_oid,
        taker_owner,
        taker_side,
        price,
        size,
        remaining,
    ) in fills:
        maker_fee, taker_fee = clearing.settle_fill(
            market_id,
            accounts[maker_owner],
            taker,
            taker_side != 0,
            price,
            size,
            taker_fee_ppm,
            not liquidation,
        )
        dirty[maker_oid] = None
        events.append(
            (
                "fill", market_id, maker_oid, maker_owner, taker_oid, taker_owner, taker_side,
                price, size, remaining, maker_fee, taker_fee, liquidation,
            )
        )  # fmt: skip


def note_removals(
    state: ExchangeState,
    market_id: int,
    removals: list[tuple[int, bytes, int, int]],
    events: list[PendingEvent],
) -> None:
    """Record orders that left the book other than by filling (cancelled, expired, ...)."""
    dirty = state.dirty_orders[market_id]
    for order_id, owner, reason, size in removals:
        dirty[order_id] = None
        events.append(
            order_event(market_id, order_id, owner, -1, _REASON_STATUS[int(reason)], size)
        )


def order_event(
    market_id: int, order_id: int, owner: bytes, client_id: int, status: str, size: int
) -> PendingEvent:
    """An ``order`` event, compact (see :data:`appchaind.chain.events.COMPACT_EVENT_FIELDS`)."""
    return ("order", market_id, order_id, owner, client_id, status, size)


def liquidation_order(
    state: ExchangeState,
    account: Account,
    market_id: int,
    side: int,
    limit: int,
    size: int,
    events: list[PendingEvent],
) -> list[Fill]:
    """An IOC order of a liquidated account (the liquidator's, :mod:`margin.liquidator`):
    no margin check, no taker fee; its fills are reported as liquidation fills. Returns
    the fills."""
    book = state.books[market_id]
    order_id = state.next_order_id
    state.next_order_id += 1
    book.place(order_id, account.address, side, limit, size, _IOC, 0, 0, 0)
    state.pending_fills.clear()
    fills = book.fills
    book.fills = []
    if book.removals:
        note_removals(state, market_id, book.take_removals(), events)
    settle_fills(state, market_id, fills, account, 0, events, True)
    return fills
