"""Join the figures of the last ``make mutate`` campaign with the classification of its
survivors, and say what is not accounted for.

The campaign (tools/mutate.py) writes ``.mutmut-cache/report.json``: per module, how many
mutants were killed, survived, timed out, had no tests or were not run. Each survivor is
classified by hand in ``docs/mutation/<module with "/" as "__">.md``, whose first line is::

    <module>: N survivors: E equivalent, T gap (tested), O gap (open)

followed by a table of survivor groups. This tool prints (markdown) the table of figures
with the classification columns, then every module's classification file, and lists
what is missing: a module with mutants not run, a module without a classification file,
or one whose file counts another number of survivors than the campaign found, or whose
counts do not add up. ``--check`` exits 1 when anything is missing.

With ``--write PATH`` it writes the whole report: ``docs/mutation/head.md`` (how the
campaign runs), ``campaign.md`` (when and on what it ran), the figures, ``named-rules.md``
(the issue's rules and the line broken for each), ``notes.md`` (tests added, bugs found),
what is not accounted for, then every module's classification.

Usage::

    .venv/bin/python tools/mutation_report.py [--cache .mutmut-cache] [--check]
                                              [--write docs/mutation-report.md]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLASSIFIED = ROOT / "docs" / "mutation"
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
    return Classification(match["module"], n, e, t, o, text)


def assemble(report: dict[str, object], directory: Path = CLASSIFIED) -> tuple[str, list[str]]:
    """(markdown, problems) for the campaign ``report`` (report.json's content), with the
    classification files of ``directory``."""
    counts: dict[str, dict[str, int]] = report["counts"]  # type: ignore[assignment]
    problems: list[str] = []
    rows = [
        "| module | mutants | killed | survived | timeout | no tests | not run | equivalent "
        "| gap (tested) | gap (open) |",
        "|---|" + "---:|" * 9,
    ]
    sections: list[str] = []
    totals = [0] * 9
    for module, c in counts.items():
        path = classification_path(module, directory)
        found: Classification | None = None
        if c["not run"]:
            problems.append(f"{module}: {c['not run']} mutants not run (run make mutate again)")
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
                sections.append(found.text.rstrip())
        elif c["survived"]:
            problems.append(
                f"{module}: {c['survived']} survivors and no {path.name} in {directory}"
            )
        classes = (found.equivalent, found.tested, found.open) if found else (None, None, None)
        cells = [
            c["mutants"], c["killed"], c["survived"], c["timeout"], c["no tests"], c["not run"],
            *classes,
        ]  # fmt: skip
        for i, cell in enumerate(cells):
            totals[i] += cell or 0
        shown = ["?" if cell is None else str(cell) for cell in cells]
        rows.append(f"| {module} | " + " | ".join(shown) + " |")
    rows.append("| total | " + " | ".join(str(t) for t in totals) + " |")
    body = "\n".join(rows) + "\n\n## Survivors, module by module\n\n"
    body += "\n\n".join(f"### {s}" for s in sections) + "\n"
    return body, problems


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
        + part("campaign.md")
        + figures.rstrip()
        + "\n\n"
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
    parser.add_argument("--cache", type=Path, default=ROOT / ".mutmut-cache")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a survivor or mutant is unaccounted for"
    )
    parser.add_argument("--write", type=Path, metavar="PATH", help="write the whole report")
    args = parser.parse_args(argv)
    report_file = args.cache / "report.json"
    if not report_file.exists():
        parser.error(f"{report_file} does not exist: run make mutate first")
    markdown, problems = assemble(json.loads(report_file.read_text()))
    if args.write:
        write_report(markdown, problems, args.write)
    else:
        print(markdown)
    for problem in problems:
        print(f"missing: {problem}", file=sys.stderr)
    return 1 if args.check and problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
