"""``make mutate``: mutation testing of the consensus machine, the signer and its durable
state, the WAL, the margin engine, the order book and the exchange's tx handling.

mutmut (3.x) changes one thing at a time in a module (``<`` for ``<=``, ``+ 1`` on a
constant, a dropped argument, ...), each change a *mutant*, and runs the module's tests
against it. A mutant the tests fail on is killed; one they pass with survived: it is
either equivalent to the original (no input tells them apart) or a rule no test guards.
This script runs mutmut module by module within a time budget and prints every survivor
(file, line, the change) and a per-module summary (killed, survived, timeout, no tests,
not run).

How it runs:

- Each module of :data:`MODULES` is judged by its own focused tests only (the files and
  directories mapped to it; never the ``slow`` ones, nor :data:`DESELECTED`), and mutmut
  runs, for each mutant, only those of them that call the mutated function.
- Modules judged by the same tests are mutated together, in one mutmut workspace per
  group (:func:`group_of`; named after the group's first module,
  ``.mutmut-cache/<module>/``): mutmut's costly runs of the whole test selection (the
  stats run that finds which tests reach which function, and the run of the unmutated
  tests) then happen once per group, not once per module (the eight margin modules share
  one; alone, each module's share of a budget went on those runs). A workspace holds
  links to the sources and the tests, a ``pyproject.toml`` made of the project's plus a
  ``[tool.mutmut]`` section naming the group's modules and their tests, and mutmut's
  ``mutants/`` directory, where it keeps a verdict per mutant and a hash per function.
  Asking for one module runs its whole group. A rerun tests only the mutants
  of functions that changed since, and those not yet tested; when a module's tests change
  (a new test may kill a survivor) its survivors and untested-for-lack-of-tests mutants
  are tested again. ``rm -rf .mutmut-cache`` starts from scratch.
- The verdicts outlive the cache: after a campaign each module's verdicts, function
  hashes and tests digest are written to :data:`VERDICTS` (committed with the code), and
  a module whose workspace has none yet starts from them. So a fresh clone's ``make
  mutate`` tests only the mutants of functions changed since the committed campaign, and
  the survivors of modules whose tests changed. (A verdict can also depend on code
  outside its function; neither mutmut nor this accounts for that: delete the module's
  entry, or ``--fresh``, to test it all again.)
- The cores run as pure Python (``APPCHAIND_PURE_PYTHON=1``): mutmut writes the mutants
  into .py files and switches between them through a trampoline in each function, which
  the mypyc-compiled extension modules would bypass.
- Hypothesis runs its "mutate" profile (tests/conftest.py): derandomized, so a verdict is
  the same on a rerun; no shrinking and no example database.
- The budget (``--seconds``) is shared by the modules in turn: each gets at least an
  equal share of what is left, and a module still running at the end of its share is
  interrupted (its verdicts so far are kept); time left at the end goes to the
  interrupted modules in another round. What was not tested is reported as not run, and
  the next run goes on from there.

Usage (``make mutate`` installs mutmut and passes MUTATE_SECONDS / MUTATE_MODULES)::

    python tools/mutate.py [--modules margin/clearing.py ...] [--seconds 1800]
                           [--max-children 2] [--report-only] [--fresh]

To look at one mutant: ``cd .mutmut-cache/margin.clearing && ../../.venv/bin/mutmut show
<mutant id>`` (the ids are printed with the survivors).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import functools
import gzip
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".mutmut-cache"
#: The last campaign's verdicts per module (gzipped JSON, committed): see the docstring.
VERDICTS = ROOT / "docs" / "mutation" / "verdicts.json.gz"

#: The project's packages, linked into each workspace: mutmut copies them into ``mutants/``
#: (the one module mutated, the rest as they are), and the tests run from there, where the
#: project root is not on ``sys.path``: a package a test imports (directly or through a
#: package it imports) must be here or that test fails for every mutant (``spec`` was
#: missing once: tests/spec failed to import). :func:`project_imports` finds them and
#: :func:`prepare_workspace` refuses to run without them. appchaind.native finds the
#: pure-Python cores next to itself.
SOURCE_DIRS: tuple[str, ...] = ("appchaind", "orderbook", "margin", "config", "p2p", "spec")

_CONSENSUS_TESTS = ("tests/consensus",)
#: The signer's durable state and the WAL, and the node's rule that its own messages are in
#: both, fsynced, before they leave (tests/node/test_rules.py).
_DURABLE_STATE_TESTS = (
    "tests/node/test_wal_privval.py",
    "tests/node/test_mutants.py",
    "tests/node/test_rules.py",
    "tests/node/test_guards_durable_state.py",
)
#: The margin engine's rules are exercised through the exchange too (fills, fees, funding,
#: liquidations inside blocks), and the differential test against the spec checks both.
_MARGIN_TESTS = ("tests/margin", "tests/vectors", "tests/exchange", "tests/spec")
#: The order book alone, and the order lifecycle the exchange builds on it (post-only,
#: reduce-only, cancel and replace, expiry, triggers).
_BOOK_TESTS = ("tests/orderbook", "tests/vectors", "tests/exchange", "tests/spec")
_EXCHANGE_TESTS = (
    "tests/exchange",
    "tests/vectors",
    "tests/spec",
    "tests/node/test_exchange_adapter.py",
)

#: Module mutated -> the tests that judge its mutants (files or directories).
MODULES: dict[str, tuple[str, ...]] = {
    # Consensus: the machine and the rooms it was split into (block building and the
    # checks of a block's consensus data, pending evidence), the vote sets and the 2/3
    # thresholds, proposer selection; the double-sign guard and the one verdict cache.
    "appchaind/consensus/machine.py": _CONSENSUS_TESTS,
    "appchaind/consensus/blocks.py": _CONSENSUS_TESTS,
    "appchaind/consensus/evidence.py": _CONSENSUS_TESTS,
    "appchaind/consensus/votes.py": _CONSENSUS_TESTS,
    "appchaind/consensus/config.py": _CONSENSUS_TESTS,
    "appchaind/consensus/validators.py": _CONSENSUS_TESTS,
    "appchaind/consensus/signer.py": (*_CONSENSUS_TESTS, *_DURABLE_STATE_TESTS),
    "appchaind/chain/signatures.py": (
        *_CONSENSUS_TESTS,
        "tests/node/test_mempool.py",
        "tests/node/test_rules.py",
        "tests/node/test_node_driver.py",
    ),
    "appchaind/consensus/privval.py": _DURABLE_STATE_TESTS,
    "appchaind/consensus/wal.py": (*_DURABLE_STATE_TESTS, "tests/node/test_node_driver.py"),
    # Margin: accounts, the arithmetic, per-market state, funding, the clearing house,
    # the liquidation index, the liquidation process, the maker check.
    "margin/accounts.py": _MARGIN_TESTS,
    "margin/health.py": _MARGIN_TESTS,
    "margin/markets.py": _MARGIN_TESTS,
    "margin/funding.py": _MARGIN_TESTS,
    "margin/clearing.py": _MARGIN_TESTS,
    "margin/liquidation.py": _MARGIN_TESTS,
    "margin/liquidator.py": _MARGIN_TESTS,
    "margin/makers.py": _MARGIN_TESTS,
    # The order book and its conditional orders.
    "orderbook/book.py": _BOOK_TESTS,
    "orderbook/triggers.py": _BOOK_TESTS,
    # The exchange's tx handling: the ABCI++ surface (with the node's rule that a block
    # holding a badly signed tx is refused whole) and each rule's module.
    "appchaind/exchange/app.py": (*_EXCHANGE_TESTS, "tests/node/test_rules.py"),
    "appchaind/exchange/envelope.py": (*_EXCHANGE_TESTS, "tests/node/test_rules.py"),
    **{
        f"appchaind/exchange/{name}.py": _EXCHANGE_TESTS
        for name in (
            "orders",
            "cancels",
            "order_upkeep",
            "transfers",
            "builders",
            "staking",
            "staking_state",
            "accountability",
            "rewards",
            "inclusion",
            "prices",
            "funding",
            "storage",
            "commitment",
        )
    },  # fmt: skip
    "appchaind/exchange/oracle.py": (*_EXCHANGE_TESTS, "tests/node/test_oracle_source.py"),
}

#: Lines mutmut must leave alone, per module (regular expressions matched on the source).
#: mutmut 3.8 drops the parentheses of ``if (not a\n <= b\n <= c):`` when it removes the
#: ``not``, and the mutated file does not parse; the window check keeps its parentheses
#: (ruff formats it so) and loses only that line's mutants.
DO_NOT_MUTATE: dict[str, tuple[str, ...]] = {
    "appchaind/exchange/envelope.py": (r"not time_ms - params\.nonce_window_past_ms$",),
}

#: Tests too slow to run once per mutant (each has faster relatives in the same files).
DESELECTED: tuple[str, ...] = (
    # 18 s pure Python: 60 simulated networks; the sim's other tests run a few each.
    "tests/consensus/test_sim.py::test_many_seeds_across_fault_mixes_hold_every_property",
    # 3 s and 1.5 s: they check that the sim's checker catches deliberately broken machines
    # (the checker's rule, not the machine's); the other two variants stay.
    "tests/consensus/test_sim.py::test_the_checker_catches_broken_variants"
    "[Mutation.SKIP_ON_SINGLE_VOTE-byzantine-60-liveness]",
    "tests/consensus/test_sim.py::test_the_checker_catches_broken_variants"
    "[Mutation.NO_LOCKING-equivocation-100-agreement]",
    # Up to 200 fresh seeds each (tens of seconds): the lock mutants' recorded seeds stay.
    *(
        "tests/consensus/test_sim.py::"
        f"test_the_lock_mutants_break_within_a_bounded_run_of_unpicked_seeds[{name}]"
        for name in ("pol-without-polka", "pol-any-value", "unlock-on-nil-polka")
    ),
)

#: mutmut's wall-clock limit per mutant is (its tests' time + 1 s) x this; a mutant that
#: loops forever is a timeout (detected), so a long wait buys nothing.
TIMEOUT_MULTIPLIER = 4.0
#: Seconds a module's run is given to stop when interrupted; it is interrupted this long
#: before its share of the budget ends, so the whole run ends within the budget.
STOP_GRACE = 15.0
PROGRESS_EVERY = 60.0

#: mutmut's exit codes, grouped the way the summary reports them (mutmut.stats has the
#: full table; anything not listed here is "other": suspicious, segfault, ...).
_KILLED = {1, 3}
_SURVIVED = {0}
_TIMEOUT = {24, -24, 36, 152, 255}
_NO_TESTS = {5, 33}
_COLUMNS = ("mutants", "killed", "survived", "timeout", "no tests", "not run", "other")


def module_name(path: str) -> str:
    """``margin/clearing.py`` -> ``margin.clearing``."""
    return path.removesuffix(".py").replace("/", ".")


def group_of(module: str) -> list[str]:
    """The modules mutated with ``module`` (itself included, first one first): those of
    :data:`MODULES` judged by the same tests. A module not in MODULES is its own group."""
    tests = MODULES.get(module)
    if tests is None:
        return [module]
    return [m for m, t in MODULES.items() if t == tests]


def groups(modules: list[str]) -> list[list[str]]:
    """The groups that hold ``modules``, in the order of their first module."""
    seen: dict[str, list[str]] = {}
    for module in modules:
        group = group_of(module)
        seen.setdefault(group[0], group)
    return list(seen.values())


def workspace_of(cache: Path, module: str) -> Path:
    """Where ``module``'s group is mutated: named after the group's first module."""
    return cache / module_name(group_of(module)[0])


def _tests_record(workspace: Path, module: str) -> Path:
    """The digest of ``module``'s tests at its last run, in its group's workspace."""
    return workspace / f"{module_name(module)}.tests.sha256"


def verdict(exit_code: int | None) -> str:
    """One of :data:`_COLUMNS` (but "mutants") for a mutmut exit code."""
    if exit_code is None:
        return "not run"
    for name, codes in (
        ("killed", _KILLED),
        ("survived", _SURVIVED),
        ("timeout", _TIMEOUT),
        ("no tests", _NO_TESTS),
    ):
        if exit_code in codes:
            return name
    return "other"


# -- workspaces -------------------------------------------------------------------------


def _toml_list(items: tuple[str, ...] | list[str]) -> str:
    return json.dumps(list(items))  # a JSON list of plain strings is a TOML array


def mutmut_section(module: str) -> str:
    """The ``[tool.mutmut]`` section of the workspace of ``module``'s group."""
    group = group_of(module)
    selection = ["-m", "not slow"]
    for test in DESELECTED:
        selection += ["--deselect", test]
    selection += MODULES[module]
    patterns = [p for m in group for p in DO_NOT_MUTATE.get(m, ())]
    return "\n".join(
        [
            "",
            "[tool.mutmut]",
            f"source_paths = {_toml_list(SOURCE_DIRS)}",
            f"only_mutate = {_toml_list(group)}",
            f"do_not_mutate_patterns = {_toml_list(patterns)}",
            f"pytest_add_cli_args_test_selection = {_toml_list(selection)}",
            f"pytest_add_cli_args = {_toml_list(['-p', 'no:cacheprovider'])}",
            f"timeout_multiplier = {TIMEOUT_MULTIPLIER}",
            # mutmut's default forks each mutant's run from its main process, which has run
            # tests (the stats run) and so started LevelDB's one background thread; a forked
            # child has the thread's flag but not the thread, and any compaction it schedules
            # never runs: closing the store hung until the mutant timed out. The fork server
            # never runs a test, so each mutant's process starts LevelDB afresh.
            'process_isolation = "forkserver"',
            # the workspace is not where git runs; pyproject.toml is still watched
            "use_git_change_detection = false",
            "",
        ]
    )


