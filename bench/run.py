"""`make bench`: runs every bench/bench_*.py script and the order-book grid against the C++
peer (../shared/bench/lob/lobbench.py), then prints one table of every figure (figure,
target, measured, ratio, met?) and writes it with the machine's description to
bench/results.json.

Each script prints its own text as it runs and writes its figures with ``--figures FILE``
(bench/figures.py says what a figure is and how its ratio is oriented). Pass names to run
a subset: ``python bench/run.py orderbook finalize lob``; ``--results PATH`` writes the
results elsewhere.

``BENCH_SECONDS`` (default 60) is the length of the long load runs (bench_load.py's
sustained and overload runs; its probes take a quarter of it). Below 60, the other
benchmarks shrink in proportion too (fewer resting orders, heights, lobbench operations,
runs), so ``make bench BENCH_SECONDS=10`` is a quick check of the whole path (a few
minutes) whose figures are rougher. The default run takes about 15 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import Figure, machine, read_figures, render_table, results  # noqa: E402

LOBBENCH = ROOT.parent / "shared" / "bench" / "lob" / "lobbench.py"
RESULTS = ROOT / "bench" / "results.json"
#: The C++ peer of the order-book grid (lobbench's ``kautenja``: the limit-order-book
#: package, C++ through ctypes; the fastest of its peers).
CPP_PEER = "kautenja"
#: The grid: (cancel %, add %, spread in ticks, depth in levels). Adds and cancels leave
#: 10% aggressive orders in every cell; the first is lobbench's default workload, the last
#: ones the cancel-heavy, wide and deep workloads of issue 14.
LOB_GRID = (
    (30, 60, 500, 3),
    (60, 30, 500, 3),
    (30, 60, 5_000, 3),
    (30, 60, 500, 10),
    (45, 45, 2_000, 6),
    (60, 30, 5_000, 10),
)
LOB_TARGET = 1.0
LOB_OPS = 200_000


@dataclass(frozen=True)
class Scale:
    """How long the benchmarks run: ``seconds`` for the long load runs; ``factor`` (at
    most 1) shrinks the others."""

    seconds: float

    @property
    def factor(self) -> float:
        return min(1.0, self.seconds / 60)

    def count(self, full: int, least: int) -> int:
        return max(least, int(full * self.factor))


def script_args(name: str, scale: Scale) -> list[str]:
    """The options bench/run.py gives a script (none for one it does not know)."""
    if name == "bench_load":
        return ["--seconds", f"{scale.seconds:g}"]
    if name == "bench_orderbook":
        n = scale.count(1_000_000, 50_000)
        return ["--orders", str(n), "--cancels", str(n // 5), "--takers", str(n // 10)]
    if name == "bench_finalize":
        return [] if scale.factor >= 1 else ["--runs", "1"]
    if name == "bench_localnet":
        return ["--height", str(scale.count(150, 30))]
    if name == "bench_blocksync":
        return ["--seconds", f"{max(3.0, 15 * scale.factor):g}"]
    return []


def run_script(script: Path, scale: Scale, env: dict[str, str]) -> tuple[int, float, list[Figure]]:
    """Runs one script; returns its exit status, seconds taken and figures."""
    fd, path = tempfile.mkstemp(prefix=f"{script.stem}-", suffix=".json")
    os.close(fd)
    args = script_args(script.stem, scale)
    print(f"=== {script.name} {' '.join(args)}", flush=True)
    started = time.monotonic()
    try:
        rc = subprocess.call(
            [sys.executable, str(script), *args, "--figures", path], cwd=ROOT, env=env
        )
        figures = read_figures(path)
    finally:
        os.unlink(path)
    took = time.monotonic() - started
    print(f"=== {script.name}: exit {rc} in {took:.1f} s\n", flush=True)
    return rc, took, figures


def lob_cell(
    cancel: int, add: int, spread: int, depth: int, ops: int, repeat: int, env: dict[str, str]
) -> Figure:
    """One cell of the grid: lobbench's project engine against the C++ peer on the mixed
    phase (adds, cancels, aggressive orders); the ratio is project / peer ops/s."""
    name = f"order book / C++: cancel {cancel}% spread {spread} depth {depth}"
    fd, path = tempfile.mkstemp(prefix="lobbench-", suffix=".json")
    os.close(fd)
    try:
        done = subprocess.run(
            [
                sys.executable, str(LOBBENCH), "--adapter", "bench.lob_adapter:make_engine",
                "--engines", f"project,{CPP_PEER}", "--repeat", str(repeat),
                "--rest", str(ops), "--mixed", str(ops), "--cancel-pct", str(cancel),
                "--add-pct", str(add), "--spread", str(spread), "--depth", str(depth),
                "--json", path,
            ],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        print(done.stdout, end="", flush=True)
        doc = json.loads(Path(path).read_text()) if Path(path).stat().st_size else {}
    finally:
        os.unlink(path)
    median = doc.get("median", {})
    project, peer = median.get("project"), median.get(CPP_PEER)
    if not project or not peer:
        why = doc.get("notes") or done.stderr.strip()[-300:] or f"exit {done.returncode}"
        return Figure(name, None, "x", LOB_TARGET, note=f"not measured: {why}")
    return Figure(
        name, project[1] / peer[1], "x", LOB_TARGET,
        note=(
            f"mixed ops/s: project {project[1]:,.0f}, {CPP_PEER} {peer[1]:,.0f}; "
            f"add {add}%, median of {repeat}, {ops:,} resting + {ops:,} mixed"
        ),
    )  # fmt: skip


def lob_grid(scale: Scale, env: dict[str, str]) -> list[Figure]:
    ops = scale.count(LOB_OPS, 20_000)
    repeat = 3 if scale.factor >= 1 else 1
    print(f"=== lobbench grid against {CPP_PEER} ({len(LOB_GRID)} cells)", flush=True)
    figures = [lob_cell(*cell, ops, repeat, env) for cell in LOB_GRID]
    ratios = [f.measured for f in figures if f.measured is not None]
    if ratios:
        figures.append(
            Figure(
                "order book / C++: worst cell of the grid", min(ratios), "x", LOB_TARGET,
                note=f"median cell {statistics.median(ratios):.2f}x",
            )
        )  # fmt: skip
    return figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="run only the scripts whose name holds one")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write results")
    options = parser.parse_args(argv)
    scale = Scale(float(os.environ.get("BENCH_SECONDS", "60")))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.call(
        [sys.executable, "-c", "from appchaind import native; print('cores:', native.status()[1])"],
        cwd=ROOT,
        env=env,
    )
    started = time.monotonic()
    scripts = sorted((ROOT / "bench").glob("bench_*.py"))
    if options.names:
        scripts = [s for s in scripts if any(a in s.stem for a in options.names)]
    figures: list[Figure] = []
    ran: dict[str, dict[str, object]] = {}
    failed = []
    for script in scripts:
        rc, took, found = run_script(script, scale, env)
        ran[script.name] = {
            "exit": rc,
            "seconds": round(took, 1),
            "args": script_args(script.stem, scale),
        }
        figures += found
        if rc:
            failed.append(script.name)
    if not options.names or "lob" in options.names:
        if LOBBENCH.exists():
            lob_started = time.monotonic()
            found = lob_grid(scale, env)
            figures += found
            missing = any(f.measured is None for f in found)
            ran["lobbench grid"] = {
                "exit": int(missing),
                "seconds": round(time.monotonic() - lob_started, 1),
            }
            if missing:
                failed.append("lobbench grid")
        else:
            print(f"=== lobbench grid skipped: {LOBBENCH} is not here")
    info = machine(ROOT)
    info["bench_seconds"] = scale.seconds
    info["total_seconds"] = round(time.monotonic() - started, 1)
    print(
        f"=== figures ({info['cores']} cores, Python {info['python']}, {info['date']}, "
        f"commit {info['git_commit']}, {info['total_seconds']:,.0f} s)"
    )
    print(render_table(figures))
    options.results.write_text(json.dumps(results(figures, info, ran), indent=1) + "\n")
    print(f"written: {options.results}")
    if failed:
        print("failed: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
