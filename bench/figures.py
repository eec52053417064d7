"""The figures a benchmark measures, how they compare with their targets, and the table
and ``bench/results.json`` that ``make bench`` (bench/run.py) makes of them.

A bench script reports its figures machine-readably with ``--figures FILE``: it writes
one JSON list of :class:`Figure` records there (and prints its usual text on stdout).
bench/run.py passes each script a file of its own, collects every list, prints one table
(figure, target, measured, ratio, met?) and writes the results file.

The ratio is how far the measurement is from its target, oriented so that 1.0 or more
always means the target is met: measured / target when higher is better (orders/s),
target / measured when lower is better (milliseconds). A figure without a target is
reported for information (ratio and met? are ``-``); a figure that could not be measured
(``measured`` None) misses its target.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["Figure", "write_figures", "read_figures", "render_table", "machine", "results"]

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Figure:
    """One measured figure: ``measured`` in ``unit`` (None: not measured), compared with
    ``target`` (None: no target) in the direction ``better``; ``note`` says what else
    a reader needs (the offered rate behind a committed rate, a cell's options)."""

    name: str
    measured: float | None
    unit: str
    target: float | None = None
    better: Better = "higher"
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """measured / target (higher is better) or target / measured (lower is better);
        1.0 or more meets the target. None without a target or a measurement."""
        if self.target is None or self.measured is None:
            return None
        if self.better == "higher":
            return self.measured / self.target if self.target else None
        if self.measured <= 0:
            return float("inf") if self.target >= 0 else None
        return self.target / self.measured

    @property
    def met(self) -> bool | None:
        """Whether the target is met (None without a target)."""
        if self.target is None:
            return None
        if self.measured is None:
            return False
        if self.better == "higher":
            return self.measured >= self.target
        return self.measured <= self.target

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ratio": self.ratio, "met": self.met}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Figure:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in fields})


def write_figures(path: str | os.PathLike[str] | None, figures: Iterable[Figure]) -> None:
    """Writes ``figures`` as a JSON list to ``path`` (a script's ``--figures``; nothing
    when None)."""
    if path is None:
        return
    Path(path).write_text(json.dumps([f.to_json() for f in figures], indent=1) + "\n")


def read_figures(path: str | os.PathLike[str]) -> list[Figure]:
    """The figures a script wrote with :func:`write_figures` (none if it wrote none)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return [Figure.from_json(doc) for doc in json.loads(text)] if text.strip() else []


def _number(value: float, unit: str) -> str:
    if value == float("inf"):
        return "inf"
    if abs(value) >= 100 or value == int(value):
        shown = f"{value:,.0f}"
    elif abs(value) >= 1:
        shown = f"{value:,.2f}"
    else:
        shown = f"{value:.3g}"
    return f"{shown} {unit}".rstrip()


def _row(figure: Figure) -> tuple[str, str, str, str, str]:
    target = (
        "-"
        if figure.target is None
        else f"{'>=' if figure.better == 'higher' else '<='} {_number(figure.target, figure.unit)}"
    )
    measured = "-" if figure.measured is None else _number(figure.measured, figure.unit)
    ratio = figure.ratio
    met = figure.met
    return (
        figure.name,
        target,
        measured,
        "-" if ratio is None else ("inf" if ratio == float("inf") else f"{ratio:.2f}"),
        "-" if met is None else ("yes" if met else "NO"),
    )


def render_table(figures: Sequence[Figure], *, notes: bool = True) -> str:
    """A plain-text table: figure, target, measured, ratio, met? (and each figure's note
    on the line below it when ``notes``)."""
    header = ("figure", "target", "measured", "ratio", "met?")
    rows = [_row(f) for f in figures]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    for figure, row in zip(figures, rows, strict=True):
        out.append(line(row))
        if notes and figure.note:
            out.append(f"    {figure.note}")
    return "\n".join(out)


def _git_commit(root: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=root, capture_output=True, text=True, timeout=10,
    ).stdout.strip()  # fmt: skip
    return done.stdout.strip() + ("-dirty" if dirty else "")


def machine(root: Path) -> dict[str, Any]:
    """Where and when the figures were measured: cores, CPU model, Python, OS, UTC date,
    git commit (``-dirty`` with uncommitted changes)."""
    cpu = None
    try:
        for text_line in Path("/proc/cpuinfo").read_text().splitlines():
            if text_line.startswith("model name"):
                cpu = text_line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": _git_commit(root),
    }


def results(
    figures: Sequence[Figure], machine_info: dict[str, Any], scripts: dict[str, Any]
) -> dict[str, Any]:
    """The document bench/results.json holds: the machine, each script's exit status and
    duration, and every figure with its target, ratio and verdict."""
    return {
        "machine": machine_info,
        "scripts": scripts,
        "figures": [f.to_json() for f in figures],
    }
