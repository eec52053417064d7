"""Delegate and Undelegate at their edges (appchaind/exchange/staking.py):

- a delegation buys shares at the validator's price, ``amount × shares ÷ tokens``
  (rounded down): after a slash a micro-unit buys more than one share; a validator with
  no shares left issues them one for one again; one slashed to no stake takes none;
- the operator's self-bond may be left at exactly ``min_self_bond`` (or at nothing), never
  between; any self-bond, a single share of it, gives the validator its power; with no
  minimum, a validator may be created with no self-bond (no power until it has one);
- an undelegation that leaves no validator with power is refused even when the only
  other validator with stake is jailed (it cannot be chosen);
- both report their events: ``delegated`` (delegator, validator, amount, stake after)
  and ``undelegated`` (the same and the release height).

Alice's validator (20 quote of self-bond) beside the genesis validator (10 quote).
"""

from __future__ import annotations

from typing import Any

from appchaind.chain.codes import Code
from appchaind.chain.types import Validator
from appchaind.exchange import ExchangeApp
from appchaind.exchange.txs import Delegate, Undelegate
from tests.exchange.support import Driver, address, key
from tests.exchange.test_accountability import ALICE, DOWNTIME, GENESIS_KEY
from tests.exchange.test_staking import DELAY, UNIT, _app, _create, _one

ALICE_OP = address("alice")


def _alice(params: dict[str, Any]) -> tuple[ExchangeApp, Driver]:
    app, d = _app(params)
    assert _one(d.block([_create(d, "alice", 20 * UNIT)]))[0] == Code.OK
    return app, d


def _jail(d: Driver, first: bytes, second: bytes) -> None:
    """Three blocks in which ``first`` misses and ``second`` signs (DOWNTIME: jailed)."""
    for _ in range(3):
        d.block([], signers=[(first, False), (second, True)])


def test_a_delegation_buys_shares_at_the_validators_price() -> None:
    app, d = _alice({**DOWNTIME, "slash_downtime_ppm": 100_000})
    _jail(d, ALICE, GENESIS_KEY.address)
    validator = app.staking.validators[ALICE_OP]
    assert (validator.tokens, validator.shares) == (18 * UNIT, 20 * UNIT)
    assert _one(d.block([d.tx("bob", Delegate(ALICE_OP, 9 * UNIT))]))[0] == Code.OK
    assert app.staking.delegations[ALICE_OP + address("bob")] == 10 * UNIT


def test_a_validator_without_shares_issues_them_one_for_one() -> None:
    app, d = _alice({})
    assert _one(d.block([d.tx("alice", Undelegate(ALICE_OP, 20 * UNIT))]))[0] == Code.OK
    assert app.staking.validators[ALICE_OP].shares == 0
    assert _one(d.block([d.tx("bob", Delegate(ALICE_OP, 5 * UNIT))]))[0] == Code.OK
    assert app.staking.delegations[ALICE_OP + address("bob")] == 5 * UNIT


def test_a_validator_slashed_to_nothing_takes_no_delegation() -> None:
    app, d = _alice({**DOWNTIME, "slash_downtime_ppm": 1_000_000})
    _jail(d, ALICE, GENESIS_KEY.address)
    assert app.staking.validators[ALICE_OP].tokens == 0
    assert _one(d.block([d.tx("bob", Delegate(ALICE_OP, 5 * UNIT))])) == (
        Code.UNKNOWN_VALIDATOR,
        "the validator has no stake left to delegate to",
    )


def test_the_self_bond_may_be_left_at_the_minimum_and_not_below() -> None:
    app, d = _alice({"min_self_bond": "5"})
    code, log = _one(d.block([d.tx("alice", Undelegate(ALICE_OP, 20 * UNIT - 1))]))
    assert (code, log.split(" micro-units")[0]) == (
        Code.STAKE_TOO_SMALL,
        "the self-bond would be 1",
    )
    assert _one(d.block([d.tx("alice", Undelegate(ALICE_OP, 15 * UNIT))]))[0] == Code.OK
    assert app.staking.validators[ALICE_OP].tokens == 5 * UNIT


def test_the_last_validator_that_can_be_chosen_cannot_leave_while_the_other_is_jailed() -> None:
    app, d = _alice(DOWNTIME)
    _jail(d, GENESIS_KEY.address, ALICE)
    assert app.staking.signing[address("validator")].jailed
    assert _one(d.block([d.tx("alice", Undelegate(ALICE_OP, 20 * UNIT))]))[0] == (
        Code.LAST_VALIDATOR
    )


def test_delegate_and_undelegate_report_their_events() -> None:
    app, d = _alice({})
    (delegated,) = d.block([d.tx("bob", Delegate(ALICE_OP, 3 * UNIT))]).tx_results
    height = d.height
    (undelegated,) = d.block([d.tx("bob", Undelegate(ALICE_OP, UNIT))]).tx_results
    bob = address("bob")
    assert [(e.kind, e.attributes) for e in delegated.events] == [
        (
            "delegated",
            {"delegator": bob, "validator": ALICE_OP, "amount": 3 * UNIT, "stake": 23 * UNIT},
        )
    ]
    assert [(e.kind, e.attributes) for e in undelegated.events] == [
        (
            "undelegated",
            {
                "delegator": bob,
                "validator": ALICE_OP,
                "amount": UNIT,
                "stake": 22 * UNIT,
                "release_height": height + DELAY,
            },
        )
    ]


def test_a_self_bond_of_one_share_is_a_self_bond() -> None:
    """On a chain whose minimum self-bond is 1 micro-unit, alice's validator bonded with
    1 micro-unit of her own and 10 quote of bob's has power 10."""
    app, d = _app({"min_self_bond": "0.000001"})
    assert _one(d.block([_create(d, "alice", 1)]))[0] == Code.OK
    assert _one(d.block([d.tx("bob", Delegate(ALICE_OP, 10 * UNIT))]))[0] == Code.OK
    assert app.staking.delegations[ALICE_OP + ALICE_OP] == 1
    assert app.staking.validators[ALICE_OP].power == 10


def test_with_no_minimum_a_validator_may_be_created_with_no_self_bond() -> None:
    """On a chain whose ``min_self_bond`` is 0, a CreateValidator bonding nothing makes a
    validator with no stake, no delegation and no power; once its operator bonds 5 quote
    to it, it joins the set with power 5."""
    app, d = _app({"min_self_bond": "0"})
    result = d.block([_create(d, "alice", 0)])
    assert _one(result) == (Code.OK, "")
    assert result.validator_updates == ()
    validator = app.staking.validators[ALICE_OP]
    assert (validator.tokens, validator.shares, validator.power) == (0, 0, 0)
    assert ALICE_OP + ALICE_OP not in app.staking.delegations
    result = d.block([d.tx("alice", Delegate(ALICE_OP, 5 * UNIT))])
    assert _one(result)[0] == Code.OK
    assert result.validator_updates == (Validator(key("alice-consensus").public_key, 5),)
