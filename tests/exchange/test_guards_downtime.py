"""Downtime, slot by slot (appchaind/exchange/accountability.py ``record_signatures``,
``_jail``, ``forget_missed``): every slot of a block's last commit is judged on its own,
whatever the slots before it were (an unknown validator, a signer, a validator whose miss
a window ago is still counted, one tombstoned by the block's evidence); a signature over
a bit set a window ago takes one miss off the count; a validator of power 1 is tracked
like any; a jailed validator leaves the set even when ``slash_downtime_ppm`` is 0
(nothing slashed); a validator that leaves the set has its misses forgotten, its record
kept if it holds a slash; an Unjail takes a self-bond of exactly ``min_self_bond``.

Alice's validator (power 30) and the genesis validator (power 10); windows of 8 blocks
with at most 5 missed, unless said otherwise.
"""

from __future__ import annotations

from appchaind.chain.codes import Code
from appchaind.chain.types import Validator
from appchaind.exchange.txs import Undelegate, Unjail
from tests.exchange.support import address
from tests.exchange.test_accountability import (
    ALICE,
    ALICE_KEY,
    DOWNTIME,
    GENESIS_KEY,
    _alice_validator,
    _signed,
)
from tests.exchange.test_staking import UNIT, _app, _create, _one

GENESIS = GENESIS_KEY.address
WINDOW_8 = {**DOWNTIME, "downtime_window": 8, "downtime_max_missed": 5}


def test_every_slot_counts_whatever_the_slots_before_it() -> None:
    app, d = _alice_validator(WINDOW_8)
    d.block([], signers=[(b"\x09" * 20, False), (GENESIS, True), (ALICE, False)])
    assert app.staking.signing[address("alice")].missed_count == 1
    # Alice's miss at this bit is counted already (it stays counted); the slot after hers
    # is still judged.
    for _ in range(7):
        d.block([], signers=_signed(alice=True))
    d.block([], signers=[(ALICE, False), (GENESIS, False)])
    assert app.staking.signing[address("alice")].missed_count == 1
    assert app.staking.signing[address("validator")].missed_count == 1


def test_a_signature_over_a_miss_a_window_ago_takes_one_off_the_count() -> None:
    app, d = _alice_validator(WINDOW_8)
    first = d.height
    for signed in (False, False, False, True, True, True, True, True, True):
        d.block([], signers=_signed(alice=signed))
    # The signature at first + 8 clears the bit of first's miss: two of the window's
    # eight blocks are misses now.
    info = app.staking.signing[address("alice")]
    assert info.missed == (1 << ((first + 1) % 8)) | (1 << ((first + 2) % 8))
    assert info.missed_count == 2


def test_a_validator_of_power_one_is_tracked() -> None:
    app, d = _app(DOWNTIME)
    assert _one(d.block([_create(d, "alice", UNIT)]))[0] == Code.OK
    assert app.staking.validators[address("alice")].power == 1
    d.block([], signers=_signed(alice=False))
    assert app.staking.signing[address("alice")].missed_count == 1


def test_a_jailed_validator_leaves_the_set_with_nothing_slashed() -> None:
    app, d = _alice_validator({**DOWNTIME, "slash_downtime_ppm": 0})
    for _ in range(3):
        result = d.block([], signers=_signed(alice=False))
    assert result.validator_updates == (Validator(ALICE_KEY.public_key, 0),)
    assert app.staking.validators[address("alice")].tokens == 30 * UNIT


def test_a_validator_leaving_the_set_has_its_misses_forgotten() -> None:
    """Alice's validator, jailed once (so its record holds a slash), back in the set, misses
    a block, then its operator undelegates the whole self-bond: it has no power, and its
    record keeps the slash with no miss."""
    app, d = _alice_validator(DOWNTIME)
    for _ in range(3):
        d.block([], signers=_signed(alice=False))
    info = app.staking.signing[address("alice")]
    while app.height + 1 < info.jailed_until:
        d.block([])
    assert _one(d.block([d.tx("alice", Unjail())]))[0] == Code.OK
    d.block([], signers=_signed(alice=False))
    assert info.missed_count == 1
    self_bond = 20 * UNIT * 99 // 100
    assert _one(d.block([d.tx("alice", Undelegate(address("alice"), self_bond))]))[0] == Code.OK
    assert app.staking.validators[address("alice")].power == 0
    assert (info.missed, info.missed_count, info.slashed) == (0, 0, 30 * UNIT // 100)


def test_the_slots_after_a_validator_tombstoned_in_the_same_block_still_count() -> None:
    """The evidence step runs first: alice's validator is tombstoned (jailed for good) but
    keeps its power until the end of the block; its slot is skipped, the next one is
    judged."""
    app, d = _alice_validator(WINDOW_8)
    d.block([], evidence=[(ALICE, app.height)], signers=[(ALICE, False), (GENESIS, False)])
    assert app.staking.signing[address("alice")].tombstoned
    assert app.staking.signing[address("validator")].missed_count == 1


def test_an_unjail_takes_a_self_bond_of_exactly_the_minimum() -> None:
    """Alice's validator, its self-bond exactly ``min_self_bond`` (10 quote, nothing
    slashed for its downtime), is unjailed once its term is over and rejoins the set."""
    app, d = _app({**DOWNTIME, "min_self_bond": "10", "slash_downtime_ppm": 0})
    assert _one(d.block([_create(d, "alice", 10 * UNIT)]))[0] == Code.OK
    for _ in range(3):
        d.block([], signers=_signed(alice=False))
    until = app.staking.signing[address("alice")].jailed_until
    while app.height + 1 < until:
        d.block([])
    result = d.block([d.tx("alice", Unjail())])
    assert _one(result) == (Code.OK, "")
    assert result.validator_updates == (Validator(ALICE_KEY.public_key, 10),)
