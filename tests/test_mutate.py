"""``make mutate`` (tools/mutate.py): its map of modules to tests is sound, and the whole
machinery (a mutmut workspace, a run within a budget, the survivors and the summary it
prints, the cache that makes a rerun test nothing unchanged) works on one small module.

The run needs mutmut, which ``make test`` does not install (``make mutate`` does: the
``mutate`` extra); without it that test skips and the others still run.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tools import mutate

ROOT = Path(__file__).resolve().parent.parent

#: The modules issue 19 asks to mutate, where their rules live since the exchange, the
#: consensus machine and the liquidation code were split into rooms (privval.py is the
#: signer's durable state; signatures.py the node's one verdict cache).
SCOPE = {
    # consensus: the machine and its rooms, vote sets and thresholds, proposer selection
    "appchaind/consensus/machine.py",
    "appchaind/consensus/blocks.py",
    "appchaind/consensus/evidence.py",
    "appchaind/consensus/votes.py",
    "appchaind/consensus/config.py",
    "appchaind/consensus/validators.py",
    "appchaind/consensus/signer.py",
    "appchaind/chain/signatures.py",
    "appchaind/consensus/privval.py",
    "appchaind/consensus/wal.py",
    # margin, and the liquidation process (the liquidator, the maker check)
    "margin/accounts.py",
    "margin/health.py",
    "margin/markets.py",
    "margin/funding.py",
    "margin/clearing.py",
    "margin/liquidation.py",
    "margin/liquidator.py",
    "margin/makers.py",
    # the order book
    "orderbook/book.py",
    "orderbook/triggers.py",
    # the exchange's tx handling: the ABCI++ surface and each rule's module
    "appchaind/exchange/app.py",
    "appchaind/exchange/envelope.py",
    "appchaind/exchange/orders.py",
    "appchaind/exchange/cancels.py",
    "appchaind/exchange/order_upkeep.py",
    "appchaind/exchange/transfers.py",
    "appchaind/exchange/builders.py",
    "appchaind/exchange/staking.py",
    "appchaind/exchange/staking_state.py",
    "appchaind/exchange/accountability.py",
    "appchaind/exchange/rewards.py",
    "appchaind/exchange/inclusion.py",
    "appchaind/exchange/prices.py",
    "appchaind/exchange/oracle.py",
    "appchaind/exchange/funding.py",
    "appchaind/exchange/storage.py",
    "appchaind/exchange/commitment.py",
}


def test_every_module_in_scope_is_mutated_and_its_tests_exist() -> None:
    assert set(mutate.MODULES) == SCOPE
    for module, tests in mutate.MODULES.items():
        assert (ROOT / module).is_file(), module
        for test in tests:
            assert (ROOT / test).exists(), f"{module}: {test} does not exist"


def test_every_module_of_the_exchange_and_margin_rules_is_mutated() -> None:
    """A rule moved into a new module is not left out: every module of the exchange's tx
    handling and of the margin engine is mutated but declarations (txs, records, state
    containers, startup wiring)."""
    declarations = {
        "appchaind/exchange/__init__.py", "appchaind/exchange/txs.py",
        "appchaind/exchange/state.py", "appchaind/exchange/statistics.py",
        "appchaind/exchange/startup.py", "margin/__init__.py", "margin/statistics.py",
    }  # fmt: skip
    for package in ("appchaind/exchange", "margin"):
        for path in sorted((ROOT / package).glob("*.py")):
            name = str(path.relative_to(ROOT))
            assert name in mutate.MODULES or name in declarations, name


def test_the_tests_import_only_linked_project_packages() -> None:
    """Every project package a module's tests import (also through helpers and through
    spec/) is linked into the workspace; tests/spec imports spec, which once was not."""
    assert mutate.project_imports(("tests/spec",)) >= {"spec", "appchaind", "margin"}
    assert "tests" in mutate.project_imports(("tests/consensus/test_rules.py",))  # relative
    for module, tests in mutate.MODULES.items():
        assert mutate.project_imports(tests) <= {*mutate.SOURCE_DIRS, "tests"}, module


def test_a_workspace_without_a_package_its_tests_import_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mutate, "SOURCE_DIRS", ("appchaind", "orderbook", "margin", "config"))
    with pytest.raises(SystemExit, match="spec"):
        mutate.prepare_workspace(tmp_path, "appchaind/exchange/orders.py")


def test_every_mapped_test_collects_in_a_workspace(tmp_path: Path) -> None:
    """In a workspace (where the project root is not on sys.path, as in mutmut's mutants/)
    all the tests of every module import: none fails for every mutant for want of a
    package."""
    workspace = mutate.prepare_workspace(tmp_path, "appchaind/exchange/app.py")
    tests = sorted({t for tests in mutate.MODULES.values() for t in tests})
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *tests],
        cwd=workspace, capture_output=True, text=True, timeout=300,
        env=os.environ | {"APPCHAIND_PURE_PYTHON": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for link in (*mutate.SOURCE_DIRS, "tests"):
        assert (workspace / link).resolve() == ROOT / link


def test_each_deselected_test_exists() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *mutate.DESELECTED],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    assert set(mutate.DESELECTED) <= set(done.stdout.split()), done.stdout[-2000:]


def test_modules_judged_by_the_same_tests_are_mutated_together() -> None:
    """One workspace per group of modules with the same tests: mutmut's runs of the whole
    selection (stats, unmutated tests) happen once per group."""
    margin = [m for m in mutate.MODULES if m.startswith("margin/")]
    assert mutate.group_of("margin/clearing.py") == margin and len(margin) == 8
    assert mutate.group_of("appchaind/consensus/validators.py")[0] == (
        "appchaind/consensus/machine.py"
    )
    assert mutate.group_of("appchaind/exchange/oracle.py") == ["appchaind/exchange/oracle.py"]
    cache = Path("/cache")
    assert {mutate.workspace_of(cache, m) for m in margin} == {cache / "margin.accounts"}
    assert mutate.groups(["margin/funding.py", "orderbook/book.py", "margin/clearing.py"]) == [
        margin, mutate.group_of("orderbook/book.py"),
    ]  # fmt: skip
    every = [m for group in mutate.groups(list(mutate.MODULES)) for m in group]
    assert sorted(every) == sorted(mutate.MODULES)


def test_the_workspace_config_names_the_group_and_its_tests_only() -> None:
    section = tomllib.loads(mutate.mutmut_section("margin/clearing.py"))["tool"]["mutmut"]
    assert section["only_mutate"] == mutate.group_of("margin/clearing.py")
    selection = section["pytest_add_cli_args_test_selection"]
    assert selection[:2] == ["-m", "not slow"]
    assert [t for t in selection if t.startswith("tests/") and "::" not in t] == list(
        mutate.MODULES["margin/clearing.py"]
    )
    assert set(mutate.SOURCE_DIRS) >= {"appchaind", "orderbook", "margin"}
    # Mutants are forked from mutmut's fork server, which runs no test: forked from the
    # main process (after its stats run had started LevelDB's background thread), a
    # mutant's tests hung closing a store.
    assert section["process_isolation"] == "forkserver"


def test_a_module_whose_run_failed_gets_one_more_try(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed mutmut run (its run of the unmutated tests failed once on a loaded machine)
    is tried again in the next round, once; a module that finished is not run again."""
    calls: list[str] = []

    def run_module(
        workspace: Path, module: str, seconds: float, children: int, keep: bool = False
    ) -> Any:
        calls.append(module)
        failed = "mutmut exited with 1" if module == "b.py" else ""
        return mutate.ModuleRun(module, seconds=1.0, failed=failed)

    monkeypatch.setattr(mutate, "run_module", run_module)
    monkeypatch.setattr(mutate, "prepare_workspace", lambda cache, module: cache)
    runs = mutate.campaign(tmp_path, ["a.py", "b.py"], 3600, 1)
    assert calls == ["a.py", "b.py", "b.py"]
    assert runs["b.py"].failed and runs["b.py"].seconds == 2.0


def test_verdicts_are_grouped_as_the_summary_reports_them() -> None:
    assert mutate.verdict(1) == "killed" and mutate.verdict(0) == "survived"
    assert mutate.verdict(-24) == "timeout" and mutate.verdict(33) == "no tests"
    assert mutate.verdict(None) == "not run" and mutate.verdict(-11) == "other"


def test_changed_tests_send_survivors_back_for_another_try(tmp_path: Path) -> None:
    module = "appchaind/consensus/privval.py"
    meta = mutate.meta_path(tmp_path, module)
    meta.parent.mkdir(parents=True)
    verdicts = {"killed": 1, "survived": 0, "untested": 33, "timeout": -24}
    meta.write_text(json.dumps({"exit_code_by_key": verdicts}))
    assert mutate.retest_after_test_changes(tmp_path, module) == 2  # first run: no record
    assert mutate.read_verdicts(tmp_path, module) == {
        "killed": 1, "survived": None, "untested": None, "timeout": -24,
    }  # fmt: skip
    meta.write_text(json.dumps({"exit_code_by_key": verdicts}))
    assert mutate.retest_after_test_changes(tmp_path, module) == 0  # tests unchanged
    assert mutate.read_verdicts(tmp_path, module) == verdicts


def test_keep_survivors_tests_only_the_untested_and_leaves_the_survivors_for_the_next_run(
    tmp_path: Path,
) -> None:
    """--keep-survivors: the tests changed, but this run keeps the survivors' verdicts
    (it maps the tests afresh, so new tests judge the mutants it does test, and those no
    test reached are tested again); the record
    keeps the old digest, so the next run without the flag tests the survivors again."""
    module = "appchaind/consensus/privval.py"
    meta = mutate.meta_path(tmp_path, module)
    meta.parent.mkdir(parents=True)
    stats = tmp_path / "mutants" / "mutmut-stats.json"
    verdicts = {"killed": 1, "survived": 0, "untested": None, "timeout": -24, "no test": 33}
    meta.write_text(json.dumps({"exit_code_by_key": verdicts}))
    mutate._tests_record(tmp_path, module).write_text("the digest of older tests")
    stats.write_text("{}")
    assert mutate.retest_after_test_changes(tmp_path, module, keep_survivors=True) == 1
    assert mutate.read_verdicts(tmp_path, module) == verdicts | {"no test": None}
    assert not stats.exists()  # mapped afresh
    assert mutate._tests_record(tmp_path, module).read_text() == "the digest of older tests"
    assert mutate.retest_after_test_changes(tmp_path, module) == 1
    assert mutate.read_verdicts(tmp_path, module)["survived"] is None


def test_timeouts_can_be_sent_back_for_another_try(tmp_path: Path) -> None:
    module = "appchaind/consensus/privval.py"
    meta = mutate.meta_path(tmp_path, module)
    meta.parent.mkdir(parents=True)
    verdicts = {"killed": 1, "survived": 0, "timeout": -24, "cpu": 36, "other": -11}
    meta.write_text(json.dumps({"exit_code_by_key": verdicts}))
    assert mutate.clear_verdicts(tmp_path, module, ("timeout",)) == 2
    assert mutate.read_verdicts(tmp_path, module) == {
        "killed": 1, "survived": 0, "timeout": None, "cpu": None, "other": -11,
    }  # fmt: skip
    assert mutate.clear_verdicts(tmp_path / "nowhere", module, ("timeout",)) == 0


def test_mutmut_maps_tests_afresh_when_the_workspace_or_the_tests_change(tmp_path: Path) -> None:
    """mutmut keeps its map of tests to functions and only adds tests it has not seen: a
    workspace whose configuration changed (another group of modules) or whose tests
    changed must lose it, or the mutants of functions it maps to no test "have no tests"
    and those mapped to stale tests "survive" (a campaign of this session had both)."""
    module = "margin/clearing.py"
    workspace = mutate.prepare_workspace(tmp_path, module)
    stats = workspace / "mutants" / "mutmut-stats.json"
    stats.parent.mkdir()
    stats.write_text("{}")
    mutate.prepare_workspace(tmp_path, module)  # unchanged: the map stays
    assert stats.exists()
    mutate._tests_record(workspace, module).write_text(mutate.tests_digest(module))
    (workspace / "pyproject.toml").write_text("[tool.mutmut]\nonly_mutate = ['x.py']\n")
    mutate.prepare_workspace(tmp_path, module)
    assert not stats.exists()
    assert not mutate._tests_record(workspace, module).exists()  # survivors: tested again
    stats.write_text("{}")
    mutate._tests_record(workspace, module).write_text("the digest of older tests")
    mutate.retest_after_test_changes(workspace, module)
    assert not stats.exists()


def test_a_mutant_copy_left_empty_by_a_stopped_run_is_written_again(tmp_path: Path) -> None:
    """A campaign stopped while mutmut wrote a module's copy left it empty; newer than the
    source, mutmut took it for up to date and every test failed to import from it (the
    consensus group's stats run failed this way). The workspace drops such a copy and
    keeps the module's verdicts; a copy with mutants stays. A plain copy goes too (six
    margin modules were never mutated; four consensus modules' mutants were judged
    "no tests"), and beside verdicts its "no tests" are tested again."""
    module = "appchaind/consensus/votes.py"
    workspace = mutate.prepare_workspace(tmp_path, module)
    copy = workspace / "mutants" / module
    copy.parent.mkdir(parents=True)
    meta = mutate.meta_path(workspace, module)
    meta.write_text('{"exit_code_by_key": {}}')
    copy.write_text("")
    mutate.prepare_workspace(tmp_path, module)
    assert not copy.exists() and meta.exists()
    copy.write_text("def f(:\n")  # cut off mid-write
    mutate.prepare_workspace(tmp_path, module)
    assert not copy.exists()
    # A plain copy (no trampolines) beside a record of verdicts: its "no tests" verdicts
    # came from a map without its functions; the copy goes and those verdicts are tested
    # again.
    record = mutate._tests_record(workspace, module)
    record.write_text(mutate.tests_digest(module))
    copy.write_text((mutate.ROOT / module).read_text())
    mutate.prepare_workspace(tmp_path, module)
    assert not copy.exists() and not record.exists() and meta.exists()
    # A copy with mutants stays.
    copy.write_text("def x_f__mutmut_1(): pass\n")
    mutate.prepare_workspace(tmp_path, module)
    assert copy.exists()
    # A plain copy made while the module was not mutated here (no record of mutants):
    # mutmut would never mutate it.
    copy.write_text((mutate.ROOT / module).read_text())
    meta.unlink()
    mutate.prepare_workspace(tmp_path, module)
    assert not copy.exists()


def test_verdicts_are_committed_and_seed_a_fresh_workspace(tmp_path: Path) -> None:
    """After a campaign the verdicts go to the committed file (other modules' entries
    kept, the same bytes for the same verdicts); a workspace without verdicts starts from
    them, tests digest included, and one that has its own keeps them."""
    module, other = "appchaind/consensus/privval.py", "appchaind/consensus/wal.py"
    verdicts = tmp_path / "verdicts.json.gz"
    old = {"tests_sha256": "x", "exit_code_by_key": {"w_1": 1}, "hash_by_function_name": {}}
    verdicts.write_bytes(gzip.compress(json.dumps({other: old}).encode()))
    cache = tmp_path / "cache"
    workspace = mutate.workspace_of(cache, module)
    meta = mutate.meta_path(workspace, module)
    meta.parent.mkdir(parents=True)
    codes = {"m_1": 1, "m_2": 0, "m_3": None}
    meta.write_text(json.dumps({
        "exit_code_by_key": codes, "hash_by_function_name": {"f": "abc"},
        "type_check_error_by_key": {}, "durations_by_key": {"m_1": 0.5},
        "estimated_durations_by_key": {},
    }))  # fmt: skip
    mutate._tests_record(workspace, module).write_text("digest")
    mutate.save_verdicts(cache, [module], verdicts)
    first = verdicts.read_bytes()
    mutate.save_verdicts(cache, [module], verdicts)
    assert verdicts.read_bytes() == first
    committed = mutate.load_committed(verdicts)
    assert committed[other] == old
    assert committed[module]["exit_code_by_key"] == codes

    fresh = tmp_path / "fresh"
    assert mutate.restore_verdicts(fresh, module, committed) == 2
    seeded = json.loads(mutate.meta_path(fresh, module).read_text())
    assert seeded["exit_code_by_key"] == codes
    assert seeded["hash_by_function_name"] == {"f": "abc"}
    assert mutate._tests_record(fresh, module).read_text() == "digest"
    assert mutate.restore_verdicts(workspace, module, committed) == 0  # has its own


def _run_campaign(cache: Path, module: str, verdicts: Path) -> str:
    done = subprocess.run(
        [sys.executable, "tools/mutate.py", "--modules", module, "--seconds", "400",
         "--cache-dir", str(cache), "--verdicts", str(verdicts)],
        cwd=ROOT, capture_output=True, text=True, timeout=500,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _summary_row(out: str, module: str) -> list[int]:
    """The counts (mutants, killed, survived, timeout, no tests, not run, other) that the
    summary prints for ``module``."""
    row = next(line for line in out.splitlines() if line.startswith(module + " "))
    return [int(cell) for cell in row.split()[1:8]]


def test_a_campaign_on_one_small_module_reports_and_caches(tmp_path: Path) -> None:
    pytest.importorskip("mutmut", reason="make mutate installs mutmut (the mutate extra)")
    module = "appchaind/consensus/privval.py"
    verdicts = tmp_path / "verdicts.json.gz"
    out = _run_campaign(tmp_path, module, verdicts)
    row = _summary_row(out, module)
    mutants, killed, survived, timeout, no_tests, not_run, other = row
    assert mutants > 50 and killed > mutants // 2 and not_run == 0, out
    assert f"Survivors in {module} ({survived}):" in out or survived == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["counts"][module]["killed"] == killed
    assert all(s["line"] > 0 and s["removed"] for s in report["survivors"][module])
    assert len(report["timeouts"][module]) == timeout + other

    meta = mutate.meta_path(tmp_path / "appchaind.consensus.privval", module)
    before = json.loads(meta.read_text())["durations_by_key"]
    again = _run_campaign(tmp_path, module, verdicts)
    assert json.loads(meta.read_text())["durations_by_key"] == before  # nothing retested
    assert _summary_row(again, module) == row
    # A fresh clone: no cache, the committed verdicts. Nothing is tested again.
    fresh = tmp_path / "fresh"
    seeded = _run_campaign(fresh, module, verdicts)
    assert "verdicts from" in seeded
    meta = mutate.meta_path(fresh / "appchaind.consensus.privval", module)
    assert json.loads(meta.read_text())["durations_by_key"] == {}
    assert _summary_row(seeded, module) == row


def test_under_mutmut_a_mutants_tests_run_fastest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mutmut stops a mutant's run at its first failing test: tests/conftest.py orders them
    by the time mutmut's stats run measured (unknown ones first), and only under mutmut."""
    from types import SimpleNamespace

    from tests import conftest

    monkeypatch.setattr(conftest, "_durations", {})  # this session's own stays untouched
    (tmp_path / "mutmut-stats.json").write_text(
        json.dumps({"duration_by_test": {"t.py::slow": 20.0, "t.py::fast": 0.1, "t.py::mid": 2.0}})
    )
    monkeypatch.chdir(tmp_path)
    names = ["t.py::slow", "t.py::mid", "t.py::new", "t.py::fast"]
    items: list[Any] = [SimpleNamespace(nodeid=name) for name in names]
    monkeypatch.delenv("MUTANT_UNDER_TEST", raising=False)
    conftest.pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]
    assert [item.nodeid for item in items] == names  # not under mutmut: as collected
    monkeypatch.setenv("MUTANT_UNDER_TEST", "margin.clearing.x_settle__mutmut_3")
    conftest.pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]
    assert [item.nodeid for item in items] == ["t.py::new", "t.py::fast", "t.py::mid", "t.py::slow"]


def test_under_mutmut_a_test_far_past_its_measured_time_fails(tmp_path: Path) -> None:
    """A mutant that loops forever hangs in its first test: under mutmut that test fails
    once it runs MUTANT_TEST_LIMIT past its measured time, so the mutant is killed within
    seconds (mutmut's own limit is minutes for the consensus machine's rule loop); a test
    within its time passes, and outside mutmut no limit applies."""
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "test_x.py").write_text(
        "def test_loops():\n    while True:\n        pass\n\n\ndef test_quick():\n    pass\n"
    )
    (tmp_path / "mutmut-stats.json").write_text(
        json.dumps(
            {"duration_by_test": {"test_x.py::test_loops": 0.0, "test_x.py::test_quick": 0.0}}
        )
    )
    env = os.environ | {"PYTHONPATH": str(ROOT), "MUTANT_UNDER_TEST": "m.x_f__mutmut_1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", ".",
         "test_x.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "MutantTestTooLong: test_x.py::test_loops ran past 5.0 s" in done.stdout, done.stdout
    assert "1 failed, 1 passed" in done.stdout
