"""A validator's signing info as stored (appchaind/exchange/staking_state.py
``SigningInfo``): ``[jailed_until, tombstoned, slashed, bitmap]``, the bitmap
``(downtime_window + 7) // 8`` bytes, little-endian, bit ``height % downtime_window`` for
a miss. A restart reads back exactly what was written, at the default window of 1000
blocks (125 bytes) too; a record that is not one (a negative amount, ``tombstoned``
other than 0 or 1, a bitmap of another length) stops the load with a StateError naming
the record and what is wrong with it. A signing info back to all 0 (an unjail with
nothing slashed) has its record deleted: a restart does not bring the old jail back.
"""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from appchaind.chain.codes import Code
from appchaind.exchange import ExchangeApp, StateError
from appchaind.exchange.commitment import SIGNING_PREFIX
from appchaind.exchange.txs import Unjail
from appchaind.store import Store, WriteBatch
from tests.exchange.support import address
from tests.exchange.test_accountability import DOWNTIME, _alice_validator, _signed
from tests.exchange.test_staking import UNIT, _app, _create


def test_a_restart_reads_back_the_missed_blocks_at_the_default_window(tmp_path: Path) -> None:
    app, d = _app()
    assert app.params.downtime_window == 1000
    d.block([_create(d, "alice", 20 * UNIT)])
    for signed in (False, True, False):
        d.block([], signers=_signed(alice=signed))
    info = app.staking.signing[address("alice")]
    assert info.missed == (1 << 2) | (1 << 4) and info.missed_count == 2
    store = Store(tmp_path / "data")
    app.store = store
    app.commit()
    restarted = ExchangeApp(app.genesis, store).staking.signing[address("alice")]
    assert (restarted.missed, restarted.missed_count) == (info.missed, 2)
    store.close()


@pytest.mark.parametrize(
    ("window", "record", "problem"),
    [
        (1000, [0, 0, -1, bytes(125)], "jailed_until and slashed are integers"),
        (1000, [-5, 0, 0, bytes(125)], "jailed_until and slashed are integers"),
        (1000, [0, 2, 0, bytes(125)], "tombstoned is 0 or 1"),
        (1000, [0, 0, 0, bytes(124)], "the bitmap is one bit per window block"),
        (1000, [0, 0, 0], "not enough values to unpack"),
        (4, [0, 0, 0, b"\x10"], "a bit beyond the window is set"),
    ],
)
def test_a_damaged_signing_record_stops_the_load_and_says_why(
    tmp_path: Path, window: int, record: list[object], problem: str
) -> None:
    app, _ = _app({"downtime_window": window, "downtime_max_missed": window // 2})
    store = Store(tmp_path / "data")
    batch = WriteBatch()
    ExchangeApp(app.genesis, store).commit(batch)
    batch.put(SIGNING_PREFIX + address("validator"), msgpack.packb(record, use_bin_type=True))
    store.write(batch)
    with pytest.raises(StateError, match=f"not a signing info record: {problem}"):
        ExchangeApp(app.genesis, store)
    store.close()


def test_a_record_back_to_nothing_is_deleted_and_a_restart_does_not_jail_again(
    tmp_path: Path,
) -> None:
    """Alice's validator, jailed with nothing slashed (``slash_downtime_ppm`` 0), unjailed
    after its term: its signing info is all 0 again, so its stored record is deleted, and
    a restart finds it not jailed (were the record kept, the restart would jail it again
    until the height of its old term)."""
    app, d = _alice_validator({**DOWNTIME, "slash_downtime_ppm": 0})
    for _ in range(3):
        d.block([], signers=_signed(alice=False))
    until = app.staking.signing[address("alice")].jailed_until
    while app.height + 1 < until:
        d.block([])
    assert d.block([d.tx("alice", Unjail())]).tx_results[0].code == Code.OK
    assert address("alice") not in app.staking.signing
    store = Store(tmp_path / "data")
    app.store = store
    app.commit()
    restarted = ExchangeApp(app.genesis, store)
    assert not restarted.staking.is_jailed(address("alice"))
    assert store.get(SIGNING_PREFIX + address("alice")) is None
    store.close()
