"""Test-suite settings shared by every directory.

Hypothesis profiles: "default" keeps `make test` bounded; `make fuzz` selects
"fuzz" (HYPOTHESIS_PROFILE=fuzz, FUZZ_EXAMPLES=N) for a long run; `make mutate`
selects "mutate" (tools/mutate.py). No profile has a deadline: the suite makes no
timed assertions.

Every profile but "mutate" explores: each run draws new examples (derandomize=False
is explicit: Hypothesis's own "ci" profile, which it loads by itself when CI=true and
which a profile registered without a parent inherits from, is derandomized, so CI
would test the same examples on every run). Locally Hypothesis keeps the failing
examples it found in `.hypothesis/` and replays them first, which helps reproduce a
failure; in CI there is no example database at all, so a run neither replays old
examples nor depends on what an earlier run left behind, and a failure prints the
blob that reproduces it (@reproduce_failure).

"mutate" is derandomized by design: mutation testing gives each mutant one verdict
(killed or survived), and a verdict must come out the same when the mutant is rerun,
or a survivor could not be studied. It skips shrinking (a failing example kills the
mutant whatever its size) and keeps no database (an example that killed one mutant
must not be replayed against the next).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

#: True in CI (.ci/run runs with CI=true): tests that would skip fail instead.
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")
_explore: dict[str, object] = {"derandomize": False}
if IN_CI:
    _explore |= {"database": None, "print_blob": True}

settings.register_profile(
    "default",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    **_explore,
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    **_explore,
)
settings.register_profile(
    "mutate",
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


#: mutmut's record of its stats run (the time of each test), in the directory its workers
#: run the tests from.
_MUTMUT_STATS = Path("mutmut-stats.json")


#: Under mutmut, a test fails once it has run this many times its time in mutmut's stats
#: run, plus this many seconds.
MUTANT_TEST_LIMIT = (20.0, 5.0)
_durations: dict[str, float] = {}


class MutantTestTooLong(Exception):
    """A test ran far past its measured time under a mutant (an endless loop, most often)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under mutmut (tools/mutate.py), a mutant's tests run fastest first: mutmut stops at
    the first failure (-x), so a mutant is killed by its cheapest failing test instead of
    after whichever slow property test came first in its unordered set of tests. The
    verdict is the same (killed if any test fails, survived if none does); only the time
    changes. Tests whose time is not known yet keep their place, first."""
    if "MUTANT_UNDER_TEST" not in os.environ or not _MUTMUT_STATS.is_file():
        return
    try:
        durations = json.loads(_MUTMUT_STATS.read_text())["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return
    _durations.clear()
    _durations.update(durations)
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Under mutmut, a test that runs :data:`MUTANT_TEST_LIMIT` past its measured time
    fails (:class:`MutantTestTooLong`), so the mutant is killed by it. A mutant that loops
    forever hangs in the first test that reaches the loop, the fastest one: mutmut's own
    limit (the time of all the mutant's tests + 1 s, times 4) cost up to two minutes per
    such mutant of the consensus machine's rule loop; this costs seconds."""
    measured = _durations.get(item.nodeid)
    if measured is None or "MUTANT_UNDER_TEST" not in os.environ:
        yield
        return
    factor, floor = MUTANT_TEST_LIMIT
    limit = measured * factor + floor

    def stop(signum: int, frame: object) -> None:
        raise MutantTestTooLong(f"{item.nodeid} ran past {limit:.1f} s (measured {measured:.2f} s)")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
