"""Which build of the deterministic cores runs: compiled with mypyc, or the Python source.

The order book, margin and exchange modules listed in :data:`NATIVE_MODULES` are plain,
fully typed Python. ``pip install`` (``setup.py``) compiles them with mypyc into extension
modules next to their sources when it can, and records a SHA-256 of every source it
compiled in ``appchaind/_native_build.json``. Both builds compute the same state: the
compiled one is the same code without the interpreter (tests/test_native.py replays blocks
through both and compares app hashes), so validators may run either.

The compiled build is used only when it is whole and current. The finder installed by
:func:`install` (which runs when this module is imported: every package with compiled
modules imports it first) loads all of :data:`NATIVE_MODULES` from source instead when:

- ``APPCHAIND_PURE_PYTHON=1`` is set (an operator's escape hatch, and how the tests run
  the pure build);
- a source changed since it was compiled (a developer edited it; ``make`` rebuilds): a
  compiled module's or one of the :data:`BUILD_INPUTS` it takes constants from; or a
  compiled module is missing.

It is all or nothing: compiled modules call each other directly, so one stale module
switches every one of them to source. :func:`status` says which build runs and why.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = [
    "NATIVE_MODULES",
    "BUILD_INPUTS",
    "BUILD_RECORD",
    "build_is_current",
    "install",
    "status",
    "source_digest",
]

#: Modules compiled with mypyc (dotted names, relative to the project root). Modules of
#: enums, frozen dataclasses and other declarations stay Python (mypyc does not support
#: frozen dataclasses, and there is nothing to gain there).
NATIVE_MODULES: tuple[str, ...] = (
    "orderbook.triggers",
    "orderbook.book",
    "margin.accounts",
    "margin.markets",
    "margin.health",
    "margin.funding",
    "margin.clearing",
    "margin.liquidation",
    "margin.makers",
    "margin.liquidator",
    "appchaind.chain.events",
    "appchaind.abci",
    "appchaind.exchange.commitment",
    "appchaind.exchange.state",
    "appchaind.exchange.storage",
    "appchaind.exchange.envelope",
    "appchaind.exchange.prices",
    "appchaind.exchange.funding",
    "appchaind.exchange.orders",
    "appchaind.exchange.cancels",
    "appchaind.exchange.order_upkeep",
    "appchaind.exchange.transfers",
    "appchaind.exchange.builders",
    "appchaind.exchange.inclusion",
    "appchaind.exchange.app",
)

#: Project modules that compiled code imports without compiling them. mypyc copies their
#: ``Final`` constants into the compiled code, so an edit to one of them also makes the
#: compiled build stale. (tests/test_native.py checks that this list is complete.)
BUILD_INPUTS: tuple[str, ...] = (
    "appchaind.chain.codec",
    "appchaind.chain.codes",
    "appchaind.consensus.validators",
    "appchaind.chain.crypto",
    "appchaind.store",
    "appchaind.chain.types",
    "appchaind.chain.units",
    "appchaind.exchange.oracle",
    "appchaind.exchange.statistics",
    "appchaind.exchange.txs",
    "appchaind.exchange.staking",
    "appchaind.exchange.staking_state",
    "appchaind.exchange.accountability",
    "appchaind.exchange.rewards",
    "config.genesis",
    "config.node_config",
    "margin.statistics",
    "orderbook.types",
)

#: Where setup.py records the source digests of the build, next to this file.
BUILD_RECORD = Path(__file__).with_name("_native_build.json")
PURE_ENV = "APPCHAIND_PURE_PYTHON"

_ROOT = Path(__file__).resolve().parent.parent
_log = logging.getLogger("appchaind.native")
_decision: tuple[bool, str] | None = None


def source_path(module: str) -> Path:
    """The .py file of a project module (dotted name)."""
    return _ROOT.joinpath(*module.split(".")).with_suffix(".py")


def source_digest(module: str) -> str:
    """SHA-256 (hex) of a module's source file."""
    return hashlib.sha256(source_path(module).read_bytes()).hexdigest()


def _compiled_file(module: str) -> Path | None:
    base = source_path(module).with_suffix("")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = base.with_name(base.name + suffix)
        if candidate.exists():
            return candidate
    return None


def build_is_current() -> bool:
    """True if every module of :data:`NATIVE_MODULES` is compiled from its current source
    (whatever ``APPCHAIND_PURE_PYTHON`` says): the Makefile's "rebuild needed?" test."""
    return _build_problem() is None


def _build_problem() -> str | None:
    if not all(_compiled_file(m) for m in NATIVE_MODULES):
        return "pure Python (not compiled: no C compiler or mypyc at install time)"
    try:
        recorded = json.loads(BUILD_RECORD.read_text())
    except (OSError, ValueError):
        return f"pure Python (no valid build record {BUILD_RECORD.name})"
    stale = [m for m in NATIVE_MODULES + BUILD_INPUTS if recorded.get(m) != source_digest(m)]
    if stale:
        return (
            f"pure Python (compiled build is stale: {', '.join(stale)} changed since it was "
            "compiled; run `make` or `pip install -e .` to rebuild)"
        )
    return None


def _decide() -> tuple[bool, str]:
    """(use the compiled build?, why)."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return False, f"pure Python ({PURE_ENV} is set)"
    problem = _build_problem()
    if problem is not None:
        return False, problem
    return True, f"compiled with mypyc ({len(NATIVE_MODULES)} modules)"


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Loads :data:`NATIVE_MODULES` from their .py files, skipping the extension modules."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in NATIVE_MODULES:
            return None
        file = str(source_path(fullname))
        return importlib.util.spec_from_file_location(
            fullname, file, loader=importlib.machinery.SourceFileLoader(fullname, file)
        )


def install() -> None:
    """Decide once per process which build runs; if it is the source, make every module of
    :data:`NATIVE_MODULES` load from its .py file. Call before importing any of them."""
    global _decision
    if _decision is not None:
        return
    _decision = _decide()
    compiled, why = _decision
    if not compiled:
        if "stale" in why:
            _log.warning("%s", why)
        sys.meta_path.insert(0, _SourceFinder())


install()  # importing this module selects the build (the packages import it first)


def status() -> tuple[bool, str]:
    """(whether the compiled build runs, a one-line description for logs and --version)."""
    install()
    assert _decision is not None
    return _decision