def _project_package(name: str) -> str | None:
    """The top-level package of the project that the dotted ``name`` is in, if any."""
    top = name.partition(".")[0]
    return top if top and (ROOT / top / "__init__.py").is_file() else None


def _imported_names(path: Path) -> set[str]:
    """The module names ``path`` (a project file) imports, relative imports made absolute
    (``from x import y``: ``x`` and ``x.y``, since ``y`` may be a module)."""
    package = path.relative_to(ROOT).parent.parts
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = list(package[: len(package) - node.level + 1] if node.level else [])
            module = ".".join([*parts, *([node.module] if node.module else [])])
            if module:
                names.add(module)
                names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _module_file(name: str) -> Path | None:
    """The project file of the module (or package) named ``name``, if there is one."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.cache
def project_imports(tests: tuple[str, ...]) -> frozenset[str]:
    """The project's top-level packages that ``tests`` (files or directories) import, also
    through the project modules they import (a test helper, ``spec.exchange``, ...).
    Cached: it parses every test and project module reached (seconds per call)."""
    todo: list[Path] = []
    for test in tests:
        path = ROOT / test
        todo += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    seen: set[Path] = set()
    packages: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported_names(path):
            package = _project_package(name)
            if package is None:
                continue
            packages.add(package)
            parts = name.split(".")  # importing a.b.c runs a/__init__.py and a/b/__init__.py
            for end in range(1, len(parts) + 1):
                found = _module_file(".".join(parts[:end]))
                if found is not None and found not in seen:
                    todo.append(found)
    return frozenset(packages)


def prepare_workspace(cache: Path, module: str) -> Path:
    """Create or refresh the workspace of ``module``'s group under ``cache``; its path.
    Refuses (exit) when the tests import a project package that is not linked there."""
    missing = project_imports(MODULES[module]) - {*SOURCE_DIRS, "tests"}
    if missing:
        raise SystemExit(
            f"{module}: its tests import {sorted(missing)}, not in tools/mutate.py SOURCE_DIRS"
        )
    workspace = workspace_of(cache, module)
    workspace.mkdir(parents=True, exist_ok=True)
    for name in (*SOURCE_DIRS, "tests"):
        link = workspace / name
        if link.is_symlink() and link.readlink() == ROOT / name:
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(ROOT / name, target_is_directory=True)
    project = (ROOT / "pyproject.toml").read_text()
    if "[tool.mutmut]" in project:
        raise SystemExit("pyproject.toml has a [tool.mutmut] section: tools/mutate.py makes it")
    config = workspace / "pyproject.toml"
    text = project + mutmut_section(module)
    if not config.exists() or config.read_text() != text:
        if config.exists():  # other modules or tests: what mutmut knows of them is stale
            forget_test_mapping(workspace)
            for member in group_of(module):
                _tests_record(workspace, member).unlink(missing_ok=True)
        config.write_text(text)
    for member in group_of(module):
        drop_broken_mutant_file(workspace, member)
    return workspace


def drop_broken_mutant_file(workspace: Path, module: str) -> None:
    """Delete mutmut's copy of ``module`` in ``workspace`` when it holds no mutants: it
    is empty or does not parse (a run stopped while mutmut wrote it), or it is a plain
    copy (without mutmut's trampolines, or its record, the .meta) made while the module
    was not mutated in this workspace (it joined the group later). mutmut takes any copy newer than the source
    for up to date: it ran every test against an empty machine.py (all failed to import,
    so the stats run failed), it never mutated six of the eight margin modules, and it
    judged four consensus modules' mutants "no tests" (no trampoline recorded a call). The
    verdicts (the .meta) are kept: mutmut keeps those of the functions whose hash is
    unchanged when it writes the copy again."""
    copy = workspace / "mutants" / module
    if not copy.is_file():
        return
    try:
        text = copy.read_text()
        ast.parse(text)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        text = ""
    empty = not text.strip() and bool((ROOT / module).read_text().strip())
    if empty or not meta_path(workspace, module).exists():
        copy.unlink()
    elif "mutmut" not in text:
        # A plain copy beside a record of verdicts (the module was mutated in another
        # workspace, or its verdicts were restored): mutmut mapped no test to its
        # functions, so its mutants were judged "no tests". Written again with mutants,
        # and those verdicts tested again (as after a change of its tests).
        copy.unlink()
        _tests_record(workspace, module).unlink(missing_ok=True)


def forget_test_mapping(workspace: Path) -> None:
    """Make mutmut map tests to functions afresh (its stats run) in ``workspace``: it keeps
    the map of its last stats run and only adds the tests it has not seen, so a test that
    changed, or a module new to the workspace, would keep a stale or empty map (its
    mutants "survive" or have "no tests" while a test kills them)."""
    (workspace / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)


def tests_digest(module: str) -> str:
    """SHA-256 over the module's tests (every file under its mapped paths) and the
    shared conftest: when it changes, survivors get another try."""
    digest = hashlib.sha256()
    files: list[Path] = [ROOT / "tests" / "conftest.py"]
    for test in MODULES[module]:
        path = ROOT / test
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for path in files:
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def meta_path(workspace: Path, module: str) -> Path:
    """mutmut's record of ``module``'s mutants: ``exit_code_by_key`` (None: not tested)."""
    return workspace / "mutants" / (module + ".meta")


def read_verdicts(workspace: Path, module: str) -> dict[str, int | None]:
    try:
        return dict(json.loads(meta_path(workspace, module).read_text())["exit_code_by_key"])
    except (OSError, ValueError, KeyError):  # not there yet, or being written
        return {}


def load_committed(path: Path = VERDICTS) -> dict[str, dict[str, object]]:
    """Module -> {"tests_sha256", "exit_code_by_key", "hash_by_function_name"}."""
    try:
        return dict(json.loads(gzip.decompress(path.read_bytes())))
    except FileNotFoundError:
        return {}


def restore_verdicts(workspace: Path, module: str, committed: dict[str, dict[str, object]]) -> int:
    """Seed a workspace that has no verdicts of ``module`` with the committed ones (mutmut
    keeps those whose function hash still matches when it generates the mutants); how
    many verdicts."""
    entry = committed.get(module)
    path = meta_path(workspace, module)
    if entry is None or path.exists():
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    codes = dict(entry["exit_code_by_key"])  # type: ignore[call-overload]
    meta = {
        "exit_code_by_key": codes,
        "hash_by_function_name": entry["hash_by_function_name"],
        "type_check_error_by_key": {},
        "durations_by_key": {},
        "estimated_durations_by_key": {},
    }
    path.write_text(json.dumps(meta, indent=4))
    _tests_record(workspace, module).write_text(str(entry["tests_sha256"]))
    return sum(code is not None for code in codes.values())


def save_verdicts(cache: Path, modules: list[str], path: Path = VERDICTS) -> None:
    """Write the verdicts of ``modules`` (those with a workspace) into ``path``, keeping
    the other modules' entries; byte-for-byte the same for the same verdicts."""
    committed = load_committed(path)
    for module in modules:
        workspace = workspace_of(cache, module)
        record = _tests_record(workspace, module)
        try:
            meta = json.loads(meta_path(workspace, module).read_text())
        except (OSError, ValueError):
            continue
        if not record.exists():
            continue
        committed[module] = {
            "tests_sha256": record.read_text(),
            "exit_code_by_key": meta["exit_code_by_key"],
            "hash_by_function_name": meta["hash_by_function_name"],
        }
    data = json.dumps(committed, sort_keys=True, separators=(",", ":")).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0))


