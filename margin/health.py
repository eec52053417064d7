"""Margin arithmetic: requirements, net collateral, fees, funding owed, bankruptcy prices.

Integers only; every rounding goes against the trader: requirements and fees round up,
rebates and funding receipts round down. Units: micro-units of quote, ticks, lots, ppm.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from margin.accounts import Account, Position
from margin.markets import FUNDING_SCALE, PPM, MarketState

__all__ = [
    "Health",
    "requirement",
    "fee",
    "funding_owed",
    "health",
    "health_after",
    "bankruptcy_price",
]

#: ceil(x / PPM) == (x + _CEIL) // PPM for every integer x (compiled code multiplies
#: non-negative factors natively, so ceilings are not written as -(-x // PPM)).
_CEIL: Final = PPM - 1


class Health(NamedTuple):
    """An account at the current oracle prices: net collateral, initial and maintenance
    requirements (micro-units)."""

    net: int
    initial: int
    maintenance: int

    @property
    def free_collateral(self) -> int:
        """What may leave the account (withdrawal, transfer): net minus initial requirement."""
        return self.net - self.initial

    @property
    def liquidatable(self) -> bool:
        """Strictly below maintenance margin."""
        return self.net < self.maintenance


def requirement(size: int, price: int, quantum: int, ppm: int) -> int:
    """ceil(|size| × price × quantum × ppm / 1e6): a margin requirement, rounded up."""
    return (abs(size) * price * quantum * ppm + _CEIL) // PPM


def fee(notional: int, ppm: int) -> int:
    """The fee on ``notional`` micro-units: rounded up when charged, a rebate (negative
    ``ppm``) rounded down, so the trader never gains from rounding."""
    return (notional * ppm + _CEIL) // PPM if ppm >= 0 else -(notional * -ppm // PPM)


def funding_owed(position: Position, market: MarketState) -> int:
    """Micro-units the position owes since its last settlement (negative: is owed),
    rounded against the trader (ceil)."""
    return -(-position.size * (market.funding_index - position.funding_index) // FUNDING_SCALE)


def health(account: Account, markets: list[MarketState]) -> Health:
    """Net collateral and requirements of ``account`` at the oracle prices, counting
    unsettled funding."""
    net = account.balance
    initial = 0
    maintenance = 0
    for market_id, position in account.positions.items():
        market = markets[market_id]
        size = position.size
        notional = abs(size) * market.oracle_price * market.quantum
        net += notional if size >= 0 else -notional
        if position.funding_index != market.funding_index:
            net -= funding_owed(position, market)
        initial += (notional * market.initial_ppm + _CEIL) // PPM
        maintenance += (notional * market.maintenance_ppm + _CEIL) // PPM
    return Health(net, initial, maintenance)


def health_after(
    account: Account,
    markets: list[MarketState],
    market_id: int,
    new_size: int,
    cash_delta: int,
) -> Health:
    """:func:`health` as if the position in ``market_id`` were ``new_size`` lots and the
    balance moved by ``cash_delta`` micro-units (a prospective fill)."""
    net = account.balance + cash_delta
    initial = 0
    maintenance = 0
    seen = False
    for other_id, position in account.positions.items():
        market = markets[other_id]
        if position.funding_index != market.funding_index:
            net -= funding_owed(position, market)
        if other_id == market_id:
            seen = True
            size = new_size
        else:
            size = position.size
        notional = abs(size) * market.oracle_price * market.quantum
        net += size * market.oracle_price * market.quantum
        initial += -(-notional * market.initial_ppm // PPM)
        maintenance += -(-notional * market.maintenance_ppm // PPM)
    if not seen and new_size:
        market = markets[market_id]
        notional = abs(new_size) * market.oracle_price * market.quantum
        net += new_size * market.oracle_price * market.quantum
        initial += -(-notional * market.initial_ppm // PPM)
        maintenance += -(-notional * market.maintenance_ppm // PPM)
    return Health(net, initial, maintenance)


def bankruptcy_price(
    account: Account, markets: list[MarketState], market_id: int, close_size: int
) -> int:
    """The price (ticks) at which closing ``close_size`` lots of the position in
    ``market_id`` (same sign as the position) uses up exactly the share of the account's
    net collateral that the closed lots' maintenance requirement stands for.

    Rounded in favour of the liquidated account (a long's price up, a short's down), so
    closing at it never leaves the account below zero on that share. At least 1 tick.
    """
    state = health(account, markets)
    market = markets[market_id]
    closed_mmr = requirement(
        close_size, market.oracle_price, market.quantum, market.maintenance_ppm
    )
    total_mmr = state.maintenance or 1
    scale = total_mmr * abs(close_size) * market.quantum
    share = state.net * closed_mmr
    if close_size > 0:
        price = market.oracle_price - share // scale
    else:
        price = market.oracle_price + share // scale
    return max(price, 1)
