"""The fuzz targets (tools/fuzz) without atheris: the committed corpus and every crash input
ever found replayed, and a seeded run of mutated inputs per target.

A target's ``one_input`` raises only on a crash (tools/fuzz/harness.py), so each test
is: no input raises. A failure names the input and the command that replays it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.fuzz.harness import crash_signature, input_files
from tools.fuzz.mutator import mutations
from tools.fuzz.run import TARGET_MODULES, load_target

#: Mutated inputs per target in `make test` (a few seconds each at most; `make fuzz` is the
#: long search).
MUTATED_INPUTS = 2_000
MUTATOR_SEED = 16


def _fail(name: str, data: bytes, exc: Exception, tmp_path: Path) -> None:
    path = tmp_path / "crash-input"
    path.write_bytes(data)
    pytest.fail(
        f"{name}: {crash_signature(exc)}: {exc!r:.300}\n  input: {path}\n"
        f"  replay: .venv/bin/python -m tools.fuzz.run --replay {name} {path}",
        pytrace=True,
    )


@pytest.mark.parametrize("name", list(TARGET_MODULES))
def test_the_corpus_and_every_crash_found_replay_cleanly(name: str, tmp_path: Path) -> None:
    target = load_target(name)
    kept = input_files(target.corpus_dir) + input_files(target.regressions_dir)
    assert input_files(target.corpus_dir), f"no seed corpus for {name}: run --write-seeds"
    for path, data in [*kept, *((Path(n), d) for n, d in target.seeds().items())]:
        try:
            target.one_input(data)
        except Exception as exc:
            _fail(f"{name} ({path.name})", data, exc, tmp_path)


@pytest.mark.parametrize("name", list(TARGET_MODULES))
def test_mutated_inputs_raise_only_documented_errors(name: str, tmp_path: Path) -> None:
    target = load_target(name)
    start = [d for _, d in input_files(target.corpus_dir) + input_files(target.regressions_dir)]
    for data in mutations(start, MUTATED_INPUTS, seed=MUTATOR_SEED, tokens=target.tokens):
        try:
            target.one_input(data)
        except Exception as exc:
            _fail(name, data, exc, tmp_path)


def test_the_mutator_is_reproducible_and_changes_its_seeds() -> None:
    seeds = [b"GET /block/1 HTTP/1.1\r\n\r\n", b"\x92\x01\x02"]
    first = list(mutations(seeds, 300, seed=7, tokens=(b"%C2%B2",)))
    assert first == list(mutations(seeds, 300, seed=7, tokens=(b"%C2%B2",)))
    assert first[:2] == seeds and len(set(first)) > 200
    assert any(b"%C2%B2" in m for m in first)


def test_a_crash_is_told_apart_by_its_type_and_place() -> None:
    def fails() -> None:
        int("²")

    try:
        fails()
    except ValueError as exc:
        assert crash_signature(exc) == "ValueError at ?"
