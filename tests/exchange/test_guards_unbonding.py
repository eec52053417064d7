"""Undelegations due at the same height (appchaind/exchange/staking_state.py
``add_unbonding``): two undelegations by one delegator from one validator in one block
make one unbonding entry of their sum, and the end of block ``h +
stake_unbonding_blocks`` returns all of it.
"""

from __future__ import annotations

from appchaind.exchange.txs import Undelegate
from tests.exchange.support import address
from tests.exchange.test_accountability import _alice_validator
from tests.exchange.test_staking import DELAY, UNIT, _balance, _check_books


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
