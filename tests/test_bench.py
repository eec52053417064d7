"""Short, bounded runs of the benchmarks (``make bench`` runs them at full size), so a
change that breaks one fails here rather than at the next measurement. No timings are
asserted: only that each runs and reports its figures, that the table and results of
``make bench`` are right on canned figures, and that the lobbench engine computes what a
plain reference book computes."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from bench.figures import Figure, read_figures, render_table, results, write_figures
from bench.lob_adapter import BUYER, SELLER, LobEngine
from bench.run import Scale, script_args
from orderbook import Side, TimeInForce
from tests.orderbook.reference import ReferenceBook

ROOT = Path(__file__).resolve().parent.parent
LOBBENCH = ROOT.parent / "shared" / "bench" / "lob" / "lobbench.py"


def _workload(seed: int, rest: int, mixed: int) -> list[tuple[int, ...]]:
    """lobbench-shaped operations: resting adds around a mid price, then adds, cancels of
    live orders and aggressive orders priced a few ticks through the opposite side."""
    rnd = random.Random(seed)
    ops: list[tuple[int, ...]] = []
    live: list[int] = []
    order_id = 0
    for step in range(rest + mixed):
        roll = rnd.random() if step >= rest else 0.0
        order_id += 1
        is_buy = rnd.random() < 0.5
        if roll < 0.6:
            price = 1_000 - rnd.randint(1, 20) if is_buy else 1_000 + rnd.randint(1, 20)
            ops.append((order_id, int(is_buy), price, rnd.randint(1, 50)))
            live.append(order_id)
        elif roll < 0.9 and live:
            ops.append((live.pop(rnd.randrange(len(live))),))
        else:
            price = 1_000 + rnd.randint(5, 25) if is_buy else 1_000 - rnd.randint(5, 25)
            ops.append((order_id, int(is_buy), price, rnd.randint(1, 150)))
    return ops


def test_lob_engine_computes_what_the_reference_book_computes() -> None:
    engine = LobEngine()
    reference = ReferenceBook()
    reference_fills = 0
    for op in _workload(seed=11, rest=150, mixed=450):
        if len(op) == 1:
            engine.cancel(op[0])
            reference.cancel(op[0])
            continue
        order_id, is_buy, price, size = op
        engine.add(order_id, bool(is_buy), price, size)
        owner = BUYER if is_buy else SELLER
        reference.place(order_id, owner, is_buy, price, size, TimeInForce.GTC, 0, order_id)
        reference_fills += len(reference.fills)
        reference.fills.clear()
    assert engine.fills_settled == reference_fills > 0
    assert list(engine.book.resting_orders()) == reference.resting_orders()
    summary = engine.summary()
    assert summary["best_bid"] == reference.best_bid()
    assert summary["best_ask"] == reference.best_ask()
    assert summary["n_orders"] == len(reference.resting_orders())
    assert summary["bid_vol"] == engine.book.volume(Side.BUY)


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


# ---------------------------------------------------------------------------- the table


def test_ratio_is_oriented_so_that_one_or_more_meets_the_target() -> None:
    faster = Figure("committed", 4_500.0, "orders/s", 3_000.0)
    slower = Figure("committed", 1_500.0, "orders/s", 3_000.0)
    quick = Figure("p99", 250.0, "ms", 1_000.0, better="lower")
    late = Figure("p99", 4_000.0, "ms", 1_000.0, better="lower")
    assert (faster.ratio, faster.met) == (1.5, True)
    assert (slower.ratio, slower.met) == (0.5, False)
    assert (quick.ratio, quick.met) == (4.0, True)
    assert (late.ratio, late.met) == (0.25, False)
    assert Figure("on target", 10.0, "ms", 10.0, better="lower").met is True


def test_figures_without_a_target_or_a_measurement() -> None:
    info = Figure("add rate", 900_000.0, "orders/s")
    assert (info.ratio, info.met) == (None, None)
    unmeasured = Figure("recovery", None, "s", 10.0, better="lower")
    assert (unmeasured.ratio, unmeasured.met) == (None, False)
    assert Figure("lost", 0.0, "txs", 0.0, better="lower").met is True


def test_table_has_a_row_per_figure_with_target_measured_ratio_and_verdict() -> None:
    figures = [
        Figure("committed", 1_500.0, "orders/s", 3_000.0, note="offered 2,000/s"),
        Figure("p99", 250.0, "ms", 1_000.0, better="lower"),
        Figure("peak RSS", 61.6, "MiB"),
        Figure("recovery", None, "s", 10.0, better="lower"),
    ]
    lines = render_table(figures).splitlines()
    assert lines[0].split() == ["figure", "target", "measured", "ratio", "met?"]
    rows = {line.split("  ")[0]: line for line in lines[2:] if not line.startswith("    ")}
    assert rows["committed"].rstrip().endswith("0.50    NO")
    assert ">= 3,000 orders/s" in rows["committed"] and "1,500 orders/s" in rows["committed"]
    assert "<= 1,000 ms" in rows["p99"] and rows["p99"].rstrip().endswith("4.00   yes")
    assert rows["peak RSS"].split()[-2:] == ["-", "-"]
    assert rows["recovery"].split()[-3:] == ["-", "-", "NO"]
    assert "    offered 2,000/s" in lines
    assert "offered" not in render_table(figures, notes=False)


def test_figures_survive_the_file_and_land_in_the_results(tmp_path: Path) -> None:
    figures = [
        Figure("committed", 1_500.0, "orders/s", 3_000.0, note="x"),
        Figure("p99", None, "ms", 1_000.0, better="lower"),
    ]
    path = tmp_path / "figures.json"
    write_figures(path, figures)
    assert read_figures(path) == figures
    assert read_figures(tmp_path / "never-written.json") == []
    doc = results(figures, {"cores": 2}, {"bench_x.py": {"exit": 0}})
    assert doc["machine"] == {"cores": 2}
    assert [f["name"] for f in doc["figures"]] == ["committed", "p99"]
    assert doc["figures"][0]["ratio"] == 0.5 and doc["figures"][0]["met"] is False
    assert doc["figures"][1]["ratio"] is None and doc["figures"][1]["met"] is False


def test_bench_seconds_shrinks_the_runs_below_a_minute() -> None:
    full, quick = Scale(60.0), Scale(10.0)
    assert script_args("bench_load", full) == ["--seconds", "60"]
    assert script_args("bench_load", quick) == ["--seconds", "10"]
    assert script_args("bench_finalize", full) == []
    assert script_args("bench_finalize", quick) == ["--runs", "1"]
    assert script_args("bench_orderbook", full)[:2] == ["--orders", "1000000"]
    assert int(script_args("bench_orderbook", quick)[1]) < 1_000_000
    assert Scale(600.0).factor == 1.0


# ---------------------------------------------------------------------------- short runs


def test_bench_orderbook_bounded(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    out = _run(
        "bench/bench_orderbook.py", "--orders", "3000", "--cancels", "500", "--takers", "300",
        "--figures", str(figures),
    )  # fmt: skip
    assert "resting orders: 3,000" in out and "takers/s" in out
    found = {f.name: f for f in read_figures(figures)}
    rss = found["order book: RSS with 3,000 resting orders"]
    assert rss.unit == "MiB" and rss.target == 1024 and rss.measured and rss.measured > 0


def test_bench_finalize_bounded(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    out = _run(
        "bench/bench_finalize.py", "--runs", "1", "--blocks", "1", "--path", "both",
        "--figures", str(figures),
    )  # fmt: skip
    assert "bytes (decoded in the app)" in out and "mempool-decoded txs" in out
    assert "app hash after the last block" in out
    assert [f.target for f in read_figures(figures)] == [50_000, 50_000]


def test_bench_liquidation_bounded(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    out = _run("bench/bench_liquidation.py", "--accounts", "500", "--figures", str(figures))
    assert "with 500 accounts holding positions" in out
    (figure,) = read_figures(figures)
    assert figure.better == "lower" and figure.unit == "ms" and figure.measured is not None


@pytest.mark.skipif(not LOBBENCH.exists(), reason="the shared lobbench harness is not here")
def test_lobbench_bounded() -> None:
    out = _run(
        str(LOBBENCH), "--adapter", "bench.lob_adapter:make_engine", "--engines",
        "project,reference", "--rest", "3000", "--mixed", "3000", "--repeat", "1",
    )  # fmt: skip
    rows = {line.split()[0]: line for line in out.splitlines() if line}
    assert "project" in rows and "differs" not in out and "crashed" not in out


@pytest.mark.slow
def test_bench_load_bounded(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    out = _run(
        "bench/bench_load.py", "--stages", "sustained,overload", "--capacity", "30",
        "--seconds", "3", "--recovery-window", "2", "--accounts", "20", "--senders", "2",
        "--figures", str(figures),
    )  # fmt: skip
    assert "sustained: 30/s" in out and "overload: 120/s" in out
    names = [f.name for f in read_figures(figures)]
    assert names == [
        "4 validators: committed, sustained 3 s",
        "overload: longest gap between blocks",
        "overload: committed rate",
        "overload: validator RSS growth, 2nd half",
        "overload: validator peak RSS",
        "overload: recovery, new order < 1 s",
    ]


@pytest.mark.slow
def test_bench_blocksync_bounded(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    out = _run(
        "bench/bench_blocksync.py", "--empty", "30", "--rate", "40", "--seconds", "2",
        "--accounts", "10", "--figures", str(figures),
    )  # fmt: skip
    assert "block sync, empty blocks:" in out and "block sync, full blocks:" in out
    found = {f.name: f for f in read_figures(figures)}
    assert found["block sync: empty blocks"].target == 1_000
    assert found["block sync: txs in full blocks"].measured
