"""Staking, builder and account records as stored (appchaind/exchange/staking_state.py,
builders.py, storage.py): a restart reads back every field, a validator's last commission
rise and a builder's winning bids among them, and sums what the records add up to (the
stake of every validator and unbonding entry, the slashes of every signing record); a
delegation of 1 share and an unbonding entry of 1 micro-unit are records like any. A
record that is not one (a negative number, no shares or nothing unbonding, a consensus
key that is not 32 bytes, too few fields, a key of the wrong length) stops the load with
a StateError naming the record and what is wrong; so does a commit record that does not
decode, with the decoder's error.
"""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from appchaind.chain.crypto import merkle_root
from appchaind.exchange import ExchangeApp, StateError
from appchaind.exchange.commitment import (
    ACCOUNT_PREFIX,
    BUILDER_PREFIX,
    DELEGATION_PREFIX,
    GLOBAL_KEY,
    META_KEY,
    SIGNING_PREFIX,
    UNBONDING_PREFIX,
    VALIDATOR_PREFIX,
)
from appchaind.exchange.txs import BuilderBid, Delegate, EditValidator, RegisterBuilder, Undelegate
from appchaind.store import Store, WriteBatch
from tests.exchange.support import address, key
from tests.exchange.test_accountability import ALICE
from tests.exchange.test_staking import UNIT, _app, _create

QUOTE = 1_000_000


def test_a_restart_reads_back_a_commission_rise_and_a_builders_winning_bids(
    tmp_path: Path,
) -> None:
    app, d = _app({"commission_rise_blocks": 100, "min_builder_bond": "100"})
    d.block([
        _create(d, "alice", 20 * UNIT, commission_ppm=50_000),
        d.tx("bob", RegisterBuilder("b", 100 * QUOTE)),
    ])  # fmt: skip
    raised_at = d.height
    d.block([d.tx("alice", EditValidator("alice", "", 60_000))])
    proposer = key("validator").address
    for value in (3 * QUOTE, 5 * QUOTE):
        bid = d.tx("bob", BuilderBid(d.height, 0, proposer, value, merkle_root([])))
        assert [r.code for r in d.block([bid], proposer=proposer).tx_results] == [0]
    store = Store(tmp_path / "data")
    app.store = store
    app.commit()
    restarted = ExchangeApp(app.genesis, store)
    assert restarted.staking.validators[address("alice")].commission_raised_at == raised_at
    builder = restarted.builders[address("bob")]
    assert (builder.bids_won, builder.paid, builder.bond) == (2, 8 * QUOTE, 92 * QUOTE)
    store.close()


def test_a_restart_sums_the_stake_and_the_slashes_of_every_record(tmp_path: Path) -> None:
    """Alice's and carol's validators, both slashed; bob's two unbonding entries (one of
    1 micro-unit) and dave's delegation of 1 share."""
    app, d = _app({"slash_double_sign_ppm": 100_000})
    d.block([_create(d, "alice", 20 * UNIT), _create(d, "carol", 20 * UNIT)])
    d.block(
        [
            d.tx("bob", Delegate(address("alice"), 10 * UNIT)),
            d.tx("dave", Delegate(address("carol"), 1)),
        ]
    )
    assert app.staking.delegations[address("carol") + address("dave")] == 1
    d.block([d.tx("bob", Undelegate(address("alice"), 1))])
    d.block([d.tx("bob", Undelegate(address("alice"), 2 * UNIT))])
    d.block([], evidence=[(ALICE, app.height), (key("carol-consensus").address, app.height)])
    assert len(app.staking.unbonding) == 2
    store = Store(tmp_path / "data")
    app.store = store
    app.commit()
    restarted = ExchangeApp(app.genesis, store)
    assert restarted.clearing.staked == app.clearing.staked
    # 10% of alice's 27.999999 quote (2.8, rounded up), of bob's entries (1 micro-unit,
    # rounded up, and 0.2), of carol's 20
    slashed = 2_800_000 + 1 + 200_000 + 2_000_000
    assert restarted.staking.slashed_total == app.staking.slashed_total == slashed
    assert restarted.staking.unbonding == app.staking.unbonding
    assert restarted.staking.delegations == app.staking.delegations
    assert restarted.clearing.conservation_gap() == 0
    store.close()


def _validator_record(public_key: bytes, **numbers: int) -> list[object]:
    fields = {"commission": 0, "tokens": 10 * UNIT, "shares": 10 * UNIT, "power": 10}
    fields.update(numbers)
    return [
        public_key, "v0", "", fields["commission"], fields["tokens"], fields["shares"],
        fields["power"], b"\x00", 0, 0,
    ]  # fmt: skip


GENESIS_KEY = key("validator").public_key


@pytest.mark.parametrize(
    ("stored_key", "record", "problem"),
    [
        (
            VALIDATOR_PREFIX + address("validator"),
            _validator_record(GENESIS_KEY, tokens=-1),
            "not a validator record: commission, stake, power and rewards are integers",
        ),
        (
            VALIDATOR_PREFIX + address("validator"),
            _validator_record(GENESIS_KEY[:31]),
            "not a validator record: the consensus key is 32 bytes",
        ),
        (
            VALIDATOR_PREFIX + address("validator"),
            _validator_record(GENESIS_KEY)[:9],
            "not a validator record: not enough values to unpack",
        ),
        (
            BUILDER_PREFIX + address("bob"),
            [GENESIS_KEY, "b", -1, [], 0, 0],
            f"stored builder {address('bob').hex()} is unreadable \\(not a builder record: bond, "
            "bids won and paid must be integers",
        ),
        (
            BUILDER_PREFIX + address("bob"),
            [GENESIS_KEY, "b", 1],
            "not a builder record: not enough values to unpack",
        ),
        (
            DELEGATION_PREFIX + address("validator") + address("validator"),
            [0, b"\x00"],
            "not a delegation record",
        ),
        (
            DELEGATION_PREFIX + address("validator") + address("bob")[:19],
            [5, b"\x00"],
            "not a delegation record",
        ),
        (
            UNBONDING_PREFIX + bytes(7) + b"\x09" + address("validator") + address("bob"),
            [0],
            "not an unbonding record",
        ),
        (
            UNBONDING_PREFIX + bytes(7) + b"\x09" + address("validator") + address("bob")[:19],
            [5],
            "not an unbonding record",
        ),
        (
            ACCOUNT_PREFIX + address("alice"),
            [5, [], [1]],
            f"stored account {address('alice').hex()} is unreadable \\(recent nonces: not bytes\\)",
        ),
        (GLOBAL_KEY, [1, 2], "stored record b's/g' is unreadable \\(ValueError: "),
        (META_KEY, b"\xc1", "stored record b's/~meta' is unreadable \\(FormatError"),
        (
            SIGNING_PREFIX + address("validator")[:19],
            [0, 0, 0, bytes(125)],
            "not a signing info record",
        ),
    ],
)
def test_a_damaged_record_stops_the_load_and_says_why(
    tmp_path: Path, stored_key: bytes, record: list[object] | bytes, problem: str
) -> None:
    app, _ = _app()
    store = Store(tmp_path / "data")
    batch = WriteBatch()
    ExchangeApp(app.genesis, store).commit(batch)
    value = record if isinstance(record, bytes) else msgpack.packb(record, use_bin_type=True)
    batch.put(stored_key, value)
    store.write(batch)
    with pytest.raises(StateError, match=problem):
        ExchangeApp(app.genesis, store)
    store.close()
