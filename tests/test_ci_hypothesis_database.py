"""The trap of issue 19: CI starts without a Hypothesis example database. With CI=true
(tests/conftest.py's IN_CI) every exploring profile has ``database=None``, so a CI run
neither replays examples an earlier run left in ``.hypothesis/`` nor depends on them.
(Hypothesis's own "ci" profile, the parent of profiles registered without one once it
sees CI set, has no database either; this checks the profile the suite runs with.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _database_in_ci(tmp_path: Path, profile: str) -> str:
    """The example database of ``profile`` as tests/conftest.py loads it with CI=true, in a
    fresh interpreter (which reads the environment as CI sets it) run in ``tmp_path``."""
    env = os.environ | {"PYTHONPATH": str(ROOT), "CI": "true", "HYPOTHESIS_PROFILE": profile}
    code = "import tests.conftest; from hypothesis import settings; print(settings().database)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    return out.stdout.strip()


@pytest.mark.parametrize("profile", ["default", "fuzz"])
def test_ci_starts_without_a_hypothesis_database(tmp_path: Path, profile: str) -> None:
    assert _database_in_ci(tmp_path, profile) == "None"
