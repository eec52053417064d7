"""When the node lets CPython's cyclic garbage collector run its full collections.

A full (generation 2) collection traverses every tracked object: with a large order book
that is hundreds of milliseconds (about 650 ms with a million resting orders here), during
which the node's trio loop stands still. Left to itself, CPython starts one whenever the
objects promoted since the last one exceed a quarter of the old ones, so a growing or
churning book triggers them again and again (8 full collections of up to 240 ms in 40
blocks of 5,000 orders, as the book grew to 59,000 orders, in a study here), at whatever
consensus step is running, and a validator can miss a round's timeout. With this schedule
the same run had none, and the per-commit young collection took under a millisecond.

The exchange's blocks create no reference cycles (refcounting frees what a block drops;
tests guard this), so the node's state does not need the cyclic collector. The schedule:

* after the node has loaded its state: a full collection, then ``gc.freeze()``;
* after every commit: a young collection (generations 0 and 1: whatever cyclic garbage the
  block and the networking around it just made) and then
  ``gc.freeze()``, so everything that survived moves to the permanent generation that
  automatic collections skip;
* every ``full_every`` commits, right after the commit (the node's slack before the next
  height's timeouts): ``gc.unfreeze()`` and a full collection, which frees cyclic garbage
  among objects that were frozen while alive (a dropped peer connection, for one), then
  freeze again. Its pause is reported, so operators see what it costs.

Frozen objects are still freed by reference counting as usual; only cycles among them
wait for the periodic full collection.
"""

from __future__ import annotations

import gc
import time

__all__ = ["GcSchedule", "FULL_EVERY_COMMITS"]

#: Commits between full collections (about 10 minutes at 150 ms blocks).
FULL_EVERY_COMMITS = 4_000


class GcSchedule:
    """Apply the schedule above: ``start()`` once the state is loaded (returns the seconds
    the full collection took), then ``after_commit()`` after each commit (returns the
    seconds its collection took and whether it was a full one)."""

    def __init__(self, full_every: int = FULL_EVERY_COMMITS) -> None:
        if full_every < 1:
            raise ValueError(f"full_every must be at least 1, not {full_every}")
        self.full_every = full_every
        self.commits = 0
        #: Seconds the last full collection took (0.0 before the first).
        self.last_full_seconds = 0.0

    def start(self) -> float:
        return self._full()

    def after_commit(self) -> tuple[float, bool]:
        self.commits += 1
        if self.commits % self.full_every == 0:
            return self._full(), True
        started = time.perf_counter()
        gc.collect(1)
        gc.freeze()
        return time.perf_counter() - started, False

    def _full(self) -> float:
        started = time.perf_counter()
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.last_full_seconds = time.perf_counter() - started
        return self.last_full_seconds

    @staticmethod
    def stop() -> None:
        """Hand everything back to the ordinary collector (the node is stopping)."""
        gc.unfreeze()
