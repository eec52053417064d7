"""Order flow end to end (issue 14): ``appchaind bench load`` on localnets, against the
issue's targets for four validators, for overload, and for one validator.

Run by ``make bench`` (bench/run.py), never by the tests (they run a bounded version):

    PYTHONPATH=. python bench/bench_load.py [--seconds 60] [--stages search,sustained,...]

The stages, in order (``--stages`` picks some; each run is ``run_load`` with its usual
mix of signed orders from ``--accounts`` fresh accounts, see appchaind/localnet/load.py):

- **search** (four validators): the sustained capacity, the highest offered rate whose
  committed rate is at least ``PASS_SHARE`` of it. Probes of ``--seconds``/4 (3 to 15 s)
  from ``--start-rate``, doubling while they pass; after the first that fails, one probe
  at the geometric mean of the last pass and that failure (``--probes`` probes at most;
  rates halve instead if the first fails). ``--capacity R`` skips the search.
- **sustained**: the capacity offered for ``--seconds``: committed orders/s (target
  >= 3,000).
- **latency**: ``--latency-rate`` (2,000) orders/s for half of ``--seconds``:
  submit->commit p50 (target <= 300 ms) and p99 (<= 1 s).
- **overload**: 4x the capacity for ``--seconds``: the longest gap between blocks
  (<= 2 s), the committed rate (>= 90% of the capacity), each validator's RSS (sampled
  every ``RSS_EVERY_S``; its growth over the second half of the run, target <= 10%: the
  issue asks for memory bounded), and the recovery: from the moment the load stops, a
  probe order (a small resting buy from an account of its own, ``broadcast_tx`` mode
  ``commit`` to node 0) every ``PROBE_EVERY_S`` for ``--recovery-window`` seconds (20); the recovery
  time is the send time, after the load stopped, of the first probe from which on every
  probe committed within 1 s (target <= 10 s).
- **single** (one validator): probes from ``--single-start-rate``, doubling while they
  pass; the figure is the highest committed rate seen (target >= 15,000 orders/s).

The four-validator stages share one localnet (started here, on free loopback ports, in
a temporary directory); the single validator has its own. Before each run the nodes'
mempools get up to ``SETTLE_S`` to empty, so that no run starts behind the previous
one's backlog (the note says what was left in them when a run ended). The senders run on this
machine with the nodes: when their lag grows (printed by the load tool), the generator
was a limit too, and the offered rate in the notes says what was really offered.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import threading
import time
import urllib.error
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appchaind.chain.codes import Code  # noqa: E402
from appchaind.chain.crypto import PrivateKey  # noqa: E402
from appchaind.client.library import Client, RpcError, open_client  # noqa: E402
from appchaind.localnet.load import LoadOptions, LoadReport, default_senders, run_load  # noqa: E402
from appchaind.localnet.processes import Localnet  # noqa: E402
from bench.figures import Figure, write_figures  # noqa: E402

STAGES = ("search", "sustained", "latency", "overload", "single")
#: A rate passes when at least this share of what was offered is committed.
PASS_SHARE = 0.95
#: The load's simulated oracle walk (``appchaind bench load`` uses the same on its nets).
ORACLE_STEP_PPM = 500
RSS_EVERY_S = 0.5
PROBE_EVERY_S = 0.5
#: How long recovery probes are sent after the overload stops (``--recovery-window``).
RECOVERY_WINDOW_S = 20.0
RECOVERED_MS = 1_000.0
#: Between runs on one localnet, how long to wait at most for the mempools to empty.
SETTLE_S = 60.0

SUSTAINED_TARGET = 3_000.0
P50_TARGET_MS = 300.0
P99_TARGET_MS = 1_000.0
GAP_TARGET_MS = 2_000.0
OVERLOAD_SHARE = 0.90
RSS_GROWTH_TARGET_PCT = 10.0
RECOVERY_TARGET_S = 10.0
SINGLE_TARGET = 15_000.0


def passes(report: LoadReport) -> bool:
    return report.offered_rate > 0 and report.committed_rate >= PASS_SHARE * report.offered_rate


def summary(report: LoadReport) -> str:
    refused = sum(report.rejected.values())
    p50 = "-" if report.p50_ms is None else f"{report.p50_ms:,.0f}"
    p99 = "-" if report.p99_ms is None else f"{report.p99_ms:,.0f}"
    waiting = sum(n or 0 for n in report.mempools_at_end)
    return (
        f"offered {report.offered_rate:,.0f}/s, committed {report.committed_rate:,.0f}/s, "
        f"p50 {p50} ms, p99 {p99} ms, refused {refused:,}, accepted but not committed "
        f"{report.not_committed:,}" + (f", left in mempools {waiting:,}" if waiting else "")
    )


def mempool_sizes(net: Localnet) -> list[int | None]:
    """Each node's ``appchaind_mempool_size`` (None where /metrics does not answer)."""
    sizes: list[int | None] = []
    for i in range(len(net.nodes)):
        try:
            text = net.get_text(i, "/metrics")
        except (urllib.error.URLError, OSError):
            sizes.append(None)
            continue
        found = [
            line
            for line in text.splitlines()
            if line.startswith(("appchaind_mempool_size ", "appchaind_mempool_size{"))
        ]
        sizes.append(int(float(found[0].rsplit(" ", 1)[1])) if found else None)
    return sizes


