"""The node's garbage-collection schedule: survivors are frozen after every commit (so the
automatic collector never traverses the state), young cyclic garbage is still collected at
once, and cycles among frozen objects are freed by the periodic full collection."""

from __future__ import annotations

import gc
import weakref

import pytest

from appchaind.node.gc_schedule import GcSchedule


class _Node:
    """Something that can sit in a reference cycle and be watched through a weakref."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture(autouse=True)
def _thaw():
    yield
    gc.unfreeze()  # leave the test process as it was


def test_commits_freeze_survivors_and_collect_young_cycles():
    schedule = GcSchedule(full_every=3)
    schedule.start()
    kept = _Node()
    young = _cycle()  # garbage already, but only the cyclic collector can free it
    assert any(o is kept for o in gc.get_objects())  # the collector would traverse it
    seconds, full = schedule.after_commit()
    assert young() is None and not full and seconds >= 0
    # frozen: automatic collections no longer traverse it (get_objects skips the frozen)
    assert not any(o is kept for o in gc.get_objects())
    assert gc.get_freeze_count() > 0


def test_cycles_among_frozen_objects_wait_for_the_full_collection():
    schedule = GcSchedule(full_every=3)
    schedule.start()
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    watched = weakref.ref(a)
    schedule.after_commit()  # 1: a and b are alive, so they are frozen
    del a, b  # now cyclic garbage inside the permanent generation
    schedule.after_commit()  # 2: a young collection does not look at frozen objects
    gc.collect()  # nor does an ordinary full collection
    assert watched() is not None
    seconds, full = schedule.after_commit()  # 3: the periodic full collection
    assert full and watched() is None and schedule.last_full_seconds == seconds


def test_full_every_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        GcSchedule(full_every=0)
