"""The compiled build (mypyc) and the pure-Python build compute the same chain.

Validators may run either build (a machine without a C compiler installs pure Python, and
``APPCHAIND_PURE_PYTHON=1`` is the operator's escape hatch), so a difference between them
would be a consensus failure. Each build replays the same seeded random blocks (order flow
of every kind, price moves that liquidate) in its own process; the app hashes must agree at
every height. Also: the build switch itself (stale sources fall back to source).

A comparison skipped because the compiled build is missing or stale would let any
source change through unchecked, so in CI (CI=true) it fails instead, saying how to
rebuild; ``make test`` rebuilds a stale build before it runs the tests (the Makefile's
NATIVE_STAMP). Elsewhere (``pytest`` run by hand after an edit) it skips, saying why.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from appchaind import native
from appchaind.exchange import CancelAll, CancelOrder, Faucet, Transfer, Withdraw
from tests.conftest import IN_CI
from tests.exchange.support import address
from tests.exchange.test_properties import TRADERS, _build, _genesis, _Replace, _run

ROOT = Path(__file__).resolve().parent.parent


def require_compiled_build(build: str) -> None:
    """Skip (or in CI, fail) unless ``build`` (a :func:`native.status` description) says
    the compiled build runs."""
    if build.startswith("compiled"):
        return
    message = f"the compiled build does not run: {build}; `make` rebuilds it (with mypyc)"
    if IN_CI:
        pytest.fail(f"{message}. CI compares the two builds and does not skip this")
    pytest.skip(message)


def _order_spec(rng: random.Random) -> tuple:
    return (
        rng.randint(0, 1), rng.randint(0, 1), rng.choice([0, 0, 0, 1, 2, 3, 4, 5]),
        rng.randint(0, 3), rng.randint(-30, 30), rng.randint(1, 150), rng.randint(-30, 30),
        rng.random() < 0.25, rng.randint(0, 6), rng.choice([0, 0, 0, 3, 6]),
    )  # fmt: skip


def _body(rng: random.Random) -> object:
    roll = rng.randrange(100)
    if roll < 70:
        return _order_spec(rng)
    kind = roll % 6
    if kind == 0:
        return CancelOrder(
            rng.randint(0, 1), rng.randint(1, 300), rng.randint(0, 6), rng.random() < 0.5
        )
    if kind == 1:
        return CancelAll(rng.randint(0, 1), rng.random() < 0.5)
    if kind == 2:
        return _Replace(
            rng.randint(1, 300), rng.randint(0, 6), rng.random() < 0.5, _order_spec(rng)
        )
    if kind == 3:
        return Transfer(address(TRADERS[rng.randint(0, 4)]), rng.randint(1, 10**9))
    if kind == 4:
        return Withdraw(rng.randint(1, 10**9))
    return Faucet(rng.randint(1, 10**8))


def seeded_blocks(seed: int, blocks: int) -> list:
    """``blocks`` seeded random blocks (order flow of every kind, price moves), each ready
    for ``tests.exchange.test_properties._run`` on an app built from ``_genesis()``."""
    rng = random.Random(seed)
    specs = [
        (
            [rng.randint(-60, 60), rng.randint(-60, 60)],
            [(rng.randint(0, 4), _body(rng), rng.randint(0, 9)) for _ in range(rng.randint(0, 12))],
        )
        for _ in range(blocks)
    ]
    return _build(specs)


def replay_hashes(seed: int, blocks: int) -> dict[str, object]:
    """Run ``blocks`` seeded random blocks through a fresh app; the app hash after each."""
    from appchaind.exchange import ExchangeApp

    app = ExchangeApp(_genesis())
    hashes = [_run(app, block).hex() for block in seeded_blocks(seed, blocks)]
    return {"build": native.status()[1], "hashes": hashes}


def _python(code: str, env_extra: dict[str, str]) -> str:
    """stdout of ``python -c code`` in the project root, with only ``env_extra`` choosing
    the build."""
    env = {k: v for k, v in os.environ.items() if k != native.PURE_ENV} | env_extra
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout


def _replay_in_process(pure: bool, seed: int, blocks: int) -> dict[str, object]:
    code = (
        "import json, sys; from tests.test_native import replay_hashes; "
        f"print(json.dumps(replay_hashes({seed}, {blocks})))"
    )
    out = _python(code, {native.PURE_ENV: "1"} if pure else {})
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("seed", [1, 2])
def test_compiled_and_pure_builds_agree_on_every_app_hash(seed: int) -> None:
    compiled = _replay_in_process(False, seed, 40)
    require_compiled_build(str(compiled["build"]))
    pure = _replay_in_process(True, seed, 40)
    assert str(pure["build"]).startswith("pure Python")
    assert len(compiled["hashes"]) == 41
    assert compiled["hashes"] == pure["hashes"]


def _status_in(env_extra: dict[str, str]) -> str:
    code = (
        "import orderbook.book as b; from appchaind import native; "
        "print(native.status()[1]); print(b.__file__)"
    )
    return _python(code, env_extra)


@pytest.mark.parametrize(("ci", "outcome"), [("true", "Failed"), ("", "Skipped")])
def test_in_ci_a_stale_compiled_build_fails_the_comparison_instead_of_skipping(
    ci: str, outcome: str
) -> None:
    """The trap: a comparison that skipped in CI would let any source change through. With
    CI=true (as CI runs) :func:`require_compiled_build` given a stale build fails the test;
    elsewhere it skips. In a fresh interpreter, so that tests.conftest reads CI itself."""
    stale = f"pure Python (compiled build is stale: {native.NATIVE_MODULES[0]} changed)"
    code = (
        "import pytest\n"
        "from tests.test_native import require_compiled_build\n"
        "try:\n"
        f"    require_compiled_build({stale!r})\n"
        "except (pytest.fail.Exception, pytest.skip.Exception) as outcome:\n"
        "    print(type(outcome).__name__)\n"
    )
    assert _python(code, {"CI": ci}).split() == [outcome]


def test_pure_python_switch_loads_every_core_module_from_source() -> None:
    status, module_file = _status_in({native.PURE_ENV: "1"}).splitlines()
    assert "APPCHAIND_PURE_PYTHON" in status and module_file.endswith("book.py")


def test_a_stale_compiled_build_falls_back_to_the_source(tmp_path: Path, monkeypatch) -> None:
    require_compiled_build(_status_in({}).splitlines()[0])
    record = json.loads(native.BUILD_RECORD.read_text())
    tampered = dict(record, **{native.NATIVE_MODULES[0]: "0" * 64})
    native.BUILD_RECORD.write_text(json.dumps(tampered))
    try:
        status, module_file = _status_in({}).splitlines()
    finally:
        native.BUILD_RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    assert "stale" in status and native.NATIVE_MODULES[0] in status
    assert module_file.endswith("book.py")
    status, module_file = _status_in({}).splitlines()
    assert status.startswith("compiled") and not module_file.endswith(".py")


def test_the_compiled_book_keeps_its_orders_out_of_the_garbage_collector() -> None:
    """Orders, levels, buckets and owners compile acyclic (no collector header, never tracked), so
    collections do not traverse the resting orders (that made the book 40% slower while it
    grew). The pure build, where they are tracked, checks that they form no cycle."""
    code = (
        "import gc; from appchaind import native; from orderbook import OrderBook; "
        "book = OrderBook(); book.place(1, bytes(20), 1, 100, 5, 0, 0, 1); "
        "order = book.resting(1); level = book._bids.level_at(-100); holder = order.holder; "
        "bucket = book._bids.bucket_of(-100); print(native.status()[1]); "
        "print([gc.is_tracked(x) for x in (order, level, holder, bucket, level.queue, book)])"
    )
    build, tracked = _python(code, {}).splitlines()
    require_compiled_build(build)
    assert tracked == "[False, False, False, False, True, True]"


def test_every_project_module_the_compiled_code_imports_is_a_build_input() -> None:
    """Compiled code copies the ``Final`` constants of what it imports: each project module
    it imports is compiled too or listed in BUILD_INPUTS (so editing it makes the build
    stale)."""
    import ast

    project = ("appchaind", "orderbook", "margin", "config", "p2p")
    imported: set[str] = set()
    for module in native.NATIVE_MODULES:
        tree = ast.parse(native.source_path(module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                path = native.source_path(name)
                if name.split(".")[0] in project and path.exists():
                    imported.add(name)
    missing = imported - set(native.NATIVE_MODULES) - set(native.BUILD_INPUTS)
    assert not missing, f"add to appchaind.native.BUILD_INPUTS: {sorted(missing)}"


def test_both_builds_answer_lookups_by_keys_that_are_not_ints_alike() -> None:
    """The compiled trigger store's ids are checked ``int`` parameters: ``cancel(1.5)``
    raised TypeError there and answered 0 in pure Python until the book looked every key
    up as the int it stands for (tests/orderbook/test_guards_order_ids.py)."""
    code = (
        "from appchaind import native; "
        "from tests.orderbook.test_guards_order_ids import lookup_answers; "
        "print(native.status()[1]); print(repr(lookup_answers()))"
    )
    build, compiled = _python(code, {}).splitlines()
    require_compiled_build(build)
    pure = _python(code, {native.PURE_ENV: "1"}).splitlines()[1]
    assert compiled == pure
