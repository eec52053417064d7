"""Per-market margin state: the static parameters the margin engine reads and the dynamic
oracle price, cumulative funding index and premium accumulators.

Units: prices in ticks, sizes in lots, collateral in quote micro-units, fractions in ppm.
``quantum`` is the notional in micro-units of one lot at one tick, so a position of ``s``
lots at ``p`` ticks is worth ``s * p * quantum`` micro-units. The funding index is in
micro-units per lot scaled by :data:`FUNDING_SCALE` (so an index step is exact: it is
``rate_ppm * price * quantum``). The price band (``price_band_ppm`` around the oracle) bounds
what a market order, or a liquidation the insurance fund backs, may trade at.
"""

from __future__ import annotations

from typing import Final

from config import genesis
from config.genesis import MarketParams
from orderbook.types import MAX_PRICE

__all__ = ["FUNDING_SCALE", "PPM", "MarketState", "protection_price"]

#: Parts per million (fractions are integers of this many parts): config.genesis.PPM,
#: restated as a literal here because compiled modules inline a Final literal, and only
#: the sources of the compiled modules are checked for a stale build (appchaind.native).
PPM: Final = 1_000_000
assert PPM == genesis.PPM

#: The funding index counts millionths of a micro-unit per lot.
FUNDING_SCALE: Final = PPM


class MarketState:
    """One perpetual market as the margin engine sees it.

    ``oracle_price`` (ticks) is the mark every requirement is computed at;
    ``funding_index`` (micro-units per lot × FUNDING_SCALE) only moves at funding ticks;
    ``premium_sum``/``premium_samples`` accumulate per-block premiums (ppm) until the next tick.
    """

    __slots__ = (
        "market_id",
        "params",
        "quantum",
        "initial_ppm",
        "maintenance_ppm",
        "maker_fee_ppm",
        "taker_fee_ppm",
        "liquidation_fee_ppm",
        "oracle_price",
        "funding_index",
        "premium_sum",
        "premium_samples",
        "last_funding_rate_ppm",
    )

    def __init__(self, params: MarketParams) -> None:
        self.market_id = params.market_id
        self.params = params
        self.quantum = params.quantum
        self.initial_ppm = params.initial_margin_ppm
        self.maintenance_ppm = params.maintenance_margin_ppm
        self.maker_fee_ppm = params.maker_fee_ppm
        self.taker_fee_ppm = params.taker_fee_ppm
        self.liquidation_fee_ppm = params.liquidation_fee_ppm
        self.oracle_price = params.initial_oracle_price
        self.funding_index = 0
        self.premium_sum = 0
        self.premium_samples = 0
        self.last_funding_rate_ppm = 0

    def record(self) -> list[int]:
        """Canonical record of the dynamic state (the app hash covers it)."""
        return [
            self.oracle_price,
            self.funding_index,
            self.premium_sum,
            self.premium_samples,
            self.last_funding_rate_ppm,
        ]

    def restore(self, record: list[int]) -> None:
        (
            self.oracle_price,
            self.funding_index,
            self.premium_sum,
            self.premium_samples,
            self.last_funding_rate_ppm,
        ) = record


def protection_price(market: MarketState, side: int) -> int:
    """The worst price (ticks) an order on ``side`` (1 buy, 0 sell) may trade at without a
    limit of its own: the oracle price plus (buy, rounded down) or minus (sell, rounded up)
    the price band, within ``0 < price < MAX_PRICE``."""
    band = market.params.price_band_ppm
    if side:
        return min(MAX_PRICE - 1, market.oracle_price * (PPM + band) // PPM)
    return max(1, -(-market.oracle_price * (PPM - band) // PPM))
