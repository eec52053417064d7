"""Join the committed mutation verdicts of every module with the classification of its
survivors, and say what is not accounted for.

The figures come from ``docs/mutation/verdicts.json.gz``, which every campaign of
tools/mutate.py updates for the modules it ran (each group runs in its own campaign):
per module, each mutant's mutmut exit code, read as killed, survived, timed out, no tests
or not run by :func:`tools.mutate.verdict`. Every module of :data:`tools.mutate.MODULES`
is reported, in that order; one without verdicts has never been mutated and is named
as missing. (``--cache`` reads one campaign's ``.mutmut-cache/report.json`` instead: the
figures of the groups that campaign ran, only.) Each survivor is classified by hand in ``docs/mutation/<module with "/" as "__">.md``, whose first line is::

    <module>: N survivors: E equivalent, T gap (tested), O gap (open)

followed by a table of survivor groups; a module with timeouts (or a mutant whose worker
was killed) also has a line ``K timeouts: A endless, B slow`` and a table of them. This
tool prints (markdown) the table of figures with the classification columns, then every
module's classification file, and lists
what is missing: a module with mutants not run, a module without a classification file,
or one whose file counts another number of survivors or timeouts than the campaign found,
or whose counts do not add up. ``--check`` exits 1 when anything is missing.

With ``--write PATH`` it writes the whole report: ``docs/mutation/head.md`` (how the
campaign runs), ``campaign.md`` (when and on what it ran), the figures, ``named-rules.md``
(the issue's rules and the line broken for each), ``notes.md`` (tests added, bugs found),
what is not accounted for, then every module's classification.

Usage::

    .venv/bin/python tools/mutation_report.py [--verdicts docs/mutation/verdicts.json.gz]
                                              [--cache .mutmut-cache] [--check]
                                              [--write docs/mutation-report.md]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import cast

try:
    from tools import mutate
except ImportError:  # run as a script: this file's directory is on sys.path
    import mutate  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
CLASSIFIED = ROOT / "docs" / "mutation"
#: Where a module has timeouts (or mutants whose worker died: "other"), its file holds
#: this line, then a table of them: "endless" ones loop forever or grow without bound (the
#: tests never finish: as good as killed), "slow" ones only make the tests slower (each
#: then classified as a survivor would be).
_TIMEOUTS = re.compile(r"^(?P<k>\d+) timeouts: (?P<a>\d+) endless, (?P<b>\d+) slow$", re.M)
_HEAD = re.compile(
    r"^(?P<module>\S+): (?P<n>\d+) survivors: (?P<e>\d+) equivalent, (?P<t>\d+) gap \(tested\), "
    r"(?P<o>\d+) gap \(open\)$"
)


@dataclass(frozen=True)
class Classification:
    """One module's classified survivors: ``survivors`` = ``equivalent + tested + open``."""

    module: str
    survivors: int
    equivalent: int
    tested: int
    open: int
    text: str
    #: (endless, slow), or None if the file has no timeouts line
    timeouts: tuple[int, int] | None = None


def classification_path(module: str, directory: Path = CLASSIFIED) -> Path:
    """``margin/clearing.py`` -> ``docs/mutation/margin__clearing.md``."""
    return directory / (module.removesuffix(".py").replace("/", "__") + ".md")


def read_classification(path: Path) -> Classification:
    """Parse a classification file; ValueError names the file and what is wrong."""
    text = path.read_text()
    first = text.splitlines()[0] if text else ""
    match = _HEAD.match(first)
    if match is None:
        raise ValueError(
            f"{path}: the first line must read '<module>: N survivors: E equivalent, "
            f"T gap (tested), O gap (open)', not {first!r}"
        )
    n, e, t, o = (int(match[k]) for k in "neto")
    if e + t + o != n:
        raise ValueError(f"{path}: {e} + {t} + {o} is not {n} survivors")
    timeouts = None
    slow = _TIMEOUTS.search(text)
    if slow is not None:
        k, a, b = (int(slow[g]) for g in "kab")
        if a + b != k:
            raise ValueError(f"{path}: {a} endless + {b} slow is not {k} timeouts")
        timeouts = (a, b)
    return Classification(match["module"], n, e, t, o, text, timeouts)


def report_from_verdicts(
    committed: dict[str, dict[str, object]], modules: list[str] | None = None
) -> dict[str, object]:
    """A report (as report.json's ``counts``) of ``modules`` (default: every module of
    :data:`tools.mutate.MODULES`, in its order) from the committed verdicts (as
    :func:`tools.mutate.load_committed` reads them); a module without any has 0 mutants."""
    counts: dict[str, dict[str, int]] = {}
    for module in modules if modules is not None else list(mutate.MODULES):
        entry = committed.get(module, {})
        verdicts = cast(dict[str, int | None], entry.get("exit_code_by_key", {}))
        row = dict.fromkeys(mutate._COLUMNS, 0)
        row["mutants"] = len(verdicts)
        for code in verdicts.values():
            row[mutate.verdict(code)] += 1
        counts[module] = row
    return {"counts": counts}


