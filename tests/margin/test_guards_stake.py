"""The validators' stake and the stakers' rewards in the clearing house (margin/clearing.py):
a stake comes out of free collateral only, all of it included, and a refusal tells the
trader the amount and the free collateral (never below 0); a release or a slash of stake
may take anything from 0 to the whole of the stake and nothing beyond, and a payment of
rewards anything from 0 to the whole of the fee pool; an error names the amount and what
it was taken from. Money is conserved throughout.

Found unguarded by ``make mutate`` (campaign 8, docs/mutation/margin__clearing.md): the
staking tests (tests/exchange/test_staking.py and the guards of tests/exchange) read a
refused stake's code, not its log, never staked exactly the free collateral, and never
released or slashed the whole of the stake, or nothing; the exchange pays rewards and
slashes only amounts above 0.

BTC of tests/exchange/support.py: 50000 ticks, a tick-lot is 1000 micro-units, initial
margin 10%."""

from __future__ import annotations

import pytest

from margin import ClearingError
from tests.margin.test_guards_builder_bonds import clearing_house, indebted_account

DELEGATOR, OWNER, SELLER = b"d" * 20, b"o" * 20, b"s" * 20


def test_a_stake_of_all_the_free_collateral_is_taken_and_one_beyond_is_refused() -> None:
    """10**9 micro-units and no position: a stake of 10**9 + 1 is refused naming both
    figures and moves nothing; one of 10**9, all of the free collateral, is taken. An
    account long 1 lot bought with borrowed quote (balance -50,000,000, net 0, initial
    requirement 5,000,000) has -5,000,000 free: its refusal says 0, not a negative
    figure. (Accounts are funded by the faucet, so the conservation equation holds.)"""
    clearing = clearing_house()
    rich = clearing.faucet(DELEGATOR, 10**9)
    with pytest.raises(ClearingError) as refused:
        clearing.stake(rich, 10**9 + 1)
    assert str(refused.value) == (
        "a stake of 1000000001 micro-units exceeds the free collateral of 1000000000"
    )
    assert rich.balance == 10**9 and clearing.staked == 0
    clearing.stake(rich, 10**9)
    assert rich.balance == 0 and clearing.staked == 10**9
    assert clearing.health(rich).free_collateral == 0

    indebted = indebted_account(clearing, OWNER)
    with pytest.raises(ClearingError) as refused:
        clearing.stake(indebted, 1)
    assert str(refused.value) == "a stake of 1 micro-units exceeds the free collateral of 0"
    assert indebted.balance == -50_000_000 and clearing.staked == 10**9
    assert clearing.conservation_gap() == 0


def test_a_release_takes_from_nothing_to_the_whole_of_the_stake_and_no_more() -> None:
    """A stake of 1000: releasing 0 opens the owner's account and moves nothing; 1001
    and -1 are refused naming the amount and the stake; 1000 empties the stake into the
    balance."""
    clearing = clearing_house()
    clearing.stake(clearing.faucet(DELEGATOR, 1000), 1000)
    assert clearing.release_stake(OWNER, 0).balance == 0
    assert clearing.staked == 1000 and OWNER in clearing.accounts
    for amount in (1001, -1):
        with pytest.raises(ValueError, match=f"^cannot release {amount} of 1000 staked$"):
            clearing.release_stake(DELEGATOR, amount)
    assert clearing.staked == 1000
    assert clearing.release_stake(DELEGATOR, 1000).balance == 1000
    assert clearing.staked == 0 and clearing.conservation_gap() == 0


def test_a_slash_takes_from_nothing_to_the_whole_of_the_stake_and_no_more() -> None:
    """A stake of 1000 and an insurance fund of 0: slashing 0 moves nothing; 1001 and -1
    are refused naming the amount and the stake; 1000 moves the whole stake into the
    insurance fund."""
    clearing = clearing_house()
    clearing.stake(clearing.faucet(DELEGATOR, 1000), 1000)
    clearing.slash_stake(0)
    assert clearing.staked == 1000 and clearing.insurance_fund == 0
    for amount in (1001, -1):
        with pytest.raises(ValueError, match=f"^cannot slash {amount} of 1000 staked$"):
            clearing.slash_stake(amount)
    assert clearing.staked == 1000 and clearing.insurance_fund == 0
    clearing.slash_stake(1000)
    assert clearing.staked == 0 and clearing.insurance_fund == 1000
    assert clearing.conservation_gap() == 0


def test_rewards_are_paid_from_nothing_to_the_whole_of_the_fee_pool() -> None:
    """A fee pool of 250 (a quarter of a winning bid of 1000): paying 0 of rewards opens
    the recipient's account and moves nothing; paying 250 empties the pool into its
    balance."""
    clearing = clearing_house()
    clearing.bond(clearing.faucet(DELEGATOR, 1000), 1000)
    clearing.pay_from_bonds(1000, 250_000)
    assert clearing.pay_rewards(OWNER, 0).balance == 0
    assert clearing.fee_pool == 250 and OWNER in clearing.accounts
    assert clearing.pay_rewards(OWNER, 250).balance == 250
    assert clearing.fee_pool == 0 and clearing.conservation_gap() == 0
