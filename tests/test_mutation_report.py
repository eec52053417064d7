"""tools/mutation_report.py: the campaign's figures joined with the classification of its
survivors, and everything left unaccounted for named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import mutate, mutation_report

COLUMNS = ("mutants", "killed", "survived", "timeout", "no tests", "not run", "other")


def _report(**modules: tuple[int, int, int]) -> dict[str, object]:
    """A report.json of modules given as (killed, survived, not run)."""
    counts = {}
    for name, (killed, survived, not_run) in modules.items():
        row = dict.fromkeys(COLUMNS, 0)
        row.update(killed=killed, survived=survived)
        row["not run"] = not_run
        row["mutants"] = killed + survived + not_run
        counts[name.replace("__", "/") + ".py"] = row
    return {"counts": counts, "runs": {}, "survivors": {}}


def _classify(directory: Path, module: str, n: int, e: int, t: int, o: int) -> None:
    path = mutation_report.classification_path(module, directory)
    path.write_text(
        f"{module}: {n} survivors: {e} equivalent, {t} gap (tested), {o} gap (open)\n\n"
        "| lines | functions | n | e.g. | class | why |\n|---|---|---:|---|---|---|\n"
    )


def test_a_fully_classified_campaign_has_nothing_missing(tmp_path: Path) -> None:
    _classify(tmp_path, "margin/clearing.py", 3, 2, 1, 0)
    markdown, problems = mutation_report.assemble(
        _report(margin__clearing=(10, 3, 0), margin__funding=(5, 0, 0)), tmp_path
    )
    assert problems == []
    assert "| margin/clearing.py | 13 | 10 | 3 | 0 | 0 | 0 | 2 | 1 | 0 | 0 | 0 |" in markdown
    assert "| total | 18 | 15 | 3 | 0 | 0 | 0 | 2 | 1 | 0 | 0 | 0 |" in markdown
    assert "### margin/clearing.py: 3 survivors" in markdown


@pytest.mark.parametrize(
    ("counts", "classified", "missing"),
    [
        ((10, 3, 4), (3, 2, 1, 0), "4 mutants not run"),
        ((10, 3, 0), None, "3 survivors, 0 timeouts and no margin__clearing.md"),
        ((10, 3, 0), (2, 1, 1, 0), "3 survivors, margin__clearing.md classifies 2"),
        ((10, 3, 0), (3, 1, 1, 0), "1 + 1 + 0 is not 3 survivors"),
    ],
)
def test_what_is_not_accounted_for_is_named(
    tmp_path: Path,
    counts: tuple[int, int, int],
    classified: tuple[int, int, int, int] | None,
    missing: str,
) -> None:
    if classified is not None:
        _classify(tmp_path, "margin/clearing.py", *classified)
    _, problems = mutation_report.assemble(_report(margin__clearing=counts), tmp_path)
    assert len(problems) == 1 and missing in problems[0]


@pytest.mark.parametrize(
    ("line", "missing"),
    [
        ("3 timeouts: 2 endless, 1 slow", None),
        (None, "3 timeouts (or workers killed), margin__clearing.md classifies 0"),
        ("2 timeouts: 2 endless, 0 slow", "3 timeouts (or workers killed), margin__clearing.md"),
        ("3 timeouts: 1 endless, 1 slow", "1 endless + 1 slow is not 3 timeouts"),
    ],
)
def test_timeouts_and_killed_workers_are_classified_too(
    tmp_path: Path, line: str | None, missing: str | None
) -> None:
    """Two timeouts and one worker killed by a signal ("other"): the file says which loop
    forever (endless) and which only ran long (slow)."""
    _classify(tmp_path, "margin/clearing.py", 1, 1, 0, 0)
    path = mutation_report.classification_path("margin/clearing.py", tmp_path)
    if line is not None:
        path.write_text(path.read_text() + f"\n## Timeouts\n\n{line}\n")
    report = _report(margin__clearing=(10, 1, 0))
    row = report["counts"]["margin/clearing.py"]  # type: ignore[index]
    row.update(timeout=2, other=1, mutants=14)
    markdown, problems = mutation_report.assemble(report, tmp_path)
    if missing is None:
        assert problems == []
        assert "| margin/clearing.py | 14 | 10 | 1 | 3 | 0 | 0 | 1 | 0 | 0 | 2 | 1 |" in markdown
    else:
        assert len(problems) == 1 and missing in problems[0]


def test_a_classification_file_must_open_with_its_counts(tmp_path: Path) -> None:
    path = tmp_path / "margin__clearing.md"
    path.write_text("margin/clearing.py: three survivors\n")
    with pytest.raises(ValueError, match="first line must read"):
        mutation_report.read_classification(path)


def test_the_written_report_puts_the_parts_in_order_and_names_what_is_missing(
    tmp_path: Path,
) -> None:
    (tmp_path / "head.md").write_text("# Mutation testing report\n\nHow it runs.\n")
    (tmp_path / "campaign.md").write_text("Ran on abc123.\n")
    (tmp_path / "named-rules.md").write_text("# Named rules\n\n## Consensus\n\n| r |\n")
    _classify(tmp_path, "margin/clearing.py", 3, 2, 1, 0)
    markdown, problems = mutation_report.assemble(
        _report(margin__clearing=(10, 3, 0), margin__funding=(5, 0, 2)), tmp_path
    )
    out = tmp_path / "report.md"
    mutation_report.write_report(markdown, problems, out, tmp_path)
    text = out.read_text()
    order = [
        "# Mutation testing report", "## Campaign figures", "| margin/clearing.py | 13 |",
        "Ran on abc123.", "## Named rules", "### Consensus",
        "## Not accounted for", "- margin/funding.py: 2 mutants not run",
        "## Survivors, module by module", "### margin/clearing.py: 3 survivors",
    ]  # fmt: skip
    positions = [text.index(piece) for piece in order]
    assert positions == sorted(positions)


def test_the_figures_come_from_the_committed_verdicts_of_every_module(tmp_path: Path) -> None:
    """Each mutant's exit code is read as tools/mutate.py reads it (1 and 3 killed, 0
    survived, 24 a timeout, 33 no tests, None not run); a module with no verdicts is
    reported with none and named as never mutated."""
    codes = {"a": 1, "b": 3, "c": 0, "d": 24, "e": 33, "f": None, "g": 1}
    committed: dict[str, dict[str, object]] = {
        "margin/clearing.py": {"exit_code_by_key": codes, "tests_sha256": "x"}
    }
    report = mutation_report.report_from_verdicts(
        committed, ["margin/clearing.py", "margin/funding.py"]
    )
    assert report["counts"] == {
        "margin/clearing.py": {
            "mutants": 7, "killed": 3, "survived": 1, "timeout": 1, "no tests": 1,
            "not run": 1, "other": 0,
        },
        "margin/funding.py": dict.fromkeys(COLUMNS, 0),
    }  # fmt: skip
    _classify(tmp_path, "margin/clearing.py", 1, 1, 0, 0)
    path = mutation_report.classification_path("margin/clearing.py", tmp_path)
    path.write_text(path.read_text() + "\n1 timeouts: 1 endless, 0 slow\n")
    markdown, problems = mutation_report.assemble(report, tmp_path)
    assert "| margin/clearing.py | 7 | 3 | 1 | 1 | 1 | 1 | 1 | 0 | 0 | 1 | 0 |" in markdown
    assert problems == [
        "margin/clearing.py: 1 mutants not run (run make mutate again)",
        "margin/clearing.py: 1 mutants reached by no test (their functions need one)",
        "margin/funding.py: no verdicts (never mutated: run make mutate)",
    ]


def test_by_default_every_module_of_the_campaign_is_reported() -> None:
    report = mutation_report.report_from_verdicts({})
    assert list(report["counts"]) == list(mutate.MODULES)  # type: ignore[call-overload]
