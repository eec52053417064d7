"""The figures of a load run and how they are printed (:class:`LoadReport`), and the
statistics they are computed with."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appchaind.localnet.load_senders import MAX_RESTING

__all__ = ["LoadReport", "longest_gap", "percentile", "prometheus_value"]


@dataclass
class LoadReport:
    """The figures of one run (:mod:`appchaind.localnet.load` defines them). Times in
    ms; rates in orders/s; refusals keyed by code name (``MEMPOOL_FULL``) or RPC error
    (``RPC_RATE_LIMITED``)."""

    validators: int
    accounts: int
    senders: int
    rate: float
    duration_s: float
    mix: str
    submitted: int
    accepted: int
    committed: int
    committed_in_run: int
    not_committed: int
    offered_rate: float
    committed_rate: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    rejected: dict[str, int]
    failed_in_block: dict[str, int]
    kinds: dict[str, int]
    cancels_as_limits: int
    limits_as_cancels: int
    blocks: int
    mean_block_interval_ms: float | None
    max_block_gap_ms: float | None
    txs_per_block: float | None
    first_height: int | None
    last_height: int | None
    sender_lag_p99_ms: float | None
    sender_lag_max_ms: float | None
    answer_p50_ms: float | None
    answer_p99_ms: float | None
    #: Sender processes' CPU time per order submitted, in microseconds (sign, encode, send,
    #: read the answer), and the busiest sender's share of one core over the run.
    sender_cpu_us_per_order: float | None
    sender_cpu_share: float | None
    #: Each node's mempool size when the run ended (after the grace period).
    mempools_at_end: list[int | None] = field(default_factory=list)
    #: A few hashes of accepted txs never seen committed (``appchaind query tx HASH``).
    not_committed_sample: list[str] = field(default_factory=list)
    #: With ``--builder``: blocks the builder won during the run (and just after: bids
    #: sent during it), what its bids paid (micro-units), and the proposers' own blocks by
    #: reason. None / empty without a builder.
    builder_blocks: int | None = None
    builder_paid: int | None = None
    local_fallbacks: dict[str, int] = field(default_factory=dict)
    #: With ``--builder``: its bids the proposers refused at their turn, by reason.
    rejected_bids: dict[str, int] = field(default_factory=dict)
    #: With ``--builder``: the proposers' waits for bids during the run (what the auction
    #: adds to a block's time): how many, their mean, and the bucket bounds (ms) under
    #: which half and 99% of them were.
    auction_waits: int | None = None
    auction_wait_mean_ms: float | None = None
    auction_wait_p50_ms: float | None = None
    auction_wait_p99_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def render(self) -> str:
        """The human-readable summary ``appchaind bench load`` prints."""

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:,.0f} ms"

        def reasons(counts: dict[str, int]) -> str:
            return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) or "none"

        per_block = "-" if self.txs_per_block is None else f"{self.txs_per_block:,.1f}"
        heights = (
            ""
            if self.first_height is None
            else f" (heights {self.first_height}-{self.last_height})"
        )
        return "\n".join(
            [
                f"load: {self.validators} validators, {self.accounts} accounts, "
                f"{self.senders} senders, mix {self.mix}, {self.rate:g} orders/s for "
                f"{self.duration_s:g} s",
                f"offered     {self.offered_rate:,.1f} orders/s ({self.submitted:,} submitted; "
                f"sender lag p99 {ms(self.sender_lag_p99_ms)}, max {ms(self.sender_lag_max_ms)}; "
                f"sender CPU {_figure(self.sender_cpu_us_per_order, ' us')} per order, busiest "
                f"sender {_figure(self.sender_cpu_share and 100 * self.sender_cpu_share, '%')} "
                "of a core)",
                f"accepted    {self.accepted:,} ({_share(self.accepted, self.submitted)}; "
                f"sync answer p50 {ms(self.answer_p50_ms)}, p99 {ms(self.answer_p99_ms)})",
                f"committed   {self.committed_rate:,.1f} orders/s after the warm-up "
                f"({self.committed_in_run:,} during the run); {self.committed:,} of the "
                f"{self.accepted:,} accepted committed in all, {self.not_committed:,} not "
                "after the grace period",
                f"latency     submit->commit p50 {ms(self.p50_ms)}, p90 {ms(self.p90_ms)}, "
                f"p99 {ms(self.p99_ms)}, max {ms(self.max_ms)}",
                f"refused     {reasons(self.rejected)}",
                f"failed in block  {reasons(self.failed_in_block)}",
                f"blocks      {self.blocks} during the run{heights}, mean interval "
                f"{ms(self.mean_block_interval_ms)}, max gap {ms(self.max_block_gap_ms)}, "
                f"{per_block} txs per block",
                "mempools    at the end: "
                + ", ".join("-" if n is None else f"{n:,}" for n in self.mempools_at_end)
                + " txs",
                f"orders      {reasons(self.kinds)} (cancels sent as limits for want of an "
                f"old enough order: {self.cancels_as_limits:,}; limits sent as cancels at "
                f"{MAX_RESTING} resting: {self.limits_as_cancels:,})",
                *self._builder_lines(reasons),
            ]
        )

    def _builder_lines(self, reasons: Callable[[dict[str, int]], str]) -> list[str]:
        if self.builder_blocks is None:
            return []
        own = sum(self.local_fallbacks.values())
        return [
            f"builder     won {self.builder_blocks:,} blocks "
            f"({_share(self.builder_blocks, self.builder_blocks + own)} of the blocks "
            f"proposed since it started), bids paid {(self.builder_paid or 0) / 10**6:,.2f} "
            f"quote; proposers' own blocks: {reasons(self.local_fallbacks)}; its bids "
            f"refused at the proposer's turn: {reasons(self.rejected_bids)}",
            f"auction     {self.auction_waits or 0:,} waits for bids, mean "
            f"{_figure(self.auction_wait_mean_ms, ' ms')}, p50 <= "
            f"{_figure(self.auction_wait_p50_ms, ' ms')}, p99 <= "
            f"{_figure(self.auction_wait_p99_ms, ' ms')}",
        ]


def _figure(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:,.0f}{unit}"


def _share(part: int, whole: int) -> str:
    return "-" if not whole else f"{100 * part / whole:.1f}%"


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def longest_gap(arrivals: list[float], start: float, end: float, now: float) -> float:
    """The longest time between consecutive block arrivals (seconds) among the gaps that
    overlap the run ``[start, end]``; the run's start stands for a block before it if none
    arrived, and ``now`` for the next block if none arrived after the run (a stall)."""
    edges = sorted(arrivals)
    if not edges or edges[0] > start:
        edges.insert(0, start)
    if edges[-1] <= end:
        edges.append(max(now, end))
    return max(
        (b - a for a, b in zip(edges, edges[1:], strict=False) if b >= start and a <= end),
        default=end - start,
    )


def prometheus_value(text: str, name: str) -> int | None:
    """The value of the metric ``name`` in a Prometheus exposition (its first sample)."""
    for line in text.splitlines():
        if line.startswith((f"{name} ", f"{name}{{")):
            return int(float(line.rsplit(" ", 1)[1]))
    return None