def retest_after_test_changes(workspace: Path, module: str, keep_survivors: bool = False) -> int:
    """If ``module``'s tests changed since the last run, clear the verdicts that new tests
    could change (survived, no tests) so mutmut tests those mutants again, and its map of
    tests to functions (:func:`forget_test_mapping`); how many verdicts.

    ``keep_survivors`` (``--keep-survivors``) keeps the survivors' verdicts for this run,
    which then tests only the mutants never tested and those no test reached (cheap: a
    new test is what they wait for); the record of the tests keeps the old digest, so
    the next run tests the survivors again."""
    digest = tests_digest(module)
    record = _tests_record(workspace, module)
    if record.exists() and record.read_text() == digest:
        return 0
    forget_test_mapping(workspace)
    if keep_survivors:
        return clear_verdicts(workspace, module, ("no tests",))
    cleared = clear_verdicts(workspace, module, ("survived", "no tests"))
    record.write_text(digest)
    return cleared


def clear_verdicts(workspace: Path, module: str, kinds: tuple[str, ...]) -> int:
    """Forget ``module``'s verdicts of these kinds (:func:`verdict`), so mutmut tests those
    mutants again; how many."""
    path = meta_path(workspace, module)
    if not path.exists():
        return 0
    meta = json.loads(path.read_text())
    codes = meta["exit_code_by_key"]
    cleared = [key for key, code in codes.items() if verdict(code) in kinds]
    for key in cleared:
        codes[key] = None
    path.write_text(json.dumps(meta, indent=4))
    return len(cleared)


