"""The node's wall clock: the time its votes carry (the consensus machine's ``now``).

Block times are the weighted median of the last commit's vote times (BFT time), so one
validator's wrong clock moves no block's time. The soak's clock-skew fault imitates such
a validator: ``APPCHAIND_TEST_CLOCK_OFFSET_MS`` (read when a node starts) adds that many
milliseconds, possibly negative, to every reading. Nothing else sets it.
"""

from __future__ import annotations

import os
import time

from appchaind.errors import StartupError

__all__ = ["OFFSET_ENV", "configure_from_environment", "now_ms"]

OFFSET_ENV = "APPCHAIND_TEST_CLOCK_OFFSET_MS"

_offset_ms = 0


def configure_from_environment() -> int:
    """Reads :data:`OFFSET_ENV` (unset or empty: 0) and returns the offset now in force."""
    global _offset_ms  # noqa: PLW0603 - one wall clock per process
    text = os.environ.get(OFFSET_ENV, "").strip() or "0"
    try:
        _offset_ms = int(text)
    except ValueError:
        raise StartupError(
            f"{OFFSET_ENV}={text!r} is not a whole number of milliseconds; unset it (it "
            "exists for the soak's clock-skew faults)"
        ) from None
    return _offset_ms


def now_ms() -> int:
    """Milliseconds since the epoch, by this machine's clock (plus the test offset)."""
    return int(time.time() * 1000) + _offset_ms
