"""The block's prices: the oracle step, and the price bands derived from it.

**The oracle step** runs first in every block. The prices come from the vote extensions of
the previous height's extended commit (:func:`appchaind.exchange.oracle.aggregate`: per
market the stake-weighted median when validators with at least 2/3 of the stake reported
it, moved at most ``max_oracle_move_ppm`` per block; otherwise unchanged), or are decided
prices given with the block (tests and replays; clamped to ``0 < price < MAX_PRICE``).
Each market whose price moves reports an ``oracle`` event (price and previous in ticks,
reported and total voting power).

**The price bands** then hold for the whole block: per market, a limit order's price must
lie within the oracle price ± ``price_band_ppm`` (:func:`margin.markets.protection_price`,
which is also the worst price a market order may fill at).
"""

from __future__ import annotations

from collections.abc import Sequence

from appchaind.chain.events import Event, PendingEvent
from appchaind.exchange import oracle
from appchaind.exchange.state import ExchangeState
from margin import protection_price
from orderbook import MAX_PRICE

__all__ = ["update_oracle", "refresh_bands"]


def update_oracle(
    state: ExchangeState,
    votes: Sequence[tuple[int, bytes]] | None,
    total_power: int | None,
    decided: Sequence[int] | None,
    events: list[PendingEvent],
) -> bool:
    """Move the oracle prices for this block; True if any price changed. ``votes`` are
    (voting power, vote extension) with ``total_power`` the validator set's power (the
    sum of the votes' if None); ``decided`` are prices per market (ticks)."""
    markets = state.markets
    if decided is not None:
        rows = [
            (max(1, min(p, MAX_PRICE - 1)), m.oracle_price, 0)
            for p, m in zip(decided, markets, strict=True)
        ]
        total = 0
    elif votes:
        total = total_power if total_power is not None else sum(p for p, _ in votes)
        rows = oracle.aggregate(
            votes,
            total,
            [m.oracle_price for m in markets],
            [m.params.max_oracle_move_ppm for m in markets],
        )
    else:
        return False
    moved = False
    for market, (price, previous, reported) in zip(markets, rows, strict=True):
        if price != previous:
            moved = True
            market.oracle_price = price
            events.append(
                Event(
                    "oracle",
                    {
                        "market": market.market_id, "price": price, "previous": previous,
                        "reported_power": reported, "total_power": total,
                    },
                )
            )  # fmt: skip
    return moved


def refresh_bands(state: ExchangeState) -> None:
    """Per market, for this block: (lowest, highest) acceptable limit price in ticks."""
    state.bands = [
        (protection_price(market, 0), protection_price(market, 1)) for market in state.markets
    ]