def assemble(report: dict[str, object], directory: Path = CLASSIFIED) -> tuple[str, list[str]]:
    """(markdown, problems) for ``report`` (report.json's content, or
    :func:`report_from_verdicts`'s), with the classification files of ``directory``."""
    counts: dict[str, dict[str, int]] = report["counts"]  # type: ignore[assignment]
    problems: list[str] = []
    rows = [
        "| module | mutants | killed | survived | timeout | no tests | not run | equivalent "
        "| gap (tested) | gap (open) | endless | slow |",
        "|---|" + "---:|" * 11,
    ]
    sections: list[str] = []
    totals = [0] * 11
    for module, c in counts.items():
        path = classification_path(module, directory)
        found: Classification | None = None
        if not c["mutants"]:
            problems.append(f"{module}: no verdicts (never mutated: run make mutate)")
        if c["not run"]:
            problems.append(f"{module}: {c['not run']} mutants not run (run make mutate again)")
        if c["no tests"]:
            problems.append(
                f"{module}: {c['no tests']} mutants reached by no test (their functions need one)"
            )
        if path.exists():
            try:
                found = read_classification(path)
            except ValueError as exc:
                problems.append(str(exc))
            else:
                if found.module != module:
                    problems.append(f"{path}: names {found.module}, not {module}")
                if found.survivors != c["survived"]:
                    problems.append(
                        f"{module}: {c['survived']} survivors, {path.name} classifies "
                        f"{found.survivors}"
                    )
                stuck = c["timeout"] + c["other"]
                classified = sum(found.timeouts) if found.timeouts else 0
                if stuck != classified:
                    problems.append(
                        f"{module}: {stuck} timeouts (or workers killed), {path.name} "
                        f"classifies {classified} (a line 'K timeouts: A endless, B slow')"
                    )
                sections.append(found.text.rstrip())
        elif c["survived"] or c["timeout"] or c["other"]:
            problems.append(
                f"{module}: {c['survived']} survivors, {c['timeout'] + c['other']} timeouts "
                f"and no {path.name} in {directory}"
            )
        classes = (found.equivalent, found.tested, found.open) if found else (None, None, None)
        endless_slow = (found.timeouts or (0, 0)) if found else (None, None)
        cells = [
            c["mutants"], c["killed"], c["survived"], c["timeout"] + c["other"], c["no tests"],
            c["not run"], *classes, *endless_slow,
        ]  # fmt: skip
        for i, cell in enumerate(cells):
            totals[i] += cell or 0
        shown = ["?" if cell is None else str(cell) for cell in cells]
        rows.append(f"| {module} | " + " | ".join(shown) + " |")
    rows.append("| total | " + " | ".join(str(t) for t in totals) + " |")
    body = "\n".join(rows) + "\n\n## Survivors, module by module\n\n"
    body += "\n\n".join(f"### {s}" for s in sections) + "\n"
    return body, problems


_FIGURES_NOTE = (
    "Per module, from `docs/mutation/verdicts.json.gz` (each group's latest campaign). "
    "*timeout* counts the mutants past mutmut's time limit and those whose worker was "
    "killed; *endless* and *slow* classify them (an endless one is as good as killed).\n\n"
)


def write_report(
    markdown: str, problems: list[str], path: Path, directory: Path = CLASSIFIED
) -> None:
    """The whole report (see the module docstring) to ``path``, with the parts in
    ``directory``."""
    figures, _, survivors = markdown.partition("\n## Survivors, module by module\n")

    def part(name: str) -> str:
        file = directory / name
        return file.read_text().rstrip() + "\n\n" if file.exists() else ""

    missing = (
        "".join(f"- {p}\n" for p in problems)
        or "Nothing: every mutant ran, and every survivor is classified.\n"
    )
    text = (
        part("head.md")
        + "## Campaign figures\n\n"
        + _FIGURES_NOTE
        + figures.rstrip()
        + "\n\n"
        + part("campaign.md")
        + _as_section(part("named-rules.md"))
        + _as_section(part("notes.md"))
        + "## Not accounted for\n\n"
        + missing
        + "\n## Survivors, module by module\n"
        + survivors
    )
    path.write_text(text)


def _as_section(text: str) -> str:
    """A part whose own title is ``# Title`` as a section of the report (``## Title``,
    its sections one level down)."""
    return "\n".join("#" + line if line.startswith("#") else line for line in text.split("\n"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--verdicts",
        type=Path,
        default=mutate.VERDICTS,
        help="the committed verdicts (default docs/mutation/verdicts.json.gz)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        help="read this campaign cache's report.json instead of the committed verdicts",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a survivor or mutant is unaccounted for"
    )
    parser.add_argument("--write", type=Path, metavar="PATH", help="write the whole report")
    args = parser.parse_args(argv)
    if args.cache is not None:
        report_file = args.cache / "report.json"
        if not report_file.exists():
            parser.error(f"{report_file} does not exist: run make mutate first")
        report = json.loads(report_file.read_text())
    else:
        if not args.verdicts.exists():
            parser.error(f"{args.verdicts} does not exist: run make mutate first")
        report = report_from_verdicts(mutate.load_committed(args.verdicts))
    markdown, problems = assemble(report)
    if args.write:
        write_report(markdown, problems, args.write)
    else:
        print(markdown)
    for problem in problems:
        print(f"missing: {problem}", file=sys.stderr)
    return 1 if args.check and problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
