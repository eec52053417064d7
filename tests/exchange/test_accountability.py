"""Accountability (issue 17): duplicate-vote evidence slashes a validator's stake (its
delegations' with it, and its unbonding entries still bonded at the infraction) into the
insurance fund and tombstones it; evidence of an unknown or tombstoned validator is
ignored; missing more than ``downtime_max_missed`` of the last ``downtime_window``
commits jails a validator (the boundary exactly), and Unjail returns it after its term;
quote conserved throughout; a restart restores the signing info."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appchaind.chain.codes import Code
from appchaind.chain.types import Validator
from appchaind.exchange import ExchangeApp
from appchaind.exchange.txs import Delegate, Undelegate, Unjail
from appchaind.store import Store
from config.node_config import ConfigError
from tests.exchange.support import Driver, address, genesis, key
from tests.exchange.test_staking import DELAY, UNIT, _app, _check_books, _create, _one

PPM = 1_000_000
GENESIS_VALIDATOR = address("validator")
ALICE_KEY = key("alice-consensus")
ALICE = ALICE_KEY.address  # alice's validator's consensus address
GENESIS_KEY = key("validator")


def _kinds(result: Any) -> list[str]:
    return [e.kind for e in result.events]


def _event(result: Any, kind: str) -> dict[str, Any]:
    (found,) = [e.attributes for e in result.events if e.kind == kind]
    return found


def _signed(*, alice: bool) -> list[tuple[bytes, bool]]:
    """A last commit of the two-validator set: the genesis validator signed, alice as told."""
    return [(ALICE, alice), (GENESIS_KEY.address, True)]


def _alice_validator(params: dict[str, Any] | None = None) -> tuple[ExchangeApp, Driver]:
    """Alice's validator (20 quote of self-bond, power 20) with bob's delegation of 10."""
    app, d = _app(params)
    assert _one(d.block([_create(d, "alice", 20 * UNIT)])) == (Code.OK, "")
    assert d.block([d.tx("bob", Delegate(address("alice"), 10 * UNIT))]).tx_results[0].code == 0
    assert app.staking.validators[address("alice")].power == 30
    return app, d


# ====================================================================== duplicate votes


def test_a_duplicate_vote_slashes_the_stake_and_tombstones_the_validator() -> None:
    app, d = _alice_validator({"slash_double_sign_ppm": 50_000})
    fund = app.clearing.insurance_fund
    genesis_before = app.staking.validators[GENESIS_VALIDATOR].tokens
    result = d.block([], evidence=[(ALICE, app.height)])
    validator = app.staking.validators[address("alice")]
    slashed = 30 * UNIT * 50_000 // PPM  # 1.5 quote
    assert validator.tokens == 30 * UNIT - slashed
    assert app.clearing.insurance_fund == fund + slashed
    assert app.staking.slashed_total == slashed
    # Shares are untouched: each delegation, the self-bond included, lost 5%.
    assert validator.value_of(app.staking.shares_of(address("alice"), address("bob"))) == (
        10 * UNIT * 95 // 100
    )
    assert validator.value_of(app.staking.self_shares(validator)) == 20 * UNIT * 95 // 100
    assert result.validator_updates == (Validator(ALICE_KEY.public_key, 0),)
    assert validator.power == 0
    assert _event(result, "validator_slashed") == {
        "validator": address("alice"),
        "reason": "duplicate_vote",
        "infraction_height": app.height - 1,
        "amount": slashed,
        "from_unbonding": 0,
        "stake": 30 * UNIT - slashed,
    }
    assert _event(result, "validator_tombstoned")["consensus_address"] == ALICE
    # The honest validator is untouched.
    assert app.staking.validators[GENESIS_VALIDATOR].tokens == genesis_before
    assert app.staking.validators[GENESIS_VALIDATOR].power == 10
    info = app.staking.signing[address("alice")]
    assert (info.tombstoned, info.slashed) == (True, slashed)
    _check_books(app)


def test_a_slash_rounds_up_against_the_offender() -> None:
    app, d = _app({"slash_double_sign_ppm": 333_333})
    d.block([_create(d, "alice", 20 * UNIT + 1)])
    d.block([], evidence=[(ALICE, app.height)])
    # 20_000_001 × 0.333333 = 6_666_660.33... -> 6_666_661
    assert app.staking.validators[address("alice")].tokens == 20 * UNIT + 1 - 6_666_661
    _check_books(app)


def test_unbonding_entries_bonded_at_the_infraction_are_slashed_too() -> None:
    """An entry undelegated at or after the infraction's height is slashed; one
    undelegated before it is not."""
    app, d = _alice_validator({"slash_double_sign_ppm": 100_000})
    before = d.block([d.tx("bob", Undelegate(address("alice"), 2 * UNIT))])  # height 3
    infraction = d.block([d.tx("bob", Undelegate(address("alice"), 4 * UNIT))])  # height 4
    assert (before.height, infraction.height) == (3, 4)
    fund = app.clearing.insurance_fund
    result = d.block([], evidence=[(ALICE, infraction.height)])  # height 5
    assert app.staking.unbonding_of(address("bob")) == [
        (3 + DELAY, address("alice"), 2 * UNIT),
        (4 + DELAY, address("alice"), 4 * UNIT - 4 * UNIT // 10),
    ]
    bonded = 24 * UNIT // 10
    assert _event(result, "validator_slashed")["from_unbonding"] == 4 * UNIT // 10
    assert app.clearing.insurance_fund == fund + bonded + 4 * UNIT // 10
    _check_books(app)
    # The slashed entry releases what is left of it.
    balance = app.account(address("bob")).balance  # type: ignore[union-attr]
    while app.height < 4 + DELAY:
        d.block([])
    assert app.account(address("bob")).balance == balance + 2 * UNIT + 36 * UNIT // 10  # type: ignore[union-attr]
    assert app.staking.unbonding == {}
    _check_books(app)


def test_evidence_of_an_unknown_or_tombstoned_validator_is_ignored() -> None:
    app, d = _alice_validator()
    unknown = key("nobody").address
    result = d.block([], evidence=[(unknown, 1), (ALICE, 2), (ALICE, 1)])
    ignored = [e.attributes for e in result.events if e.kind == "evidence_ignored"]
    assert ignored == [
        {"consensus_address": unknown, "infraction_height": 1, "reason": "unknown validator"},
        {"consensus_address": ALICE, "infraction_height": 1, "reason": "tombstoned"},
    ]
    assert _kinds(result).count("validator_slashed") == 1
    stake, fund = app.staking.validators[address("alice")].tokens, app.clearing.insurance_fund
    again = d.block([], evidence=[(ALICE, 3)])
    assert _kinds(again) == ["evidence_ignored"]
    assert app.staking.validators[address("alice")].tokens == stake
    assert app.clearing.insurance_fund == fund
    _check_books(app)


def test_a_tombstoned_validator_can_never_rejoin() -> None:
    app, d = _alice_validator()
    d.block([], evidence=[(ALICE, 1)])
    while app.height < 1 + 10 * DELAY:
        d.block([])
    result = d.block(
        [
            d.tx("alice", Unjail()),
            d.tx("carol", Delegate(address("alice"), UNIT)),
            d.tx("alice", Delegate(address("alice"), UNIT)),
            _create(d, "dave", 10 * UNIT, consensus=ALICE_KEY),
        ]
    )
    assert [(r.code, r.log) for r in result.tx_results][:3] == [
        (
            Code.VALIDATOR_TOMBSTONED,
            "the validator was tombstoned for duplicate votes: it can never rejoin the set",
        ),
        (
            Code.VALIDATOR_TOMBSTONED,
            "the validator was tombstoned for duplicate votes and can never rejoin the set",
        ),
        (
            Code.VALIDATOR_TOMBSTONED,
            "the validator was tombstoned for duplicate votes and can never rejoin the set",
        ),
    ]
    assert result.tx_results[3].code == Code.VALIDATOR_EXISTS
    assert result.validator_updates == ()
    # Its delegators can still take what is left of their stake out.
    left = app.staking.validators[address("alice")]
    value = left.value_of(app.staking.shares_of(address("alice"), address("bob")))
    out = d.block([d.tx("bob", Undelegate(address("alice"), value))])
    assert _one(out) == (Code.OK, "")
    _check_books(app)


# ====================================================================== downtime

DOWNTIME = {
    "downtime_window": 4,
    "downtime_max_missed": 2,
    "downtime_jail_blocks": 3,
    "slash_downtime_ppm": 10_000,
}


def test_exactly_the_maximum_missed_is_not_jailed_and_one_more_is() -> None:
    app, d = _alice_validator(DOWNTIME)
    for _ in range(2):
        result = d.block([], signers=_signed(alice=False))
        assert result.validator_updates == ()
    info = app.staking.signing[address("alice")]
    assert (info.missed_count, info.jailed_until) == (2, 0)
    assert app.statistics().staking.missed_blocks == ((address("alice"), 2),)
    result = d.block([], signers=_signed(alice=False))
    jailed_at = result.height
    assert result.validator_updates == (Validator(ALICE_KEY.public_key, 0),)
    assert _event(result, "validator_jailed") == {
        "validator": address("alice"),
        "consensus_address": ALICE,
        "missed_blocks": 3,
        "window": 4,
        "jailed_until": jailed_at + 3,
    }
    slashed = 30 * UNIT // 100
    assert _event(result, "validator_slashed")["reason"] == "downtime"
    assert app.staking.validators[address("alice")].tokens == 30 * UNIT - slashed
    assert (info.jailed_until, info.missed_count, info.slashed) == (jailed_at + 3, 0, slashed)
    stats = app.statistics().staking
    assert (stats.jailed, stats.tombstoned, stats.slashed_total) == (1, 0, slashed)
    # Still in the consensus set for two heights, missing: not counted while jailed.
    for _ in range(2):
        result = d.block([], signers=_signed(alice=False))
        assert "validator_jailed" not in _kinds(result)
    assert info.missed_count == 0
    _check_books(app)


def test_the_window_slides_missed_blocks_older_than_it_stop_counting() -> None:
    app, d = _alice_validator(DOWNTIME)
    pattern = [False, False, True, True, False, False]  # a window of 4, at most 2 missed
    for signed in pattern:
        result = d.block([], signers=_signed(alice=signed))
        assert "validator_jailed" not in _kinds(result)
    assert app.staking.signing[address("alice")].missed_count == 2
    # The next miss replaces a signed block of the window: three of four missed.
    result = d.block([], signers=_signed(alice=False))
    assert "validator_jailed" in _kinds(result)


def test_signing_again_clears_the_record_of_a_validator() -> None:
    app, d = _alice_validator(DOWNTIME)
    d.block([], signers=_signed(alice=False))
    assert address("alice") in app.staking.signing
    for _ in range(4):
        d.block([], signers=_signed(alice=True))
    # A validator with nothing to its name has no signing record in the state.
    assert address("alice") not in app.staking.signing


def test_unjail_before_and_after_the_jail_term() -> None:
    app, d = _alice_validator(DOWNTIME)
    for _ in range(3):
        result = d.block([], signers=_signed(alice=False))
    until = result.height + 3
    others = d.block([d.tx("bob", Unjail()), d.tx("validator", Unjail())])
    assert [r.code for r in others.tx_results] == [Code.UNKNOWN_VALIDATOR, Code.UNKNOWN_ACCOUNT]
    early = d.block([d.tx("alice", Unjail())])
    assert _one(early) == (
        Code.STILL_JAILED,
        f"the validator is jailed until height {until} (this is {early.height})",
    )
    assert early.validator_updates == ()
    while app.height + 1 < until:
        d.block([])
    result = d.block([d.tx("alice", Unjail())])
    assert result.height == until
    assert _one(result) == (Code.OK, "")
    stake = 30 * UNIT - 30 * UNIT // 100
    assert result.validator_updates == (Validator(ALICE_KEY.public_key, stake // UNIT),)
    assert address("alice") in app.staking.signing  # it keeps what it was slashed
    assert not app.staking.signing[address("alice")].jailed
    again = d.block([d.tx("alice", Unjail())])
    assert _one(again) == (Code.NOT_JAILED, "the validator is not jailed")
    _check_books(app)


def test_unjail_needs_the_minimum_self_bond() -> None:
    app, d = _app({**DOWNTIME, "min_self_bond": "10"})
    d.block([_create(d, "alice", 10 * UNIT)])
    for _ in range(3):
        result = d.block([], signers=_signed(alice=False))
    until = result.height + 3
    while app.height + 1 < until:
        d.block([])
    short = d.block([d.tx("alice", Unjail())])
    assert _one(short) == (
        Code.STAKE_TOO_SMALL,
        "the self-bond is 9900000 micro-units, below the minimum of 10000000: delegate "
        "more to it first",
    )
    result = d.block([d.tx("alice", Delegate(address("alice"), UNIT)), d.tx("alice", Unjail())])
    assert [r.code for r in result.tx_results] == [Code.OK, Code.OK]
    assert result.validator_updates == (Validator(ALICE_KEY.public_key, 10),)
    _check_books(app)


def test_jailing_the_only_validator_keeps_the_set() -> None:
    """Consensus cannot run on an empty set: the jail is recorded, the set stays."""
    app, d = _app(DOWNTIME)
    only = [(GENESIS_KEY.address, False)]
    for _ in range(3):
        result = d.block([], signers=only)
    assert "validator_jailed" in _kinds(result)
    assert result.validator_updates == ()
    assert app.staking.signing[GENESIS_VALIDATOR].jailed


def test_restart_restores_the_signing_info(tmp_path: Path) -> None:
    """An app restarted from its store after every block agrees with one that was not:
    the same app hashes, signing infos and total slashed."""
    plain, d = _app(DOWNTIME)
    store = Store(tmp_path / "data")
    restarted = ExchangeApp(plain.genesis, store)
    steps: list[tuple[list[Any], dict[str, Any]]] = [
        ([_create(d, "alice", 20 * UNIT)], {}),
        ([], {"signers": _signed(alice=False)}),
        ([], {"signers": _signed(alice=False)}),
        ([], {"signers": _signed(alice=True)}),
        ([], {"signers": _signed(alice=False)}),
        ([], {"signers": _signed(alice=False)}),  # jailed
        ([], {}),
        ([], {"evidence": [(ALICE, 3)]}),  # tombstoned
        ([], {"evidence": [(ALICE, 3)]}),
    ]
    for txs, kw in steps:
        if txs:
            txs = [_create(d, "alice", 20 * UNIT)]
        first = d.block(txs, **kw)
        second = Driver(restarted).block(txs, **kw)
        restarted.commit()
        assert first.app_hash == second.app_hash
        store.close()
        store = Store(tmp_path / "data")
        restarted = ExchangeApp(plain.genesis, store)
        assert restarted.app_hash == plain.app_hash
        assert restarted.staking.slashed_total == plain.staking.slashed_total
        assert sorted(restarted.staking.signing) == sorted(plain.staking.signing)
        for op, info in plain.staking.signing.items():
            again = restarted.staking.signing[op]
            assert (again.jailed_until, again.tombstoned, again.slashed, again.missed) == (
                info.jailed_until, info.tombstoned, info.slashed, info.missed,
            )  # fmt: skip
            assert again.missed_count == info.missed_count
    assert plain.staking.signing[address("alice")].tombstoned
    store.close()


@pytest.mark.parametrize(
    "params, problem",
    [
        ({"slash_double_sign_ppm": 1_000_001}, "params.slash_double_sign_ppm = 1000001 is out "
         "of range; allowed 0 to 1000000"),
        ({"downtime_max_missed": 4, "downtime_window": 4}, "params.downtime_max_missed = 4 "
         "must be below params.downtime_window = 4"),
        ({"downtime_window": 100_001}, "params.downtime_window = 100001 is out of range"),
        ({"downtime_jail_blocks": 0}, "params.downtime_jail_blocks = 0 is out of range"),
    ],
)  # fmt: skip
def test_genesis_accountability_params_are_checked(params: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        genesis({"alice": "1"}, params=params)
    assert problem in str(caught.value)


def test_zero_slashes_are_allowed() -> None:
    app, d = _alice_validator({**DOWNTIME, "slash_downtime_ppm": 0, "slash_double_sign_ppm": 0})
    for _ in range(3):
        d.block([], signers=_signed(alice=False))
    assert app.staking.validators[address("alice")].tokens == 30 * UNIT
    assert app.staking.signing[address("alice")].jailed
    _check_books(app)
