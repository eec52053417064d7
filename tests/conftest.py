"""Test-suite settings shared by every directory.

Hypothesis profiles: "default" keeps `make test` bounded; `make fuzz` selects
"fuzz" (HYPOTHESIS_PROFILE=fuzz, FUZZ_EXAMPLES=N) for a long run. No profile has
a deadline: the suite makes no timed assertions.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
