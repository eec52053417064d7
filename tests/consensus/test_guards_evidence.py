"""BFT time at its edge, found unguarded by ``make mutate``: a commit with no present slot
(no precommit to take a time from) has time 0, the function's stated fallback, not an error.
"""

from __future__ import annotations

from appchaind.chain.types import COMMIT_ABSENT, Commit, CommitSig
from appchaind.consensus.evidence import weighted_median_time

from .harness import Chain

B = b"\x0b" * 32


def test_the_bft_time_of_a_commit_without_present_slots_is_zero() -> None:
    validators = Chain().state.validators
    absent = tuple(CommitSig(COMMIT_ABSENT, a, 0, b"", b"", b"") for a in validators.addresses)
    assert weighted_median_time(Commit(1, 0, B, absent), validators) == 0
