"""Cross-margin accounts, requirements, funding, liquidation and deleveraging.

Pure and deterministic: integers only (micro-units of quote, ticks, lots, ppm), no clock,
no I/O. :class:`ClearingHouse` holds the accounts and funds; :mod:`margin.health` is the
arithmetic; :func:`maker_check` is the margin rule the order book applies to each maker;
:class:`LiquidationIndex` finds the accounts a price move can have made liquidatable and
:class:`Liquidator` runs the end-of-block liquidation process (closing through the book,
the insurance fund, deleveraging); :mod:`margin.funding` samples premiums and moves the
funding index.
"""

from appchaind import native  # noqa: F401  (first: selects the compiled build or the source)
from margin.accounts import Account, NonceError, Position
from margin.clearing import ClearingError, ClearingHouse
from margin.funding import funding_tick, premium_ppm, sample_premium
from margin.health import (
    Health,
    bankruptcy_price,
    fee,
    funding_owed,
    health,
    health_after,
    requirement,
)
from margin.liquidation import LiquidationIndex, deleveraging_ranking
from margin.liquidator import Liquidator
from margin.makers import maker_check
from margin.markets import FUNDING_SCALE, PPM, MarketState, protection_price

__all__ = [
    "Account",
    "NonceError",
    "Position",
    "ClearingError",
    "ClearingHouse",
    "funding_tick",
    "premium_ppm",
    "sample_premium",
    "Health",
    "bankruptcy_price",
    "fee",
    "funding_owed",
    "health",
    "health_after",
    "requirement",
    "LiquidationIndex",
    "deleveraging_ranking",
    "Liquidator",
    "maker_check",
    "FUNDING_SCALE",
    "PPM",
    "MarketState",
    "protection_price",
]