# -- running ----------------------------------------------------------------------------


@dataclass
class ModuleRun:
    """What one run of one module did."""

    module: str
    seconds: float = 0.0
    interrupted: bool = False
    stopped: bool = False
    failed: str = ""
    retested: int = 0


def _counts(verdicts: dict[str, int | None]) -> dict[str, int]:
    counts = dict.fromkeys(_COLUMNS, 0)
    counts["mutants"] = len(verdicts)
    for code in verdicts.values():
        counts[verdict(code)] += 1
    return counts


def _progress(module: str, verdicts: dict[str, int | None], left: float) -> str:
    counts = _counts(verdicts)
    tested = counts["mutants"] - counts["not run"]
    return (
        f"  {module}: {tested}/{counts['mutants']} tested, {counts['killed']} killed, "
        f"{counts['survived']} survived, {counts['timeout']} timeouts ({left:.0f} s left)"
    )


def _default_sigint() -> None:
    # a run started in the background inherits SIGINT ignored; mutmut must see it to stop
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_module(
    workspace: Path, module: str, seconds: float, max_children: int, keep_survivors: bool = False
) -> ModuleRun:
    """Run mutmut on ``module``'s group for at most ``seconds`` (or until Ctrl-C: then
    ``interrupted`` and ``stopped`` are set)."""
    group = group_of(module)
    retested = sum(retest_after_test_changes(workspace, m, keep_survivors) for m in group)
    run = ModuleRun(module, retested=retested)
    if run.retested:
        print(f"  {module}: its tests changed: {run.retested} mutants to test again")
    env = os.environ | {"APPCHAIND_PURE_PYTHON": "1", "HYPOTHESIS_PROFILE": "mutate"}
    mutmut = Path(sys.executable).with_name("mutmut")
    command = [str(mutmut), "run", "--max-children", str(max_children)]
    start = time.monotonic()
    stop_at = start + max(seconds - STOP_GRACE, 1.0)
    log = workspace / "run.log"
    with log.open("w") as out:
        child = subprocess.Popen(
            command, cwd=workspace, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_default_sigint,
        )  # fmt: skip
        next_report = start + PROGRESS_EVERY
        try:
            while child.poll() is None:
                now = time.monotonic()
                if now >= stop_at:
                    run.interrupted = True
                    break
                if now >= next_report:
                    verdicts = {k: v for m in group for k, v in read_verdicts(workspace, m).items()}
                    print(_progress(module, verdicts, stop_at - now))
                    next_report = now + PROGRESS_EVERY
                try:
                    child.wait(min(1.0, stop_at - now))
                except subprocess.TimeoutExpired:
                    pass
        except KeyboardInterrupt:  # the run is in its own session: pass Ctrl-C on
            run.interrupted = run.stopped = True
        if run.interrupted:
            child.send_signal(signal.SIGINT)  # mutmut stops its workers, keeps its verdicts
            try:
                child.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                pass
        try:  # the run's process group: mutmut and any worker it left behind
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.wait()
    run.seconds = time.monotonic() - start
    if child.returncode != 0 and not run.interrupted:
        tail = log.read_text(errors="replace").replace("\r", "\n").splitlines()[-25:]
        run.failed = f"mutmut exited with {child.returncode}; end of {log}:\n" + "\n".join(tail)
    return run


