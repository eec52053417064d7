"""Clearing-house rules at their one-lot boundaries, found unguarded by ``make mutate``
(docs/mutation-report.md): what a position costs (the deleveraging ranking reads it) when
it is reduced to one lot or flipped from one lot, and the open interest and fee pool that
statistics() reports to the metrics."""

from __future__ import annotations

from margin import ClearingHouse, MarketState
from tests.exchange.support import genesis


def _markets() -> list[MarketState]:
    return [MarketState(m) for m in genesis({}).markets]


def test_a_position_reduced_to_one_lot_keeps_its_cost_pro_rata() -> None:
    markets = _markets()
    clearing = ClearingHouse(markets, 0)
    account = clearing.open_account(b"c" * 20, 10**12)
    q = markets[0].quantum
    clearing.change_position(account, 0, 3, 100)
    clearing.change_position(account, 0, -2, 130)  # 3 -> 1: a third of 300 x q
    assert account.positions[0].cost == 100 * q
    clearing.change_position(account, 0, -3, 90)  # 1 -> -2: flipped, at the flip's price
    assert account.positions[0].cost == -2 * 90 * q


def test_statistics_report_the_open_interest_and_the_fee_pool() -> None:
    """Open interest is the sum of the long positions: 1 + 3 lots against a short of 4."""
    markets = _markets()
    clearing = ClearingHouse(markets, 0)
    a, b, c = (clearing.open_account(bytes([i]) * 20, 10**12) for i in (1, 2, 3))
    clearing.settle_fill(0, c, a, True, 50000, 1, 500)
    clearing.settle_fill(0, c, b, True, 50000, 3, 500)
    stats = clearing.statistics()
    assert stats.open_interest == (4, 0)
    assert stats.accounts == 3
    # maker rebate 100 ppm, taker fee 500 ppm of 200,000,000: the pool keeps 400 ppm
    assert stats.fee_pool == clearing.fee_pool == 200_000_000 * 400 // 1_000_000
