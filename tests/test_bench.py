"""Short, bounded runs of the benchmarks (``make bench`` runs them at full size), so a
change that breaks one fails here rather than at the next measurement. No timings are
asserted: only that each runs and reports, and that the lobbench engine computes what a
plain reference book computes."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from bench.lob_adapter import BUYER, SELLER, LobEngine
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


def test_bench_orderbook_bounded() -> None:
    out = _run(
        "bench/bench_orderbook.py", "--orders", "3000", "--cancels", "500", "--takers", "300"
    )
    assert "resting orders: 3,000" in out and "takers/s" in out


def test_bench_finalize_bounded() -> None:
    out = _run("bench/bench_finalize.py", "--runs", "1", "--blocks", "1", "--path", "both")
    assert "bytes (decoded in the app)" in out and "mempool-decoded txs" in out
    assert "app hash after the last block" in out


def test_bench_liquidation_bounded() -> None:
    out = _run("bench/bench_liquidation.py", "--accounts", "500")
    assert "with 500 accounts holding positions" in out


@pytest.mark.skipif(not LOBBENCH.exists(), reason="the shared lobbench harness is not here")
def test_lobbench_bounded() -> None:
    out = _run(
        str(LOBBENCH), "--adapter", "bench.lob_adapter:make_engine", "--engines",
        "project,reference", "--rest", "3000", "--mixed", "3000", "--repeat", "1",
    )  # fmt: skip
    rows = {line.split()[0]: line for line in out.splitlines() if line}
    assert "project" in rows and "differs" not in out and "crashed" not in out


@pytest.mark.slow
def test_bench_load_bounded() -> None:
    out = _run(
        "bench/bench_load.py", "--rate", "50", "--duration", "3", "--accounts", "20",
        "--senders", "2",
    )  # fmt: skip
    assert "submit->commit p50" in out and "committed rate" in out
    header = next(line for line in out.splitlines() if line.startswith("figure"))
    assert header.split() == ["figure", "target", "measured", "ratio"]
