"""Records the margin engine reports about itself (read by the node's metrics collector).

Declarations only: frozen dataclasses stay Python (mypyc does not compile them).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClearingStatistics"]


@dataclass(frozen=True, slots=True)
class ClearingStatistics:
    """The clearing house at a glance. ``open_interest``: per market id, the sum of long
    positions in lots (equal to the sum of shorts); collateral in micro-units."""

    accounts: int
    insurance_fund: int
    fee_pool: int
    open_interest: tuple[int, ...]