def settle(net: Localnet) -> None:
    """Waits (at most ``SETTLE_S``) until every mempool is empty, so that a run does not
    start behind the previous run's backlog."""
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_S:
        sizes = mempool_sizes(net)
        if all(n == 0 for n in sizes):
            return
        time.sleep(0.5)
    print(f"  mempools not empty after {SETTLE_S:g} s: {sizes}", flush=True)


@dataclass
class Bench:
    """The runs of one invocation: options and what was found so far."""

    options: argparse.Namespace
    figures: list[Figure] = field(default_factory=list)
    capacity: float | None = None
    capacity_note: str = ""

    @property
    def probe_seconds(self) -> float:
        return min(15.0, max(3.0, self.options.seconds / 4))

    def load(
        self,
        net: Localnet,
        rate: float,
        seconds: float,
        on_start: Callable[[float], None] | None = None,
    ) -> LoadReport:
        """One load run on ``net``; ``on_start`` gets the (unix) time the offered load
        starts, as soon as it is known."""
        o = self.options
        settle(net)

        def progress(line: str) -> None:
            print(f"    {line}", flush=True)
            if on_start is not None and line.startswith("offering"):
                on_start(time.time() + 0.5)  # run_load starts its senders 0.5 s after saying so

        report = run_load(
            LoadOptions(accounts=o.accounts, rate=rate, duration_s=seconds, senders=o.senders),
            directory=net.dir,
            progress=progress,
        )
        print(f"  {rate:,.0f}/s for {seconds:g} s: {summary(report)}", flush=True)
        return report

    def search(self, net: Localnet, start_rate: float) -> tuple[float | None, list[LoadReport]]:
        """The highest passing offered rate (None if none passed) and every probe."""
        seconds = self.probe_seconds
        best: float | None = None
        failed: float | None = None
        rate = start_rate
        reports: list[LoadReport] = []
        for _ in range(self.options.probes):
            report = self.load(net, rate, seconds)
            reports.append(report)
            if passes(report):
                best = max(best or 0.0, report.offered_rate)
            else:
                failed = rate if failed is None else min(failed, rate)
            if best is None:
                rate /= 2
            elif failed is None:
                rate *= 2
            else:
                rate = math.sqrt(best * failed)
                if rate <= best * 1.05:
                    break
        return best, reports


def start_net(validators: int) -> tuple[Localnet, tempfile.TemporaryDirectory[str]]:
    tmp = tempfile.TemporaryDirectory(prefix="appchaind-bench-load-")
    net = Localnet(
        Path(tmp.name) / "net", validators, spare_nodes=0, chain_id="bench-load",
        config_overrides={"oracle": {"simulated_step_ppm": ORACLE_STEP_PPM}},
    )  # fmt: skip
    print(f"starting a {validators}-validator localnet in {tmp.name}", flush=True)
    net.start_all(own_session=True)
    net.wait_height(list(range(validators)), 2)
    return net, tmp