# -- survivors --------------------------------------------------------------------------


@dataclass
class Survivor:
    """A surviving mutant: where it is and what it changes."""

    module: str
    line: int
    function: str
    key: str
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _function_line(tree: ast.Module, function: str, class_name: str | None) -> int:
    body = tree.body
    if class_name is not None:
        body = next(n.body for n in body if isinstance(n, ast.ClassDef) and n.name == class_name)
    node = next(
        n
        for n in body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == function
    )
    return node.lineno


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def survivors(
    workspace: Path, module: str, kinds: tuple[str, ...] = ("survived",)
) -> list[Survivor]:
    """Each survivor of ``module`` (or each mutant of other ``kinds`` of :func:`verdict`,
    such as "timeout"): the original and mutated lines, with line numbers."""
    import libcst as cst
    from mutmut.mutation.diff_apply import (
        read_functions_from_index,
        read_mutant_function,
        read_mutants_module,
        read_original_function,
    )
    from mutmut.utils.format_utils import orig_function_and_class_names_from_key

    verdicts = read_verdicts(workspace, module)
    keys = sorted(k for k, code in verdicts.items() if code is not None and verdict(code) in kinds)
    source = (ROOT / module).read_text()
    tree = ast.parse(source)
    lines = source.split("\n")
    found: list[Survivor] = []
    with _cwd(workspace):
        for key in keys:
            functions = read_functions_from_index(key, module)
            if functions is None:
                mutated = read_mutants_module(module)
                functions = (
                    read_original_function(mutated, key),
                    read_mutant_function(mutated, key),
                )
            original, mutant = (cst.Module([f]).code.strip().split("\n") for f in functions)
            function, class_name = orig_function_and_class_names_from_key(key)
            def_index = next(i for i, s in enumerate(original) if re.match(r"(async )?def ", s))
            first_line = _function_line(tree, function, class_name) - def_index
            survivor = Survivor(
                module, first_line, f"{class_name}.{function}" if class_name else function, key
            )
            opcodes = difflib.SequenceMatcher(a=original, b=mutant, autojunk=False).get_opcodes()
            changed = [op for op in opcodes if op[0] != "equal"]
            if changed:
                survivor.line = first_line + changed[0][1]
                # libcst gives a method's code dedented: indent as in the file
                pad = " " * (_indent(lines[first_line - 1]) - _indent(original[0]))
                for _, i1, i2, j1, j2 in changed:
                    survivor.removed += [
                        f"{first_line + i}: {lines[first_line + i - 1]}" for i in range(i1, i2)
                    ]
                    survivor.added += [pad + line for line in mutant[j1:j2]]
            found.append(survivor)
    return sorted(found, key=lambda s: (s.line, int(s.key.rpartition("_")[2])))


