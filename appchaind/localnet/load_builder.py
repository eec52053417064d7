"""``appchaind bench load --builder``: the localnet's builder account registered and an
``appchaind builder`` process bidding for every block during the load, so that the
submit->commit latency with builders can be set against the same load without them.

What the run reports of it: the blocks the builder won (its ``bids_won`` before and after,
from the ``builders`` query), what its bids paid, and why the proposers built their own
blocks when they did (``appchaind_pbs_local_fallback_total`` by reason, summed over the
validators).
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import trio

from appchaind.chain.crypto import PrivateKey
from appchaind.chain.units import to_units
from appchaind.client.library import Client
from appchaind.localnet.homes import LocalnetNode
from appchaind.rpc.views import QUOTE_UNIT

__all__ = ["LoadBuilder", "AuctionWaits", "fallbacks", "by_reason", "auction_waits"]

#: The builder's bond: enough for a bid per block of a long run.
BOND = "100000"
FALLBACK_METRIC = "appchaind_pbs_local_fallback_total"
WAIT_METRIC = "appchaind_pbs_auction_wait_seconds"
REJECTED_METRIC = "appchaind_pbs_rejected_bids_total"


class AuctionWaits:
    """The proposers' waits for bids (``appchaind_pbs_auction_wait_seconds``) summed over
    nodes: how many, their total in seconds, and the cumulative count per bucket bound."""

    def __init__(
        self, count: int = 0, total_s: float = 0.0, buckets: dict[float, int] | None = None
    ):
        self.count = count
        self.total_s = total_s
        self.buckets = buckets or {}

    def since(self, earlier: AuctionWaits) -> AuctionWaits:
        return AuctionWaits(
            self.count - earlier.count,
            self.total_s - earlier.total_s,
            {le: n - earlier.buckets.get(le, 0) for le, n in self.buckets.items()},
        )

    def mean_ms(self) -> float | None:
        return self.total_s * 1000 / self.count if self.count else None

    def quantile_ms(self, q: float) -> float | None:
        """The bucket bound (ms) at or under which a share ``q`` of the waits were
        (an upper bound of the quantile; None without waits or past the last bound)."""
        if not self.count:
            return None
        for le in sorted(self.buckets):
            if self.buckets[le] >= q * self.count:
                return None if le == float("inf") else le * 1000
        return None


class LoadBuilder:
    """The builder of the localnet whose accounts are in ``accounts`` (its
    ``builder.json``), following node 0 of ``nodes``; its log in ``accounts/../builder.log``."""

    def __init__(self, accounts: Path, nodes: list[LocalnetNode]) -> None:
        self.key_file = accounts / "builder.json"
        if not self.key_file.exists():
            raise FileNotFoundError(
                f"{self.key_file}: no builder account in this localnet (made by an older "
                "`appchaind localnet init`?); --builder needs one"
            )
        self.key = PrivateKey.load(self.key_file)
        self.nodes = nodes
        self.log_path = accounts.parent / "builder.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start_record: tuple[int, int] = (0, 0)
        self.start_fallbacks: dict[str, int] = {}
        self.start_rejected: dict[str, int] = {}
        self.start_waits = AuctionWaits()

    async def start(self, client: Client) -> None:
        """Registers the builder (once per localnet), starts its process and waits until
        it has bid for a block."""
        record = await self._record(client)
        if record is None:
            result = await client.register_builder(self.key, "load-builder", BOND)
            if not result.ok:
                raise ValueError(f"could not register the builder: {result.log}")
            record = await self._record(client)
            assert record is not None
        self.start_record = record
        self.start_fallbacks = await trio.to_thread.run_sync(fallbacks, self.nodes)
        self.start_rejected = await trio.to_thread.run_sync(by_reason, self.nodes, REJECTED_METRIC)
        self.start_waits = await trio.to_thread.run_sync(auction_waits, self.nodes)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "appchaind.cli", "builder", "--home",
                 str(self.nodes[0].home), "--key", str(self.key_file)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        # It joins the peers and follows the next block before it bids.
        height = (await client.status())["height"]
        while (await client.status())["height"] < height + 2:
            await trio.sleep(0.1)

    async def waits(self) -> AuctionWaits:
        """The proposers' waits for bids since :meth:`start` (what the auction adds to a
        block's time)."""
        now = await trio.to_thread.run_sync(auction_waits, self.nodes)
        return now.since(self.start_waits)

    async def rejected(self) -> dict[str, int]:
        """The builder's bids proposers refused at their turn since :meth:`start`, by
        reason (over_budget, bid_does_not_hold, bad_tx, ...)."""
        now = await trio.to_thread.run_sync(by_reason, self.nodes, REJECTED_METRIC)
        return _since(now, self.start_rejected)

    async def figures(self, client: Client) -> tuple[int, int, dict[str, int]]:
        """Blocks won and micro-units paid since :meth:`start`, and the proposers' own
        blocks since then by reason."""
        record = await self._record(client)
        assert record is not None
        now = await trio.to_thread.run_sync(fallbacks, self.nodes)
        delta = _since(now, self.start_fallbacks)
        return record[0] - self.start_record[0], record[1] - self.start_record[1], delta

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    async def _record(self, client: Client) -> tuple[int, int] | None:
        """(bids won, paid in micro-units) of the builder, or None if not registered."""
        address = self.key.address.hex()
        for b in (await client.builders())["builders"]:
            if b["address"] == address:
                return b["bids_won"], to_units(b["paid"], QUOTE_UNIT, "paid")
        return None


def _since(now: dict[str, int], start: dict[str, int]) -> dict[str, int]:
    """The counts by reason that grew since ``start``, and by how much."""
    return {
        reason: count - start.get(reason, 0)
        for reason, count in sorted(now.items())
        if count > start.get(reason, 0)
    }


def _expositions(nodes: list[LocalnetNode]) -> list[str]:
    """The /metrics text of each of ``nodes`` that answers."""
    texts = []
    for node in nodes:
        try:
            url = f"http://127.0.0.1:{node.http_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                texts.append(response.read().decode())
        except (OSError, ValueError):
            continue
    return texts


def auction_waits(nodes: list[LocalnetNode]) -> AuctionWaits:
    """``appchaind_pbs_auction_wait_seconds`` summed over ``nodes``."""
    waits = AuctionWaits()
    for text in _expositions(nodes):
        for line in text.splitlines():
            name, _, value = line.rpartition(" ")
            if name.startswith(WAIT_METRIC + "_count{"):
                waits.count += int(float(value))
            elif name.startswith(WAIT_METRIC + "_sum{"):
                waits.total_s += float(value)
            elif name.startswith(WAIT_METRIC + "_bucket{"):
                le = float(name.split('le="', 1)[1].split('"', 1)[0])
                waits.buckets[le] = waits.buckets.get(le, 0) + int(float(value))
    return waits


def fallbacks(nodes: list[LocalnetNode]) -> dict[str, int]:
    """The proposers' own blocks by reason (``appchaind_pbs_local_fallback_total``),
    summed over ``nodes``."""
    return by_reason(nodes, FALLBACK_METRIC)


def by_reason(nodes: list[LocalnetNode], metric: str) -> dict[str, int]:
    """The counter ``metric`` (labelled by reason) by reason, summed over ``nodes``
    (those whose /metrics answer)."""
    total: dict[str, int] = {}
    for text in _expositions(nodes):
        for line in text.splitlines():
            if not line.startswith(metric + "{"):
                continue
            labels, _, value = line.rpartition(" ")
            reason = labels.split('reason="', 1)[1].split('"', 1)[0]
            total[reason] = total.get(reason, 0) + int(float(value))
    return total
