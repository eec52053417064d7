"""Order flow on a 4-validator localnet (issue 14): ``appchaind bench load`` at a paced rate.

Run by ``make bench`` (bench/run.py) with the defaults below, never by the tests (they run
a bounded version: tests/test_bench.py):

    PYTHONPATH=. python bench/bench_load.py [--rate 500] [--duration 20] [--validators 4]

Prints the load tool's summary, then a table of figure, target, measured and ratio
(measured / target). The targets say what "keeping up" means here: every offered order
committed at the offered rate, a commit within a few blocks, no refusal, nothing
accepted and lost. The machine is shared with the validators: the senders, the nodes and
the observer all run on it, so the figures are the whole localnet's on this box.
"""

from __future__ import annotations

import argparse

from appchaind.localnet.load import LoadOptions, LoadReport, default_senders, run_load

#: (figure, comparison, target or None for "the offered rate", unit)
TARGETS = (
    ("committed rate", ">=", None, "orders/s"),
    ("submit->commit p50", "<=", 500.0, "ms"),
    ("submit->commit p99", "<=", 1_000.0, "ms"),
    ("max block gap", "<=", 1_000.0, "ms"),
    ("refused", "<=", 0.0, "txs"),
    ("accepted, never committed", "<=", 0.0, "txs"),
)


def measured(report: LoadReport, figure: str) -> float | None:
    return {
        "committed rate": report.committed_rate,
        "submit->commit p50": report.p50_ms,
        "submit->commit p99": report.p99_ms,
        "max block gap": report.max_block_gap_ms,
        "refused": float(sum(report.rejected.values())),
        "accepted, never committed": float(report.not_committed),
    }[figure]


def table(report: LoadReport) -> str:
    rows = [("figure", "target", "measured", "ratio")]
    for figure, comparison, target, unit in TARGETS:
        goal = report.offered_rate if target is None else target
        value = measured(report, figure)
        shown = "-" if value is None else f"{value:,.0f} {unit}"
        ratio = "-" if value is None or not goal else f"{value / goal:.2f}"
        rows.append((figure, f"{comparison} {goal:,.0f} {unit}", shown, ratio))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500.0, help="orders/s (default 500)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds (default 20)")
    parser.add_argument("--validators", type=int, default=4, help="validators (default 4)")
    parser.add_argument("--accounts", type=int, default=400, help="accounts (default 400)")
    parser.add_argument("--senders", type=int, default=default_senders(), help="processes")
    options = parser.parse_args()
    report = run_load(
        LoadOptions(
            accounts=options.accounts, rate=options.rate, duration_s=options.duration,
            senders=options.senders,
        ),
        validators=options.validators,
        progress=lambda line: print(line, flush=True),
    )  # fmt: skip
    print(report.render())
    print()
    print(table(report))


if __name__ == "__main__":
    main()
