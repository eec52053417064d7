"""Funding: the per-block premium sample and the clamped rate applied at each interval.

The premium of one block is how far the impact prices sit from the oracle, in ppm of the
oracle price: positive when even the impact bid is above the oracle (longs pay), negative
when the impact ask is below it (shorts pay), zero otherwise or when the book is too thin.
At a funding tick the rate is the average premium over the interval, truncated toward
zero and clamped to ±max_funding_rate_ppm; the index moves by rate × price × quantum.
"""

from __future__ import annotations

from margin.markets import PPM, MarketState

__all__ = ["premium_ppm", "sample_premium", "funding_tick"]


def premium_ppm(oracle_price: int, impact_bid: int | None, impact_ask: int | None) -> int:
    """The premium (ppm of the oracle price) given impact prices in ticks (None: too thin).

    Impact prices here are the average fill prices of the impact notional, rounded so that
    the premium is never overstated (bid down, ask up)."""
    if impact_bid is not None and impact_bid > oracle_price:
        return (impact_bid - oracle_price) * PPM // oracle_price
    if impact_ask is not None and impact_ask < oracle_price:
        return -((oracle_price - impact_ask) * PPM // oracle_price)
    return 0


def sample_premium(market: MarketState, premium: int) -> None:
    market.premium_sum += premium
    market.premium_samples += 1


def funding_tick(market: MarketState, max_rate_ppm: int) -> tuple[int, int]:
    """Apply the interval's funding to the market's cumulative index and reset the
    accumulators. Returns (rate ppm, index step)."""
    samples = market.premium_samples
    if samples:
        total = market.premium_sum
        rate = total // samples if total >= 0 else -(-total // samples)
    else:
        rate = 0
    rate = max(-max_rate_ppm, min(max_rate_ppm, rate))
    step = rate * market.oracle_price * market.quantum
    market.funding_index += step
    market.premium_sum = 0
    market.premium_samples = 0
    market.last_funding_rate_ppm = rate
    return rate, step