# -- report -----------------------------------------------------------------------------


def report(cache: Path, modules: list[str], runs: dict[str, ModuleRun]) -> dict[str, object]:
    """Print the survivors and the summary; the same as a dict (saved as report.json)."""
    rows: dict[str, dict[str, int]] = {}
    found: dict[str, list[Survivor]] = {}
    slow: dict[str, list[Survivor]] = {}
    for module in modules:
        workspace = workspace_of(cache, module)
        rows[module] = _counts(read_verdicts(workspace, module))
        found[module] = survivors(workspace, module) if rows[module]["survived"] else []
        # A worker killed by a signal ("other") ran away too: listed, and classified, with them.
        stuck = rows[module]["timeout"] + rows[module]["other"]
        slow[module] = survivors(workspace, module, ("timeout", "other")) if stuck else []

    for title, listed in (("Survivors", found), ("Timeouts (and workers killed)", slow)):
        for module in modules:
            if listed[module]:
                print(f"\n{title} in {module} ({len(listed[module])}):")
            for s in listed[module]:
                print(f"  {s.module}:{s.line}  {s.function}  [{s.key}]")
                for line in s.removed:
                    print(f"    - {line}")
                for line in s.added:
                    print(f"    + {line}")

    width = max(len(m) for m in modules)
    header = f"{'module':<{width}}  " + "  ".join(f"{c:>8}" for c in _COLUMNS)
    print(f"\nMutation testing (mutmut; cache {cache}):\n{header}  {'run (s)':>8}")
    for module in modules:
        run = runs.get(module)
        cells = "  ".join(f"{rows[module][c]:>8}" for c in _COLUMNS)
        took = f"{run.seconds:>8.0f}" if run else f"{'-':>8}"
        note = ""
        if run and run.failed:
            note = "  FAILED (see above)"
        elif run and run.stopped:
            note = "  stopped: rerun to go on"
        elif run and run.interrupted:
            note = "  budget used up: rerun to go on"
        print(f"{module:<{width}}  {cells}  {took}{note}")
    totals = {c: sum(rows[m][c] for m in modules) for c in _COLUMNS}
    print(f"{'total':<{width}}  " + "  ".join(f"{totals[c]:>8}" for c in _COLUMNS))
    return {
        "counts": rows,
        "runs": {m: asdict(r) for m, r in runs.items()},
        "survivors": {m: [asdict(s) for s in found[m]] for m in modules},
        "timeouts": {m: [asdict(s) for s in slow[m]] for m in modules},
    }


