"""Staking (issue 17): the genesis validators' self-bonds, CreateValidator, Delegate,
Undelegate and EditValidator with every refusal's code and reason, unbonding released
after its delay, the set the stake chooses (power unit, minimum power, maximum size) and
the validator updates handed to consensus, quote conserved throughout, replayed and
restarted apps agreeing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appchaind.chain import codec
from appchaind.chain.codes import Code
from appchaind.chain.types import Validator
from appchaind.consensus.validators import ValidatorSet
from appchaind.exchange import ExchangeApp
from appchaind.exchange.staking import chosen_set, key_signature, validator_view
from appchaind.exchange.txs import (
    CreateValidator,
    Delegate,
    EditValidator,
    Faucet,
    Undelegate,
)
from appchaind.store import Store
from config.genesis import parse_genesis
from config.node_config import ConfigError
from tests.exchange.support import CHAIN_ID, Driver, address, genesis, key, market

QUOTE = 1_000_000
UNIT = QUOTE  # the default power_unit: one quote unit per unit of power
DELAY = 3
GENESIS_VALIDATOR = address("validator")  # tests/exchange/support.py's, power 10


def _app(params: dict[str, Any] | None = None) -> tuple[ExchangeApp, Driver]:
    app = ExchangeApp(
        genesis(
            {"alice": "1000", "bob": "1000", "carol": "1000", "dave": "1000"},
            params={"stake_unbonding_blocks": DELAY, **(params or {})},
        )
    )
    return app, Driver(app)


def _create(d: Driver, name: str, amount: int, **kw: Any) -> Any:
    consensus = kw.pop("consensus", key(f"{name}-consensus"))
    signature = kw.pop("signature", None) or key_signature(consensus, CHAIN_ID, address(name))
    body = CreateValidator(
        consensus.public_key, signature, kw.pop("moniker", f"{name}-node"),
        kw.pop("details", ""), kw.pop("commission_ppm", 50_000), amount,
    )  # fmt: skip
    return d.tx(name, body)


def _one(result: Any) -> tuple[int, str]:
    (outcome,) = result.tx_results
    return outcome.code, outcome.log


def _balance(app: ExchangeApp, name: str) -> int:
    account = app.account(address(name))
    assert account is not None
    return account.balance


def _check_books(app: ExchangeApp) -> None:
    """Quote conserved, and the staking pool is exactly the validators' stake plus what
    is unbonding."""
    staking = app.staking
    assert app.clearing.conservation_gap() == 0
    assert app.clearing.staked == sum(v.tokens for v in staking.validators.values()) + sum(
        staking.unbonding.values()
    )
    for validator in staking.validators.values():
        owned = [s for k, s in staking.delegations.items() if k[:20] == validator.operator]
        assert sum(owned) == validator.shares


def test_genesis_validators_are_bonded_and_the_first_block_changes_no_power() -> None:
    app, d = _app()
    validator = app.staking.validators[GENESIS_VALIDATOR]
    assert (validator.tokens, validator.power, validator.moniker) == (10 * UNIT, 10, "v0")
    assert app.staking.self_shares(validator) == 10 * UNIT
    assert app.clearing.staked == app.clearing.genesis_stake == 10 * UNIT
    _check_books(app)
    assert d.block([]).validator_updates == ()
    assert chosen_set(app.staking, app.params) == {GENESIS_VALIDATOR: 10}


def test_create_validator_bonds_the_self_bond_and_joins_the_set() -> None:
    app, d = _app()
    result = d.block([_create(d, "alice", 25 * UNIT + 1, details="https://alice.example")])
    assert _one(result) == (Code.OK, "")
    consensus = key("alice-consensus")
    assert result.validator_updates == (Validator(consensus.public_key, 25),)
    assert _balance(app, "alice") == 1000 * QUOTE - 25 * UNIT - 1
    view = validator_view(app.staking, app.staking.validators[address("alice")])
    assert view == {
        "operator": address("alice").hex(),
        "consensus_address": consensus.address.hex(),
        "public_key": consensus.public_key.hex(),
        "moniker": "alice-node",
        "details": "https://alice.example",
        "commission_ppm": 50_000,
        "commission_owed": 0,
        "commission_raised_at": 0,
        "stake": 25 * UNIT + 1,
        "self_bond": 25 * UNIT + 1,
        "power": 25,
        "jailed": False,
        "jailed_until": 0,
        "tombstoned": False,
        "missed_blocks": 0,
        "slashed": 0,
    }
    (created,) = result.tx_results[0].events
    assert created.kind == "validator_created"
    assert created.attributes["consensus_address"] == consensus.address
    (power,) = result.events
    assert power.kind == "validator_power"
    assert power.attributes == {
        "validator": address("alice"),
        "consensus_address": consensus.address,
        "power": 25,
        "effective_height": 3,
    }
    _check_books(app)


def test_create_validator_refusals_say_why() -> None:
    app, d = _app({"min_self_bond": "5"})
    d.block([_create(d, "alice", 20 * UNIT)])
    wrong_signer = key_signature(key("bob-consensus"), CHAIN_ID, address("carol"))
    other_chain = key_signature(key("bob-consensus"), "another-chain", address("bob"))
    cases = [
        (_create(d, "alice", 20 * UNIT, consensus=key("alice2")), Code.VALIDATOR_EXISTS,
         "the sender already operates a validator"),
        (_create(d, "bob", 20 * UNIT, consensus=key("alice-consensus")), Code.VALIDATOR_EXISTS,
         f"the consensus key is validator {address('alice').hex()}'s"),
        (_create(d, "bob", 20 * UNIT, consensus=key("validator")), Code.VALIDATOR_EXISTS,
         f"the consensus key is validator {GENESIS_VALIDATOR.hex()}'s"),
        (_create(d, "bob", 20 * UNIT, signature=wrong_signer), Code.INVALID_VALIDATOR,
         "key_signature is not the consensus key's signature"),
        (_create(d, "bob", 20 * UNIT, signature=other_chain), Code.INVALID_VALIDATOR,
         "key_signature is not the consensus key's signature"),
        (_create(d, "bob", 20 * UNIT, commission_ppm=1_000_001), Code.INVALID_VALIDATOR,
         "commission_ppm = 1000001 is above 1000000"),
        (_create(d, "bob", 5 * QUOTE - 1), Code.STAKE_TOO_SMALL,
         "a validator's self-bond must be at least 5000000 micro-units, got 4999999"),
        (_create(d, "bob", 1001 * QUOTE), Code.INSUFFICIENT_FREE_COLLATERAL,
         "a stake of 1001000000 micro-units exceeds the free collateral of 1000000000"),
    ]  # fmt: skip
    hash_before = app.app_hash
    result = d.block([tx for tx, _, _ in cases])
    for outcome, (_, code, log) in zip(result.tx_results, cases, strict=True):
        assert outcome.code == code, outcome.log
        assert outcome.log.startswith(log), outcome.log
    assert result.validator_updates == ()
    assert set(app.staking.validators) == {GENESIS_VALIDATOR, address("alice")}
    assert _balance(app, "bob") == 1000 * QUOTE
    assert app.app_hash != hash_before  # the nonces moved, nothing else
    _check_books(app)


def test_delegations_add_power_and_refusals_say_why() -> None:
    app, d = _app()
    d.block([_create(d, "alice", 20 * UNIT)])
    result = d.block([
        d.tx("bob", Delegate(address("alice"), 7 * UNIT)),
        d.tx("carol", Delegate(address("alice"), UNIT - 1)),  # stake, but no new power
        d.tx("bob", Delegate(address("nobody"), UNIT)),
        d.tx("bob", Delegate(address("alice"), 0)),
        d.tx("dave", Delegate(address("alice"), 1001 * QUOTE)),
    ])  # fmt: skip
    codes = [(r.code, r.log) for r in result.tx_results]
    assert codes == [
        (Code.OK, ""),
        (Code.OK, ""),
        (Code.UNKNOWN_VALIDATOR, f"no validator has operator {address('nobody').hex()}"),
        (Code.STAKE_TOO_SMALL, "a delegation of 0 micro-units buys no share"),
        (
            Code.INSUFFICIENT_FREE_COLLATERAL,
            "a stake of 1001000000 micro-units exceeds the free collateral of 1000000000",
        ),
    ]
    assert result.validator_updates == (Validator(key("alice-consensus").public_key, 27),)
    validator = app.staking.validators[address("alice")]
    assert validator.tokens == 28 * UNIT - 1
    assert app.staking.shares_of(address("alice"), address("bob")) == 7 * UNIT
    (event,) = result.tx_results[0].events
    assert event.kind == "delegated" and event.attributes["stake"] == 27 * UNIT
    # A delegation to a genesis validator.
    result = d.block([d.tx("dave", Delegate(GENESIS_VALIDATOR, 5 * UNIT))])
    assert result.validator_updates == (Validator(key("validator").public_key, 15),)
    _check_books(app)


def test_undelegated_stake_leaves_the_set_at_once_and_comes_back_after_the_delay() -> None:
    app, d = _app()
    d.block([_create(d, "alice", 20 * UNIT), d.tx("bob", Delegate(address("alice"), 10 * UNIT))])
    result = d.block([d.tx("bob", Undelegate(address("alice"), 4 * UNIT))])
    assert _one(result) == (Code.OK, "")
    release = app.height + DELAY
    (event,) = result.tx_results[0].events
    assert event.attributes["release_height"] == release
    assert result.validator_updates == (Validator(key("alice-consensus").public_key, 26),)
    assert _balance(app, "bob") == 990 * QUOTE
    assert app.staking.unbonding_of(address("bob")) == [(release, address("alice"), 4 * UNIT)]
    _check_books(app)
    while app.height < release - 1:
        assert d.block([]).events == []
    result = d.block([])
    assert app.height == release
    assert [(e.kind, e.attributes) for e in result.events] == [
        (
            "stake_released",
            {"delegator": address("bob"), "validator": address("alice"), "amount": 4 * UNIT},
        )
    ]
    assert _balance(app, "bob") == 994 * QUOTE
    assert app.staking.unbonding == {}
    _check_books(app)


def test_undelegation_refusals_say_why() -> None:
    app, d = _app({"min_self_bond": "5"})
    d.block([_create(d, "alice", 20 * UNIT), d.tx("bob", Delegate(address("alice"), 3 * UNIT))])
    cases = [
        (d.tx("bob", Undelegate(address("nobody"), 1)), Code.UNKNOWN_VALIDATOR,
         f"no validator has operator {address('nobody').hex()}"),
        (d.tx("bob", Undelegate(address("alice"), 3 * UNIT + 1)), Code.INSUFFICIENT_DELEGATION,
         "undelegate 1 to 3000000 micro-units (the sender's delegation to this validator)"),
        (d.tx("bob", Undelegate(address("alice"), 0)), Code.INSUFFICIENT_DELEGATION,
         "undelegate 1 to 3000000"),
        (d.tx("carol", Undelegate(address("alice"), 1)), Code.INSUFFICIENT_DELEGATION,
         "undelegate 1 to 0 micro-units"),
        (d.tx("alice", Undelegate(address("alice"), 15 * UNIT + 1)), Code.STAKE_TOO_SMALL,
         "the self-bond would be 4999999 micro-units, below the minimum of 5000000; "
         "undelegate all of it (20000000) or less"),
    ]  # fmt: skip
    result = d.block([tx for tx, _, _ in cases])
    for outcome, (_, code, log) in zip(result.tx_results, cases, strict=True):
        assert (outcome.code, outcome.log[: len(log)]) == (code, log)
    assert result.validator_updates == ()
    assert app.staking.validators[address("alice")].tokens == 23 * UNIT
    _check_books(app)


def test_an_operator_that_undelegates_its_self_bond_leaves_the_set_and_may_return() -> None:
    app, d = _app({"min_self_bond": "5"})
    d.block([_create(d, "alice", 20 * UNIT), d.tx("bob", Delegate(address("alice"), 9 * UNIT))])
    result = d.block([d.tx("alice", Undelegate(address("alice"), 20 * UNIT))])
    assert _one(result) == (Code.OK, "")
    assert result.validator_updates == (Validator(key("alice-consensus").public_key, 0),)
    validator = app.staking.validators[address("alice")]
    assert (validator.tokens, validator.power) == (9 * UNIT, 0)  # Bob's stake stays
    # Back only with at least the minimum self-bond; not as a second validator.
    result = d.block([
        d.tx("alice", Delegate(address("alice"), 5 * UNIT - 1)),
        _create(d, "alice", 20 * UNIT, consensus=key("alice-new")),
        d.tx("alice", Delegate(address("alice"), 5 * UNIT)),
    ])  # fmt: skip
    assert [(r.code, r.log) for r in result.tx_results] == [
        (
            Code.STAKE_TOO_SMALL,
            "the self-bond would be 4999999 micro-units, below the minimum of 5000000",
        ),
        (
            Code.VALIDATOR_EXISTS,
            "the sender already operates a validator; bond more with Delegate to it",
        ),
        (Code.OK, ""),
    ]
    assert result.validator_updates == (Validator(key("alice-consensus").public_key, 14),)
    _check_books(app)


def test_the_last_validator_with_power_cannot_leave() -> None:
    app, d = _app()
    # The operator of a genesis validator is its consensus key's address; like any
    # sender it needs an account to send a tx.
    d.block([d.tx("validator", Faucet(QUOTE))])
    result = d.block([d.tx("validator", Undelegate(GENESIS_VALIDATOR, 10 * UNIT))])
    assert _one(result) == (
        Code.LAST_VALIDATOR,
        "this would leave no validator with power: the chain needs one to go on",
    )
    # Once another validator has power, it may.
    d.block([_create(d, "alice", 20 * UNIT)])
    result = d.block([d.tx("validator", Undelegate(GENESIS_VALIDATOR, 10 * UNIT))])
    assert _one(result) == (Code.OK, "")
    assert result.validator_updates == (Validator(key("validator").public_key, 0),)
    for _ in range(DELAY):
        d.block([])
    # The genesis stake went to the operator's account: created by the genesis, conserved.
    assert _balance(app, "validator") == QUOTE + 10 * UNIT
    _check_books(app)


def test_edit_validator_replaces_description_and_commission() -> None:
    app, d = _app({"commission_max_rise_ppm": 50_000})
    d.block([_create(d, "alice", 20 * UNIT)])
    result = d.block([
        d.tx("alice", EditValidator("alice-2", "new details", 100_000)),
        d.tx("alice", EditValidator("alice-3", "", 1_000_001)),
        d.tx("bob", EditValidator("bob", "", 0)),
    ])  # fmt: skip
    assert [(r.code, r.log) for r in result.tx_results] == [
        (Code.OK, ""),
        (Code.INVALID_VALIDATOR, "commission_ppm = 1000001 is above 1000000 (100%)"),
        (Code.UNKNOWN_VALIDATOR, "the sender operates no validator; create one first"),
    ]
    validator = app.staking.validators[address("alice")]
    assert (validator.moniker, validator.details, validator.commission_ppm) == (
        "alice-2",
        "new details",
        100_000,
    )
    assert result.validator_updates == ()


def test_the_set_is_the_most_powerful_validators_above_the_minimum_power() -> None:
    """power_unit 2 quote, at least 3 power, at most 2 validators (the genesis one: 10,
    bonded with 20 quote)."""
    app, d = _app({"power_unit": "2", "min_validator_power": 3, "max_validators": 2})
    assert chosen_set(app.staking, app.params) == {GENESIS_VALIDATOR: 10}  # 20 quote / 2
    result = d.block([
        _create(d, "alice", 7 * QUOTE - 1),  # power 3
        _create(d, "bob", 5 * QUOTE),  # power 2: below the minimum
    ])  # fmt: skip
    assert result.validator_updates == (Validator(key("alice-consensus").public_key, 3),)
    # Carol (power 12) takes a seat; Alice, the weakest, leaves.
    result = d.block([_create(d, "carol", 24 * QUOTE)])
    assert sorted(result.validator_updates, key=lambda v: v.power) == [
        Validator(key("alice-consensus").public_key, 0),
        Validator(key("carol-consensus").public_key, 12),
    ]
    # Equal power: the lower operator address wins the last seat.
    result = d.block([d.tx("dave", Delegate(address("alice"), 13 * QUOTE + 1))])  # alice: 10
    first = min(address("alice"), GENESIS_VALIDATOR)
    assert chosen_set(app.staking, app.params) == {address("carol"): 12, first: 10}
    expected = () if first == GENESIS_VALIDATOR else (
        Validator(key("alice-consensus").public_key, 10),
        Validator(key("validator").public_key, 0),
    )  # fmt: skip
    assert set(result.validator_updates) == set(expected)
    _check_books(app)


def test_the_updates_carry_consensus_to_the_chosen_set() -> None:
    """Applied to the consensus set as the node does, the updates of each block give the
    set the stake chose (never an update consensus refuses)."""
    app, d = _app({"max_validators": 3})
    consensus = ValidatorSet.from_genesis(app.genesis.validator_set())
    names = ["alice", "bob", "carol", "dave"]
    flows = [
        [_create(d, n, (10 + 3 * i) * UNIT) for i, n in enumerate(names)],
        [d.tx("bob", Delegate(address("alice"), 30 * UNIT))],
        [d.tx("alice", Undelegate(address("alice"), 10 * UNIT))],
        [d.tx("bob", Undelegate(address("alice"), 30 * UNIT))],
        [d.tx("carol", Undelegate(address("carol"), 16 * UNIT))],
    ]
    for txs in flows:
        result = d.block(txs)
        assert all(r.code == 0 for r in result.tx_results), [r.log for r in result.tx_results]
        consensus = consensus.with_updates(result.validator_updates).increment(1)
        chosen = chosen_set(app.staking, app.params)
        want = {app.staking.validators[op].consensus_address: p for op, p in chosen.items()}
        assert {v.address: v.power for v in consensus.validators} == want
    _check_books(app)


def _flow(d: Driver) -> list[list[Any]]:
    return [
        [_create(d, "alice", 20 * UNIT), d.tx("bob", Delegate(GENESIS_VALIDATOR, 3 * UNIT))],
        [d.tx("carol", Delegate(address("alice"), 4 * UNIT))],
        [d.tx("carol", Undelegate(address("alice"), 2 * UNIT))],
        [d.tx("alice", EditValidator("a", "b", 7))],
        [],
        [d.tx("bob", Undelegate(GENESIS_VALIDATOR, 3 * UNIT))],
        [],
        [],
        [],
    ]


def test_replays_agree_and_a_restart_goes_on_as_if_it_had_not_stopped(tmp_path: Path) -> None:
    """Three apps run the same blocks: two in memory, one that restarts from its store
    after each block. The app hashes and validator updates are equal at every height,
    and the restarted one derives the same indexes (consensus keys, the next release)."""
    plain, d1 = _app()
    other, d2 = _app()
    store = Store(tmp_path / "data")
    restarted = ExchangeApp(plain.genesis, store)
    assert restarted.app_hash == plain.app_hash
    blocks = _flow(d1)
    # Built the same way on the other app: the same bytes (the driver's nonces are its own).
    assert [[codec.encode(t) for t in b] for b in blocks] == [
        [codec.encode(t) for t in b] for b in _flow(d2)
    ]
    for txs in blocks:
        first = d1.block(txs)
        second = d2.block(txs)
        third = Driver(restarted).block(txs)
        restarted.commit()
        store.close()
        store = Store(tmp_path / "data")
        restarted = ExchangeApp(plain.genesis, store)
        assert first.app_hash == second.app_hash == third.app_hash == restarted.app_hash
        assert first.validator_updates == second.validator_updates == third.validator_updates
        a, b = plain.staking, restarted.staking
        assert {k: v.record() for k, v in a.validators.items()} == {
            k: v.record() for k, v in b.validators.items()
        }
        assert (a.delegations, a.unbonding, a.next_release) == (
            b.delegations,
            b.unbonding,
            b.next_release,
        )
        assert a.by_consensus == b.by_consensus
        assert restarted.clearing.staked == plain.clearing.staked
        _check_books(restarted)
    store.close()


def test_a_damaged_staking_record_is_named(tmp_path: Path) -> None:
    from appchaind.exchange import StateError
    from appchaind.exchange.commitment import VALIDATOR_PREFIX
    from appchaind.store import WriteBatch

    app, _ = _app()
    store = Store(tmp_path / "data")
    batch = WriteBatch()
    ExchangeApp(app.genesis, store).commit(batch)
    batch.put(VALIDATOR_PREFIX + GENESIS_VALIDATOR, b"\x93\x01\x02\x03")
    store.write(batch)
    with pytest.raises(StateError, match="stored staking record .* is unreadable"):
        ExchangeApp(app.genesis, store)
    store.close()


@pytest.mark.parametrize(
    ("params", "validators", "message"),
    [
        ({"max_validators": 1}, [10, 10], "validators lists 2 validators, more than "
         "params.max_validators = 1"),
        ({"min_validator_power": 11}, [10], "validators[0].power = 10 is below "
         "params.min_validator_power = 11"),
        ({"min_self_bond": "10.5"}, [10], "validators[0].power = 10 is backed by a self-bond "
         "of 10000000 micro-units"),
        ({"power_unit": "0"}, [10], "params.power_unit = \"0\" must be at least 0.000001"),
        ({"max_validators": 10_001}, [10], "params.max_validators = 10001 is out of range"),
    ],
)  # fmt: skip
def test_genesis_staking_params_are_checked(
    params: dict[str, Any], validators: list[int], message: str
) -> None:
    doc = {
        "chain_id": CHAIN_ID,
        "genesis_time": "2026-01-01T00:00:00Z",
        "validators": [
            {"public_key": key(f"v{i}").public_key.hex(), "power": p}
            for i, p in enumerate(validators)
        ],
        "params": params,
        "markets": [market("BTC-PERP", "50000")],
        "accounts": [],
    }
    with pytest.raises(ConfigError) as caught:
        parse_genesis(doc)
    assert message in str(caught.value)
