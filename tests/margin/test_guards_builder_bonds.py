"""The builders' bonds in the clearing house (margin/clearing.py): a bond comes out of free
collateral only, and a refusal tells the trader the amount and the free collateral (never
below 0); a release or a payment may take anything from 0 to the whole of the bonds and
nothing beyond, and an error names the amount and the bonds. Money is conserved throughout.

Found unguarded by ``make mutate`` (docs/mutation/margin__clearing.md): the builders' tests
(tests/exchange/test_builders.py, test_builder_bids.py) read the refusal's code, not its
log, and never released or paid the whole of the bonds, or nothing.

BTC of tests/exchange/support.py: 50000 ticks, a tick-lot is 1000 micro-units, initial
margin 10%."""

from __future__ import annotations

import pytest

from margin import Account, ClearingError, ClearingHouse, MarketState
from tests.exchange.support import genesis

BUILDER, PROPOSER, SELLER = b"b" * 20, b"p" * 20, b"s" * 20


def clearing_house() -> ClearingHouse:
    return ClearingHouse([MarketState(m) for m in genesis({}).markets], 0)


def indebted_account(clearing: ClearingHouse, owner: bytes) -> Account:
    """``owner``'s new account, long 1 lot bought with borrowed quote (balance -50,000,000,
    net 0, initial requirement 5,000,000): -5,000,000 free."""
    seller = clearing.faucet(SELLER, 10**9)
    indebted = clearing.open_account(owner, 0)
    clearing.settle_fill(0, seller, indebted, True, 50_000, 1, 0)  # the taker pays no fee
    assert clearing.health(indebted).free_collateral == -5_000_000
    return indebted


def test_a_bond_beyond_the_free_collateral_is_refused_and_the_log_names_it() -> None:
    """10**9 micro-units and no position: a bond of 10**9 + 1 is refused naming both
    figures, one of 10**9 (all of it) is taken. An account long 1 lot bought with borrowed
    quote (balance -50,000,000, net 0, initial requirement 5,000,000) has -5,000,000 free:
    its refusal says 0, not a negative figure. A refusal moves nothing. (Accounts are funded
    by the faucet, so the conservation equation holds.)"""
    clearing = clearing_house()
    rich = clearing.faucet(BUILDER, 10**9)
    with pytest.raises(ClearingError) as refused:
        clearing.bond(rich, 10**9 + 1)
    assert str(refused.value) == (
        "a bond of 1000000001 micro-units exceeds the free collateral of 1000000000"
    )
    assert rich.balance == 10**9 and clearing.builder_bonds == 0
    clearing.bond(rich, 10**9)
    assert rich.balance == 0 and clearing.builder_bonds == 10**9

    indebted = indebted_account(clearing, PROPOSER)
    with pytest.raises(ClearingError) as refused:
        clearing.bond(indebted, 1)
    assert str(refused.value) == "a bond of 1 micro-units exceeds the free collateral of 0"
    assert indebted.balance == -50_000_000 and clearing.builder_bonds == 10**9
    assert clearing.conservation_gap() == 0


def test_a_release_takes_from_nothing_to_the_whole_of_the_bonds_and_no_more() -> None:
    """Bonds of 1000: releasing 0 opens the account and moves nothing; 1001 and -1 are
    refused naming the amount and the bonds; 1000 empties the bonds into the balance."""
    clearing = clearing_house()
    clearing.bond(clearing.faucet(BUILDER, 1000), 1000)
    assert clearing.release_bond(PROPOSER, 0).balance == 0
    assert clearing.builder_bonds == 1000 and PROPOSER in clearing.accounts
    for amount in (1001, -1):
        with pytest.raises(ValueError, match=f"^cannot release {amount} of 1000 bonded$"):
            clearing.release_bond(BUILDER, amount)
    assert clearing.release_bond(BUILDER, 1000).balance == 1000
    assert clearing.builder_bonds == 0 and clearing.conservation_gap() == 0


def test_a_bid_pays_from_nothing_to_the_whole_of_the_bonds_and_no_more() -> None:
    """Bonds of 1000, the proposer's share 25%: a bid of 0 pays nothing; 1001 and -1 are
    refused naming the value and the bonds; a bid of the whole 1000 pays 250 into the fee
    pool (the proposing validator's reward, credited by the exchange) and 750 to the
    insurance fund."""
    clearing = clearing_house()
    clearing.bond(clearing.faucet(BUILDER, 1000), 1000)
    assert clearing.pay_from_bonds(0, 250_000) == 0
    assert clearing.fee_pool == 0 and clearing.builder_bonds == 1000
    for value in (1001, -1):
        with pytest.raises(ValueError, match=f"^cannot pay {value} out of 1000 bonded$"):
            clearing.pay_from_bonds(value, 250_000)
    assert clearing.pay_from_bonds(1000, 250_000) == 250
    assert clearing.fee_pool == 250 and clearing.insurance_fund == 750
    assert PROPOSER not in clearing.accounts
    assert clearing.builder_bonds == 0 and clearing.conservation_gap() == 0


def test_rewards_are_paid_out_of_the_fee_pool_and_no_more_than_it_holds() -> None:
    """A fee pool of 250: paying 100 of rewards opens the recipient's account with 100 and
    leaves 150; 151 and -1 are refused naming the amount and the pool."""
    clearing = clearing_house()
    clearing.bond(clearing.faucet(BUILDER, 1000), 1000)
    clearing.pay_from_bonds(1000, 250_000)
    assert clearing.pay_rewards(PROPOSER, 100).balance == 100
    assert clearing.fee_pool == 150 and clearing.conservation_gap() == 0
    for amount in (151, -1):
        with pytest.raises(
            ValueError, match=f"^cannot pay {amount} of rewards out of a fee pool of 150$"
        ):
            clearing.pay_rewards(PROPOSER, amount)
    assert clearing.fee_pool == 150 and clearing.conservation_gap() == 0
