"""Staking rewards (issue 17): a block's trading fees go to the validators with power pro
rata to stake, each less its commission, to its delegators pro rata to shares; paid
lazily (on WithdrawRewards, and whenever a delegation's shares change); commission rises
limited; the reward state survives a restart; quote conserved throughout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appchaind.chain.codes import Code
from appchaind.exchange import ExchangeApp, rewards
from appchaind.exchange.staking import key_signature
from appchaind.exchange.staking_state import StakeValidator, index_bytes, index_of
from appchaind.exchange.txs import (
    CreateValidator,
    Delegate,
    EditValidator,
    Undelegate,
    WithdrawRewards,
)
from appchaind.store import Store
from tests.exchange.support import (
    BUY,
    CHAIN_ID,
    IOC,
    SELL,
    Driver,
    address,
    genesis,
    key,
    limit,
)

QUOTE = 1_000_000
GENESIS_VALIDATOR = address("validator")  # support.genesis's, power 10: 10 quote bonded
ALICE = address("alice")
#: One fill of 10 lots at 50,000 (500 quote): the taker pays 500 ppm (250,000), the maker
#: is rebated 100 ppm (50,000), the fee pool keeps 200,000 micro-units.
FEES = 200_000


def _app(params: dict[str, Any] | None = None) -> tuple[ExchangeApp, Driver]:
    people = ("alice", "bob", "carol", "dave", "validator")
    app = ExchangeApp(genesis({name: "100000" for name in people}, params=params))
    return app, Driver(app)


def _create(d: Driver, name: str, amount: int, commission_ppm: int) -> Any:
    consensus = key(f"{name}-consensus")
    signature = key_signature(consensus, CHAIN_ID, address(name))
    return d.tx(
        name, CreateValidator(consensus.public_key, signature, name, "", commission_ppm, amount)
    )


def _trade(d: Driver) -> None:
    """One fill between carol (maker) and dave (taker): FEES into the fee pool."""
    d.block([d.tx("carol", limit(0, SELL, 50000, 10))])
    result = d.block([d.tx("dave", limit(0, BUY, 50000, 10, IOC))])
    assert [r.code for r in result.tx_results] == [Code.OK]


def _balance(app: ExchangeApp, name: str) -> int:
    account = app.account(address(name))
    assert account is not None
    return account.balance


def _owed(app: ExchangeApp, operator: bytes, name: str) -> tuple[int, int]:
    return rewards.owed(app.staking, app.staking.validators[operator], address(name))


def _check(app: ExchangeApp) -> None:
    """Quote conserved; what the validators owe is held by the fee pool."""
    assert app.clearing.conservation_gap() == 0
    owed = rewards.total_owed(app.staking)
    assert app.clearing.fee_pool >= app.staking.rewards_allocated >= owed


def _staked_alice(d: Driver) -> None:
    """alice's validator: a self-bond of 30 quote, 10% commission; bob delegates 10."""
    assert d.block([_create(d, "alice", 30 * QUOTE, 100_000)]).tx_results[0].code == Code.OK
    assert d.block([d.tx("bob", Delegate(ALICE, 10 * QUOTE))]).tx_results[0].code == Code.OK