def campaign(
    cache: Path, modules: list[str], seconds: float, max_children: int, keep_survivors: bool = False
) -> dict[str, ModuleRun]:
    """Run the groups of ``modules`` (:func:`groups`) in turn within ``seconds``: each
    gets at least an equal share of what is left; time a group did not need goes to the
    next ones, and what is left at the end goes to the groups stopped at the end of their
    share, in another round (and, once, to a group whose mutmut run failed). The runs are
    keyed by each group's first module."""
    deadline = time.monotonic() + seconds
    leads = [group[0] for group in groups(modules)]
    count = sum(len(group_of(lead)) for lead in leads)
    print(f"mutation testing {count} modules in {len(leads)} groups within {seconds:.0f} s")
    runs: dict[str, ModuleRun] = {}
    failed_once: set[str] = set()
    pending = leads
    while pending:
        unfinished: list[str] = []
        for index, module in enumerate(pending):
            share = (deadline - time.monotonic()) / (len(pending) - index)
            if share <= STOP_GRACE:
                print(f"  {module}: no time left")
                continue
            others = len(group_of(module)) - 1
            print(f"  {module}{f' (+{others} modules)' if others else ''}: up to {share:.0f} s")
            workspace = prepare_workspace(cache, module)
            run = run_module(workspace, module, share, max_children, keep_survivors)
            if module in runs:  # another round: the time adds up
                run.seconds += runs[module].seconds
            runs[module] = run
            if run.failed:
                print(f"  {module}: {run.failed}")
            if run.stopped:
                print("stopped (Ctrl-C)")
                return runs
            if run.interrupted:
                unfinished.append(module)
            elif run.failed and module not in failed_once:
                # Once more in the next round: mutmut's run of the unmutated tests failed
                # once on a loaded machine and passed when run again.
                failed_once.add(module)
                unfinished.append(module)
        if len(unfinished) == len(pending):  # no module finished: more rounds won't help
            break
        pending = unfinished
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--modules",
        nargs="+",
        metavar="PATH",
        help="modules to mutate, as paths from the project root (default: all of MODULES)",
    )
    parser.add_argument("--seconds", type=float, default=1800.0, help="time budget, all modules")
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--cache-dir", type=Path, default=CACHE, help="where the workspaces are")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="print the last results (and write report.json), test nothing",
    )
    parser.add_argument(
        "--verdicts",
        type=Path,
        default=VERDICTS,
        help=f"the committed verdicts to start from and update (default {VERDICTS.relative_to(ROOT)})",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="do not start from the committed verdicts"
    )
    parser.add_argument(
        "--keep-survivors",
        action="store_true",
        help="test only mutants never tested, even if the tests changed (the next run "
        "tests the survivors again)",
    )
    parser.add_argument(
        "--retest-timeouts",
        action="store_true",
        help="test the mutants that timed out again (a loaded machine makes timeouts)",
    )
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress lines show up in a log as they come
    modules = [m for arg in args.modules or MODULES for m in arg.split(",") if m]
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        parser.error(f"not in tools/mutate.py MODULES: {unknown}; known: {list(MODULES)}")
    modules = [m for group in groups(modules) for m in group]  # a module runs with its group
    cache = args.cache_dir.resolve()

    runs: dict[str, ModuleRun] = {}
    if not args.report_only:
        committed = {} if args.fresh else load_committed(args.verdicts)
        for module in modules:
            restored = restore_verdicts(prepare_workspace(cache, module), module, committed)
            if restored:
                print(f"  {module}: {restored} verdicts from {args.verdicts}")
            if args.retest_timeouts:
                cleared = clear_verdicts(workspace_of(cache, module), module, ("timeout",))
                print(f"  {module}: {cleared} timeouts to test again")
        runs = campaign(cache, modules, args.seconds, args.max_children, args.keep_survivors)
        save_verdicts(cache, modules, args.verdicts)
    result = report(cache, modules, runs)
    (cache / "report.json").parent.mkdir(parents=True, exist_ok=True)
    (cache / "report.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    return 1 if any(r.failed for r in runs.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
