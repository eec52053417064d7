"""How a block's fees are handed out and what is then owed (appchaind/exchange/rewards.py
``distribute`` and ``total_owed``): every validator with power and not jailed earns its
part pro rata to stake, down to the least power and the least stake a chain allows (a
power of 1, one micro-unit of stake when ``power_unit`` is one micro-unit); what the
validators owe in all is every operator's commission plus every delegation's rewards,
the figure the property tests hold below ``rewards_allocated``.

One fill of 10 lots at 50,000 (tests/exchange/test_rewards.py ``_trade``) puts 200,000
micro-units of net fees in the pool.
"""

from __future__ import annotations

from appchaind.exchange import ExchangeApp, rewards
from appchaind.exchange.txs import WithdrawRewards
from config.genesis import parse_genesis
from tests.exchange.support import CHAIN_ID, GENESIS_TIME, Driver, address, key, market
from tests.exchange.test_rewards import FEES, _app, _staked_alice, _trade

GENESIS_VALIDATOR = address("validator")


def test_a_validator_of_power_1_on_one_micro_unit_of_stake_earns_the_fees() -> None:
    """The genesis validator alone, of power 1 on a ``power_unit`` of one micro-unit: its
    stake, and the whole stake earning, is 1 micro-unit; it earns all 200,000 (its
    commission is 0, so all of it is its operator's delegation's)."""
    doc = {
        "chain_id": CHAIN_ID,
        "genesis_time": GENESIS_TIME,
        "validators": [{"name": "v0", "public_key": key("validator").public_key.hex(), "power": 1}],
        "params": {"power_unit": "0.000001", "min_self_bond": "0.000001"},
        "markets": [market("BTC-PERP", "50000")],
        "accounts": [
            {"address": key(name).address.hex(), "balance": "100000"} for name in ("carol", "dave")
        ],
        "insurance_fund": "100000",
    }
    app = ExchangeApp(parse_genesis(doc))
    validator = app.staking.validators[GENESIS_VALIDATOR]
    assert (validator.power, validator.tokens) == (1, 1)
    _trade(Driver(app))
    assert rewards.owed(app.staking, validator, GENESIS_VALIDATOR) == (FEES, 0)
    assert app.staking.rewards_allocated == FEES


def test_what_is_owed_in_all_is_every_commission_and_every_delegations_rewards() -> None:
    """Of the 200,000: the genesis validator's delegation 40,000; alice's validator's
    commission 16,000, her delegation 108,000 and bob's 36,000: 200,000 owed. Bob
    withdraws his: 164,000 left owed."""
    app, d = _app()
    _staked_alice(d)
    _trade(d)
    assert rewards.total_owed(app.staking) == FEES
    d.block([d.tx("bob", WithdrawRewards(address("alice")))])
    assert rewards.total_owed(app.staking) == FEES - 36_000