def test_a_blocks_fees_go_to_the_validators_pro_rata_to_stake_less_commission() -> None:
    """Stake 10 (genesis validator, no commission) and 40 (alice: 30 her own, 10 bob's;
    10% commission): of 200,000 in fees the genesis validator earns 40,000 (all its
    operator's), alice's validator 160,000: 16,000 commission, and 144,000 over 40 quote of
    shares: 108,000 for alice's 30, 36,000 for bob's 10. Nothing is paid until asked."""
    app, d = _app()
    _staked_alice(d)
    before = {name: _balance(app, name) for name in ("alice", "bob", "validator")}
    _trade(d)
    assert app.clearing.fee_pool == app.staking.rewards_allocated == FEES
    assert _owed(app, GENESIS_VALIDATOR, "validator") == (40_000, 0)
    assert _owed(app, ALICE, "alice") == (108_000, 16_000)
    assert _owed(app, ALICE, "bob") == (36_000, 0)
    assert {name: _balance(app, name) for name in before} == before
    _check(app)

    result = d.block([
        d.tx("bob", WithdrawRewards(ALICE)),
        d.tx("bob", WithdrawRewards(ALICE)),
        d.tx("alice", WithdrawRewards(ALICE)),
        d.tx("bob", WithdrawRewards(GENESIS_VALIDATOR)),
        d.tx("bob", WithdrawRewards(address("nobody"))),
    ])  # fmt: skip
    assert [(r.code, r.log) for r in result.tx_results] == [
        (Code.OK, ""),
        (
            Code.NO_REWARDS,
            "the validator owes the sender nothing yet (rewards come from trading fees and "
            "builders' bids, paid at the end of each block)",
        ),
        (Code.OK, ""),
        (Code.NO_REWARDS, result.tx_results[3].log),
        (Code.UNKNOWN_VALIDATOR, f"no validator has operator {address('nobody').hex()}"),
    ]
    assert _balance(app, "bob") == before["bob"] + 36_000
    assert _balance(app, "alice") == before["alice"] + 108_000 + 16_000
    (paid,) = result.tx_results[2].events
    assert (paid.kind, paid.attributes) == (
        "rewards_paid",
        {"delegator": ALICE, "validator": ALICE, "rewards": 108_000, "commission": 16_000},
    )
    assert _owed(app, ALICE, "alice") == _owed(app, ALICE, "bob") == (0, 0)
    assert app.clearing.fee_pool == app.staking.rewards_allocated == 40_000  # the genesis one's
    _check(app)


