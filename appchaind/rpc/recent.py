"""Recent trades and liquidations, kept for the ``trades`` and ``liquidations`` methods
(and the HTTP port's status page).

The node commits thousands of orders a second under load, so the commit path keeps only
the raw events: (height, block time, tx hash, kind, attributes) of the last
:data:`TRADES_PER_MARKET` fills of each market and the last :data:`LIQUIDATIONS` liquidation
steps, in bounded deques (an append is O(1) and the oldest entry falls out). Their JSON
views are built only when someone asks. What is kept is since the node started: a
restarted node shows the trades committed after it came back, not those before.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from appchaind.rpc import views

if TYPE_CHECKING:
    from appchaind.abci import FinalizeResult
    from config.genesis import MarketParams

__all__ = ["LIQUIDATIONS", "TRADES_PER_MARKET", "RecentActivity"]

#: Fills kept per market (the most a ``trades`` call returns).
TRADES_PER_MARKET = 50
#: Liquidation events kept (the most a ``liquidations`` call returns).
LIQUIDATIONS = 20

#: (height, block time ms, tx hash or None for a block event, kind, attributes)
_Entry = tuple[int, int, bytes | None, str, dict[str, Any]]


class RecentActivity:
    """The last fills per market and the last liquidations, as the state machine reported
    them; :meth:`record` is a node ``on_commit`` step and never builds a view."""

    def __init__(
        self,
        markets: list[MarketParams],
        *,
        trades_per_market: int = TRADES_PER_MARKET,
        liquidations: int = LIQUIDATIONS,
    ) -> None:
        self.markets = markets
        self._fills: list[deque[_Entry]] = [deque(maxlen=trades_per_market) for _ in markets]
        self._liquidations: deque[_Entry] = deque(maxlen=liquidations)

    def record(
        self, height: int, time_ms: int, hashes: list[bytes], result: FinalizeResult
    ) -> None:
        """Keeps the fills and liquidations of one committed block: those of its txs (with
        the tx hash), then the block's own (the end-of-block upkeep's, without one).

        Walks the block backwards and stops once every market has as many of its fills as
        its deque holds: under load a block carries thousands of orders, and only its last
        fills can stay."""
        deques = self._fills
        count = len(deques)
        newest: list[list[_Entry]] = [[] for _ in deques]
        missing = [d.maxlen or 0 for d in deques]
        short = sum(1 for m in missing if m > 0)
        liquidations: list[_Entry] = []
        for kind, attributes in reversed(result.events):
            if kind == "fill":
                market_id = attributes["market"]
                if 0 <= market_id < count and missing[market_id] > 0:
                    newest[market_id].append((height, time_ms, None, kind, attributes))
                    missing[market_id] -= 1
                    short -= missing[market_id] == 0
            elif kind == "liquidation":
                liquidations.append((height, time_ms, None, kind, attributes))
        outcomes = result.tx_results
        i = len(outcomes)
        while short > 0 and i > 0:
            i -= 1
            for kind, attributes in reversed(outcomes[i].events):
                if kind != "fill":
                    continue
                market_id = attributes["market"]
                if 0 <= market_id < count and missing[market_id] > 0:
                    newest[market_id].append((height, time_ms, hashes[i], kind, attributes))
                    missing[market_id] -= 1
                    short -= missing[market_id] == 0
        for market_id, entries in enumerate(newest):
            if entries:
                deques[market_id].extend(reversed(entries))
        if liquidations:
            self._liquidations.extend(reversed(liquidations))

    def trades(self, market_id: int | None, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` fills of one market (or of every market, ``None``), newest
        first."""
        if market_id is not None:
            entries = list(self._fills[market_id])
        else:
            # Each deque is in commit order; ties in height keep the markets' order.
            entries = sorted((e for fills in self._fills for e in fills), key=lambda e: e[0])
        return [self._view(e) for e in reversed(entries[-limit:])] if limit > 0 else []

    def liquidations(self, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` liquidation events, newest first."""
        entries = list(self._liquidations)
        return [self._view(e) for e in reversed(entries[-limit:])] if limit > 0 else []

    def _view(self, entry: _Entry) -> dict[str, Any]:
        height, time_ms, h, kind, attributes = entry
        view = views.event_view(kind, attributes, self.markets)
        view["height"] = height
        view["time_ms"] = time_ms
        view["tx_hash"] = None if h is None else h.hex()
        return view
