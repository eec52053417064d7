"""Undelegations (appchaind/exchange/staking.py ``undelegate``, staking_state.py
``add_unbonding``): from 1 micro-unit to the delegation's whole value, the whole value
burning every share of it (none left behind, whatever a slash did to the value of a
share); two undelegations by one delegator from one validator in one block make one
unbonding entry of their sum, and the end of block ``h + stake_unbonding_blocks``
returns all of it.
"""

from __future__ import annotations

from appchaind.chain.codes import Code
from appchaind.exchange.txs import Delegate, Undelegate
from tests.exchange.support import address
from tests.exchange.test_accountability import ALICE, _alice_validator
from tests.exchange.test_staking import DELAY, UNIT, _app, _balance, _check_books, _create, _one


def test_two_undelegations_in_one_block_unbond_and_return_their_sum() -> None:
    app, d = _alice_validator()
    height = d.height
    result = d.block([
        d.tx("bob", Undelegate(address("alice"), 2 * UNIT)),
        d.tx("bob", Undelegate(address("alice"), 3 * UNIT)),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [0, 0]
    assert app.staking.unbonding_of(address("bob")) == [
        (height + DELAY, address("alice"), 5 * UNIT)
    ]
    _check_books(app)
    balance = _balance(app, "bob")
    while app.height < height + DELAY:
        d.block([])
    assert _balance(app, "bob") == balance + 5 * UNIT
    _check_books(app)


def test_undelegating_takes_one_micro_unit_or_the_whole_value_burning_every_share() -> None:
    """A slash of 90% leaves alice's validator 3 quote of stake for 30.000005 quote of
    shares: bob's 10.000005 shares are worth 1 quote (rounded down), which, divided back
    into shares and rounded up, is only 10.000002 of them. Undelegating that whole value
    burns all of bob's shares, leaving none behind; 1 micro-unit is the least one may
    undelegate."""
    app, d = _app({"slash_double_sign_ppm": 900_000})
    d.block([_create(d, "alice", 20 * UNIT)])
    d.block([d.tx("bob", Delegate(address("alice"), 10 * UNIT + 5))])
    d.block([], evidence=[(ALICE, app.height)])
    validator = app.staking.validators[address("alice")]
    key = address("alice") + address("bob")
    assert (validator.tokens, validator.shares, app.staking.delegations[key]) == (
        3 * UNIT,
        30 * UNIT + 5,
        10 * UNIT + 5,
    )
    assert validator.value_of(10 * UNIT + 5) == UNIT
    assert _one(d.block([d.tx("bob", Undelegate(address("alice"), UNIT))]))[0] == Code.OK
    assert key not in app.staking.delegations
    assert _one(d.block([d.tx("alice", Undelegate(address("alice"), 1))]))[0] == Code.OK
    assert validator.shares == app.staking.delegations[address("alice") + address("alice")]
    _check_books(app)
