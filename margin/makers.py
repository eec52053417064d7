"""The maker check: the margin rule the order book applies to each resting order before
it fills against a taker.

A maker may fill only what keeps its account at or above initial margin, paying its maker
fee, unless the fill only reduces its position; a reduce-only maker never grows or flips
its position (its fill is cut to the position it holds). Fills one taker makes against
several orders of the same owner accumulate: each later maker of that owner is checked
against the position and cash the earlier fills leave (``pending``, which the exchange
clears before each taker).

Units: prices in ticks, sizes in lots, cash and fees in micro-units of quote, fees in ppm
(rounded against the maker: a fee up, a rebate down).
"""

from __future__ import annotations

from typing import Final

from margin.clearing import ClearingHouse
from margin.markets import PPM, MarketState
from orderbook.book import MakerCheck, RestingOrder
from orderbook.types import OrderFlag

__all__ = ["maker_check"]

_REDUCE_ONLY: Final = int(OrderFlag.REDUCE_ONLY)
#: ceil(x / PPM) == (x + _CEIL) // PPM for every integer x.
_CEIL: Final = PPM - 1


def maker_check(
    clearing: ClearingHouse, market: MarketState, pending: dict[bytes, list[int]]
) -> MakerCheck:
    """The book's per-fill hook for ``market``: how many of ``fill`` lots the maker may
    fill (0 for none). ``pending`` maps an owner to [lots, cash] its earlier fills against
    the current taker add to its settled position and balance."""
    accounts = clearing.accounts
    market_id = market.market_id
    quantum = market.quantum
    maker_fee_ppm = market.maker_fee_ppm

    def check(maker: RestingOrder, taker_order_id: int, taker_owner: bytes, fill: int) -> int:
        owner = maker.owner
        account = accounts[owner]
        position = account.positions.get(market_id)
        settled = held = position.size if position is not None else 0
        owed = pending.get(owner)
        cash = 0
        if owed is not None:
            held += owed[0]
            cash = owed[1]
        buys = maker.side
        if maker.flags & _REDUCE_ONLY:
            if not (held < 0 if buys else held > 0):
                return 0
            if fill > abs(held):
                fill = abs(held)
        notional = maker.price * fill * quantum
        # margin.health.fee, inline (this runs for every fill)
        if maker_fee_ppm >= 0:
            maker_fee = (notional * maker_fee_ppm + _CEIL) // PPM
        else:
            maker_fee = -(notional * -maker_fee_ppm // PPM)
        if buys:
            new_size = held + fill
            cash -= notional + maker_fee
            risky = held >= 0 or new_size > 0
        else:
            new_size = held - fill
            cash += notional - maker_fee
            risky = held <= 0 or new_size < 0
        if risky and clearing.free_collateral_after(account, market, settled, new_size, cash) < 0:
            return 0
        if owed is None:
            pending[owner] = [new_size - held, cash]
        else:
            owed[0] += new_size - held
            owed[1] = cash
        return fill

    return check
