"""Records the exchange application reports about itself (read by the node's metrics
collector and never by reaching into the application's books or accounts).

Declarations only: frozen dataclasses stay Python (mypyc does not compile them).
"""

from __future__ import annotations

from dataclasses import dataclass

from margin.statistics import ClearingStatistics

__all__ = ["ExchangeStatistics", "MarketStatistics", "StakingStatistics"]


@dataclass(frozen=True, slots=True)
class MarketStatistics:
    """One market as of the last executed block: prices in ticks, sizes in lots."""

    market_id: int
    symbol: str
    oracle_price: int
    best_bid: int | None
    best_ask: int | None
    open_interest: int
    funding_rate_ppm: int
    resting_orders: int


@dataclass(frozen=True, slots=True)
class StakingStatistics:
    """The staking state as of the last executed block: validators known and in the set,
    micro-units bonded and unbonding, each validator's (operator address, moniker, power
    given to consensus) in operator order; validators jailed (tombstoned included) and
    tombstoned, micro-units slashed in all, (operator, missed blocks in the downtime
    window) of the validators that missed any, in operator order, and the micro-units of
    rewards handed to validators and not yet collected."""

    validators: int
    in_set: int
    bonded: int
    unbonding: int
    powers: tuple[tuple[bytes, str, int], ...]
    jailed: int
    tombstoned: int
    slashed_total: int
    missed_blocks: tuple[tuple[bytes, int], ...]
    rewards_unpaid: int


@dataclass(frozen=True, slots=True)
class ExchangeStatistics:
    """The exchange as of the last executed block (``height``)."""

    height: int
    markets: tuple[MarketStatistics, ...]
    clearing: ClearingStatistics
    staking: StakingStatistics