# ---------------------------------------------------------------------------- overload


def rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Watch:
    """During an overload run: each validator's RSS, and the recovery probes after it."""

    def __init__(
        self, net: Localnet, seconds: float, probe_key: PrivateKey, window_s: float
    ) -> None:
        self.net = net
        self.seconds = seconds
        self.window_s = window_s
        self.probe_key = probe_key
        self.start = threading.Event()
        self.start_at = 0.0
        self.stop = threading.Event()
        #: (unix time, [RSS MiB per validator])
        self.rss: list[tuple[float, list[float | None]]] = []
        #: (send time after the load stopped (s), latency in ms or None if not committed)
        self.probes: list[tuple[float, float | None]] = []
        #: why probes did not commit: result code names, RPC or connection errors
        self.probe_failures: Counter[str] = Counter()
        self.probe_error: str | None = None
        self._threads = [
            threading.Thread(target=self._sample_rss, daemon=True),
            threading.Thread(target=self._probe, daemon=True),
        ]

    def __enter__(self) -> Watch:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.start.set()  # a run that failed before starting: let the threads finish
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=self.window_s + 35)

    def started(self, at: float) -> None:
        self.start_at = at
        self.start.set()

    def _sample_rss(self) -> None:
        self.start.wait()
        pids = [proc.pid for _i, proc in sorted(self.net.procs.items())]
        end = self.start_at + self.seconds
        while time.time() < end and not self.stop.is_set():
            self.rss.append((time.time(), [rss_mib(pid) for pid in pids]))
            time.sleep(RSS_EVERY_S)

    def _probe(self) -> None:
        self.start.wait()
        try:
            trio.run(self._probes)
        except Exception as exc:  # reported as a note; the figure is then not measured
            self.probe_error = f"{type(exc).__name__}: {exc}"

    async def _probes(self) -> None:
        address = f"127.0.0.1:{self.net.nodes[0].rpc_port}"
        async with open_client(address) as client:
            load_end = self.start_at + self.seconds
            await trio.sleep(max(0.0, load_end - time.time()))
            markets = await client.markets()
            market = markets[0]
            tick = Decimal(market["tick_size"])
            price = (Decimal(market["oracle_price"]) * Decimal("0.98") / tick).to_integral_value(
                ROUND_DOWN
            ) * tick
            async with trio.open_nursery() as nursery:
                sent = 0
                while sent * PROBE_EVERY_S < self.window_s:
                    nursery.start_soon(self._one_probe, client, market, str(price), load_end)
                    sent += 1
                    await trio.sleep_until(
                        trio.current_time() + load_end + sent * PROBE_EVERY_S - time.time()
                    )

    async def _one_probe(
        self, client: Client, market: dict[str, str], price: str, load_end: float
    ) -> None:
        sent = time.time()
        latency: float | None = None
        try:
            result = await client.place_order(
                self.probe_key, market["market"], "buy", market["lot_size"], price=price
            )
            if result.ok:
                latency = (time.time() - sent) * 1000
            else:
                try:
                    self.probe_failures[Code(result.code).name] += 1
                except ValueError:
                    self.probe_failures[f"code {result.code}"] += 1
        except RpcError as exc:
            self.probe_failures[f"RPC {exc}"[:60]] += 1
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.probe_failures[type(exc).__name__] += 1
        self.probes.append((sent - load_end, latency))

    def recovery_s(self) -> float | None:
        """Send time (after the load stopped) of the first probe from which on every probe
        committed within ``RECOVERED_MS`` (None if the last one did not)."""
        recovered: float | None = None
        for offset, latency in sorted(self.probes):
            if latency is not None and latency <= RECOVERED_MS:
                if recovered is None:
                    recovered = offset
            else:
                recovered = None
        return None if recovered is None else max(0.0, recovered)

    def rss_growth(self) -> tuple[float | None, float | None, str]:
        """(largest growth in % of a validator's RSS over the second half, peak RSS MiB,
        a note)."""
        if len(self.rss) < 4:
            return None, None, "too few RSS samples"
        middle = self.rss[len(self.rss) // 2][1]
        last = self.rss[-1][1]
        growths = [
            100 * (b - a) / a for a, b in zip(middle, last, strict=True) if a and b is not None
        ]
        peak = max((m for _t, sample in self.rss for m in sample if m is not None), default=None)
        first = self.rss[0][1]
        note = "RSS MiB at start / middle / end: " + ", ".join(
            f"{a or 0:,.0f}/{b or 0:,.0f}/{c or 0:,.0f}"
            for a, b, c in zip(first, middle, last, strict=True)
        )
        return (max(growths) if growths else None), peak, note


async def _fund(address: str, key: PrivateKey) -> None:
    async with open_client(address) as client:
        result = await client.faucet(key, "100000")
        if not result.ok:
            raise SystemExit(f"the probe account's faucet tx failed: {result.log}")


# ---------------------------------------------------------------------------- stages


def four_validators(bench: Bench, stages: set[str]) -> None:
    o = bench.options
    net, tmp = start_net(4)
    try:
        if "search" in stages:
            print(
                f"search: probes of {bench.probe_seconds:g} s from {o.start_rate:,.0f}/s",
                flush=True,
            )
            best, reports = bench.search(net, o.start_rate)
            tried = ", ".join(
                f"{r.rate:,.0f}->{r.committed_rate:,.0f}" for r in reports
            )  # fmt: skip
            bench.capacity = best
            bench.capacity_note = f"search (offered->committed/s): {tried}"
            bench.figures.append(
                Figure(
                    "4 validators: capacity (search)", best, "orders/s",
                    note=f"highest offered rate committing >= {PASS_SHARE:.0%}; {bench.capacity_note}",
                )
            )  # fmt: skip
        if "sustained" in stages and bench.capacity:
            print(f"sustained: {bench.capacity:,.0f}/s for {o.seconds:g} s", flush=True)
            r = bench.load(net, bench.capacity, o.seconds)
            bench.figures.append(
                Figure(
                    f"4 validators: committed, sustained {o.seconds:g} s", r.committed_rate,
                    "orders/s", SUSTAINED_TARGET,
                    note=f"at the capacity found: {summary(r)}",
                )
            )  # fmt: skip
        if "latency" in stages:
            seconds = max(3.0, o.seconds / 2)
            print(f"latency: {o.latency_rate:,.0f}/s for {seconds:g} s", flush=True)
            r = bench.load(net, o.latency_rate, seconds)
            note = summary(r)
            bench.figures += [
                Figure(
                    f"4 validators at {o.latency_rate:,.0f}/s: p50", r.p50_ms, "ms",
                    P50_TARGET_MS, better="lower", note=note,
                ),
                Figure(
                    f"4 validators at {o.latency_rate:,.0f}/s: p99", r.p99_ms, "ms",
                    P99_TARGET_MS, better="lower",
                ),
            ]  # fmt: skip
        if "overload" in stages and bench.capacity:
            overload(bench, net)
    finally:
        net.stop_all()
        tmp.cleanup()


def overload(bench: Bench, net: Localnet) -> None:
    o = bench.options
    assert bench.capacity is not None
    rate = 4 * bench.capacity
    print(f"overload: {rate:,.0f}/s (4x {bench.capacity:,.0f}) for {o.seconds:g} s", flush=True)
    probe_key = PrivateKey.generate()
    trio.run(_fund, f"127.0.0.1:{net.nodes[0].rpc_port}", probe_key)
    with Watch(net, o.seconds, probe_key, o.recovery_window) as watch:
        r = bench.load(net, rate, o.seconds, on_start=watch.started)
        print(f"  recovery probes for {o.recovery_window:g} s after the load stopped", flush=True)
    growth, peak, rss_note = watch.rss_growth()
    recovery = watch.recovery_s()
    probes = sorted(watch.probes)
    committed = [lat for _t, lat in probes if lat is not None]
    failures = ", ".join(f"{k} {v}" for k, v in watch.probe_failures.most_common())
    probe_note = watch.probe_error or (
        f"{len(committed)} of {len(probes)} probes committed, max "
        f"{max(committed, default=0):,.0f} ms; the first ones (ms): "
        + " ".join("-" if lat is None else f"{lat:.0f}" for _t, lat in probes[:10])
        + (f"; not committed: {failures}" if failures else "")
    )
    bench.figures += [
        Figure(
            "overload: longest gap between blocks", r.max_block_gap_ms, "ms", GAP_TARGET_MS,
            better="lower", note=f"4x capacity offered: {summary(r)}",
        ),
        Figure(
            "overload: committed rate", r.committed_rate, "orders/s",
            OVERLOAD_SHARE * bench.capacity,
            note=f"target {OVERLOAD_SHARE:.0%} of the capacity {bench.capacity:,.0f}/s",
        ),
        Figure(
            "overload: validator RSS growth, 2nd half", growth, "%", RSS_GROWTH_TARGET_PCT,
            better="lower", note=rss_note,
        ),
        Figure("overload: validator peak RSS", peak, "MiB", better="lower"),
        Figure(
            "overload: recovery, new order < 1 s", recovery, "s", RECOVERY_TARGET_S,
            better="lower", note=probe_note,
        ),
    ]  # fmt: skip


def single_validator(bench: Bench) -> None:
    o = bench.options
    net, tmp = start_net(1)
    try:
        print(
            f"single: probes of {bench.probe_seconds:g} s from {o.single_start_rate:,.0f}/s",
            flush=True,
        )
        _best, reports = bench.search(net, o.single_start_rate)
    finally:
        net.stop_all()
        tmp.cleanup()
    top = max(reports, key=lambda r: r.committed_rate)
    lag = "-" if top.sender_lag_p99_ms is None else f"{top.sender_lag_p99_ms:,.0f} ms"
    bench.figures.append(
        Figure(
            "1 validator: committed", top.committed_rate, "orders/s", SINGLE_TARGET,
            note=(
                f"best of {len(reports)} runs of {bench.probe_seconds:g} s: {summary(top)}; "
                f"sender lag p99 {lag}"
            ),
        )
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=60.0,
        help="length of the sustained and overload runs (default 60; probes a quarter)",
    )  # fmt: skip
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated stages")
    parser.add_argument("--start-rate", type=float, default=1_000.0, help="first probe, 4 nodes")
    parser.add_argument("--single-start-rate", type=float, default=4_000.0, help="first, 1 node")
    parser.add_argument("--probes", type=int, default=4, help="probes per search (default 4)")
    parser.add_argument("--capacity", type=float, help="skip the search: this is the capacity")
    parser.add_argument("--latency-rate", type=float, default=2_000.0, help="orders/s")
    parser.add_argument("--accounts", type=int, default=400, help="accounts (default 400)")
    parser.add_argument("--senders", type=int, default=default_senders(), help="processes")
    parser.add_argument(
        "--recovery-window", type=float, default=RECOVERY_WINDOW_S,
        help=f"seconds of recovery probes after the overload (default {RECOVERY_WINDOW_S:g})",
    )  # fmt: skip
    parser.add_argument("--figures", help="write the figures to this file as JSON")
    options = parser.parse_args()
    stages = set(options.stages.split(","))
    unknown = stages - set(STAGES)
    if unknown:
        parser.error(f"unknown stages {sorted(unknown)}; choose from {', '.join(STAGES)}")
    bench = Bench(options, capacity=options.capacity)
    if options.capacity:
        bench.capacity_note = "given with --capacity"
    if stages & {"search", "sustained", "latency", "overload"}:
        four_validators(bench, stages)
    if "single" in stages:
        single_validator(bench)
    if {"sustained", "overload"} & stages and not bench.capacity:
        print("no capacity (no probe passed, or no search): sustained and overload not run")
    write_figures(options.figures, bench.figures)
    for figure in bench.figures:
        shown = "-" if figure.measured is None else f"{figure.measured:,.1f} {figure.unit}"
        print(f"{figure.name}: {shown}")


if __name__ == "__main__":
    main()
