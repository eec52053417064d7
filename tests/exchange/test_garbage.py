"""Executing blocks creates no reference cycles: everything a block leaves behind is freed
by reference counting, so the cyclic garbage collector never has garbage to find in the
replicated state. (A full collection with a million resting orders takes over half a
second; this property is what would let a node freeze its state out of the collector's
view, see the issue notes.)"""

from __future__ import annotations

import gc

from appchaind.exchange import ExchangeApp
from tests.exchange.test_properties import _genesis, _run
from tests.test_native import seeded_blocks


def test_blocks_leave_no_garbage_cycles() -> None:
    app = ExchangeApp(_genesis())
    blocks = seeded_blocks(3, 40)
    gc.collect()
    gc.disable()  # finalize_block leaves the collector as it found it
    try:
        found = []
        for block in blocks:
            _run(app, block)
            found.append(gc.collect())
    finally:
        gc.enable()
    assert found == [0] * len(blocks)