def test_a_delegation_earns_only_from_when_it_is_made_and_is_paid_when_its_shares_change() -> None:
    """After the first fees, carol delegates 10 quote to alice and bob 10 more: carol is owed
    nothing of the earlier fees; bob's 36,000 are paid by his Delegate. Then stake 10 and 60
    (alice 30, bob 20, carol 10) share the next 200,000: 28,571 and 171,428 (the 1 left by
    rounding waits for the next block); alice's commission 17,142; 154,286 over 60 quote of
    shares, the index rising by 2,571,433,333,333,333 per 10^18: carol 25,714, bob 51,428,
    alice 77,142 (her 30 quote of shares earned 185,142 in all; 2 of rounding stay in the
    index)."""
    app, d = _app()
    _staked_alice(d)
    _trade(d)
    bob = _balance(app, "bob")
    result = d.block([
        d.tx("carol", Delegate(ALICE, 10 * QUOTE)),
        d.tx("bob", Delegate(ALICE, 10 * QUOTE)),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [Code.OK, Code.OK]
    assert [e.kind for e in result.tx_results[0].events] == ["delegated"]
    assert [e.kind for e in result.tx_results[1].events] == ["rewards_paid", "delegated"]
    assert _balance(app, "bob") == bob + 36_000 - 10 * QUOTE
    assert _owed(app, ALICE, "carol") == (0, 0)
    assert _owed(app, ALICE, "bob") == (0, 0)
    allocated = app.staking.rewards_allocated
    _trade(d)
    assert _owed(app, GENESIS_VALIDATOR, "validator") == (40_000 + 28_571, 0)
    assert _owed(app, ALICE, "alice") == (108_000 + 77_142, 16_000 + 17_142)
    assert _owed(app, ALICE, "bob") == (51_428, 0)
    assert _owed(app, ALICE, "carol") == (25_714, 0)
    assert app.staking.rewards_allocated == allocated + FEES - 1
    _check(app)

    # Undelegating pays first, at the shares held before.
    result = d.block([d.tx("carol", Undelegate(ALICE, 10 * QUOTE))])
    assert [e.kind for e in result.tx_results[0].events] == ["rewards_paid", "undelegated"]
    assert result.tx_results[0].events[0].attributes["rewards"] == 25_714
    assert ALICE + address("carol") not in app.staking.reward_marks
    _check(app)


def test_only_validators_with_power_earn() -> None:
    """dave's validator bonds 1 quote, below a minimum power of 5: it has no power and
    earns nothing; the two with power share the fees."""
    app, d = _app({"min_validator_power": 5})
    _staked_alice(d)
    assert d.block([_create(d, "dave", QUOTE, 0)]).tx_results[0].code == Code.OK
    assert app.staking.validators[address("dave")].power == 0
    _trade(d)
    assert _owed(app, address("dave"), "dave") == (0, 0)
    assert _owed(app, GENESIS_VALIDATOR, "validator") == (40_000, 0)
    assert app.staking.rewards_allocated == FEES
    _check(app)


def test_a_block_without_fees_changes_no_reward_record() -> None:
    """An empty block after the fees were handed out dirties no validator or delegation."""
    app, d = _app()
    _staked_alice(d)
    _trade(d)
    before = app.app_hash
    d.block([])
    assert app.app_hash != before  # the height moved
    index = app.staking.validators[ALICE].reward_index
    d.block([])
    assert app.staking.validators[ALICE].reward_index == index
    assert not app.staking.dirty_validators and not app.staking.dirty_delegations


def test_commission_rises_are_limited_in_size_and_frequency() -> None:
    """At most 2 points (20,000 ppm) at once, at most once per 5 blocks; lowering is
    always allowed and does not restart the wait."""
    app, d = _app({"commission_max_rise_ppm": 20_000, "commission_rise_blocks": 5})
    assert d.block([_create(d, "alice", 30 * QUOTE, 100_000)]).tx_results[0].code == Code.OK

    def edit(commission: int) -> tuple[int, str]:
        (result,) = d.block([d.tx("alice", EditValidator("alice", "", commission))]).tx_results
        return result.code, result.log

    assert edit(120_001) == (
        Code.COMMISSION_CHANGE,
        "the commission may rise by at most 20000 ppm at once (from 100000 to 120001 is 20001)",
    )
    raised_at = d.height
    assert edit(120_000) == (Code.OK, "")
    assert app.staking.validators[ALICE].commission_raised_at == raised_at
    assert edit(50_000) == (Code.OK, "")  # lower: any time
    assert edit(50_001) == (
        Code.COMMISSION_CHANGE,
        f"the commission was raised at height {raised_at}; the next rise may come at height "
        f"{raised_at + 5} (this is {raised_at + 2})",
    )
    while d.height < raised_at + 5:
        d.block([])
    assert edit(70_000) == (Code.OK, "")
    assert app.staking.validators[ALICE].commission_raised_at == raised_at + 5


def test_a_commission_of_zero_may_never_rise_when_the_chain_says_so() -> None:
    app, d = _app({"commission_max_rise_ppm": 0})
    assert d.block([_create(d, "alice", 30 * QUOTE, 0)]).tx_results[0].code == Code.OK
    (result,) = d.block([d.tx("alice", EditValidator("alice", "", 1))]).tx_results
    assert (result.code, result.log) == (
        Code.COMMISSION_CHANGE,
        "this chain allows no commission rise (commission_max_rise_ppm is 0); the commission "
        "may only fall from 0 ppm",
    )


def test_the_reward_state_survives_a_restart(tmp_path: Path) -> None:
    """A restarted app has the same reward indexes, marks, commissions and allocation, and
    pays the same amounts afterwards."""
    app, d = _app()
    store = Store(tmp_path / "db")
    restarted = ExchangeApp(app.genesis, store)
    flow = Driver(restarted)
    _staked_alice(d)
    _staked_alice(flow)
    _trade(d)
    _trade(flow)
    restarted.commit()
    store.close()
    again = ExchangeApp(app.genesis, Store(tmp_path / "db"))
    assert again.app_hash == app.app_hash
    assert again.staking.rewards_allocated == app.staking.rewards_allocated == FEES
    for operator, validator in app.staking.validators.items():
        restored = again.staking.validators[operator]
        assert restored.record() == validator.record()
    assert again.staking.reward_marks == app.staking.reward_marks
    assert rewards.owed(again.staking, again.staking.validators[ALICE], address("bob")) == (
        36_000,
        0,
    )


def test_a_reward_index_beyond_64_bits_is_stored_whole() -> None:
    validator = StakeValidator(ALICE, key("a").public_key, "a", reward_index=3 << 200)
    assert StakeValidator.from_record(ALICE, validator.record()).reward_index == 3 << 200
    assert index_of(index_bytes(0)) == 0 and index_bytes(0) == b""
    for bad in (b"\0\1", 5, "1"):
        try:
            index_of(bad)
        except ValueError as exc:
            assert "not a reward index" in str(exc)
        else:
            raise AssertionError(f"{bad!r} read as an index")


def test_a_liquidation_fills_rebate_is_the_insurance_funds_and_the_rewards_stay_covered() -> None:
    """Carol's short of 100 (sold to bob at 50000: 2,000,000 of net fees, handed to the
    genesis validator) is liquidated against dave's and erin's asks. The liquidation order
    pays no taker fee, so its makers get no rebate: the fee pool still covers what the
    validator is owed, and it collects all 2,000,000. (The fee pool used to pay those
    rebates, 100 ppm of 60 lots at 53500 and 40 at 53600: 535,400, leaving 1,464,600 for
    2,000,000 owed, and the withdrawal raised out of the block: the chain stopped.)"""
    app = ExchangeApp(
        genesis({"carol": "502.54", "bob": "1000000", "dave": "1000000", "erin": "1000000",
                 "validator": "1000"})
    )  # fmt: skip
    d = Driver(app)
    d.block([
        d.tx("bob", limit(0, BUY, 50000, 100)),
        d.tx("carol", limit(0, SELL, 50000, 100, IOC)),
    ])  # fmt: skip
    assert app.clearing.fee_pool == app.staking.rewards_allocated == 2_000_000
    d.block([
        d.tx("dave", limit(0, SELL, 53500, 60, client_id=1)),
        d.tx("erin", limit(0, SELL, 53600, 100, client_id=1)),
    ])  # fmt: skip
    dave = _balance(app, "dave")
    result = d.block([], prices=[53000, 3000])
    assert [e.attributes["filled"] for e in result.events if e.kind == "liquidation"] == [100]
    assert app.clearing.fee_pool == app.staking.rewards_allocated == 2_000_000
    # dave was paid the price of the 60 lots he sold at 53500, and no rebate.
    assert _balance(app, "dave") == dave + 60 * 53500 * 1000
    assert app.clearing.conservation_gap() == 0
    validator = _balance(app, "validator")
    (paid,) = d.block([d.tx("validator", WithdrawRewards(GENESIS_VALIDATOR))]).tx_results
    assert paid.code == Code.OK
    assert _balance(app, "validator") == validator + 2_000_000
    assert app.clearing.fee_pool == app.staking.rewards_allocated == 0
    _check(app)


def test_a_refused_withdrawal_changes_nothing() -> None:
    """bob holds 1 share of alice's validator: a block's 200,000 of fees earn it less than a
    micro-unit. His WithdrawRewards is refused (NO_REWARDS) and leaves his delegation's mark
    where it was, so the fraction keeps counting."""
    app, d = _app()
    assert d.block([_create(d, "alice", 30 * QUOTE, 100_000)]).tx_results[0].code == Code.OK
    assert d.block([d.tx("bob", Delegate(ALICE, 1))]).tx_results[0].code == Code.OK
    _trade(d)
    key = ALICE + address("bob")
    mark = app.staking.reward_marks[key]
    assert app.staking.validators[ALICE].reward_index > mark
    assert _owed(app, ALICE, "bob") == (0, 0)
    (refused,) = d.block([d.tx("bob", WithdrawRewards(ALICE))]).tx_results
    assert refused.code == Code.NO_REWARDS
    assert app.staking.reward_marks[key] == mark


def test_a_validator_tombstoned_in_a_block_earns_none_of_its_fees() -> None:
    """Evidence against alice's validator and a trade in the same block: the genesis
    validator, the only one left earning, gets all 200,000 of the fees."""
    app, d = _app()
    _staked_alice(d)
    d.block([d.tx("carol", limit(0, SELL, 50000, 10))])
    result = d.block(
        [d.tx("dave", limit(0, BUY, 50000, 10, IOC))],
        evidence=[(key("alice-consensus").address, app.height)],
    )
    assert "validator_tombstoned" in [e.kind for e in result.events]
    assert _owed(app, ALICE, "alice") == _owed(app, ALICE, "bob") == (0, 0)
    assert _owed(app, GENESIS_VALIDATOR, "validator") == (FEES, 0)
    _check(app)
