"""What the staking state reports (appchaind/exchange/staking.py): the figures of the
node's metrics (:func:`statistics`: validators known and in the set, micro-units bonded
and unbonding, each validator's power, jailed and tombstoned counts, rewards handed out
and not collected) and the query ports' views of a validator (:func:`validator_view`:
its jail term, missed blocks and slashed total from its signing info) and of a consensus
address (:func:`signing_view`; None for an address no validator has, a clean record for
one that has no signing info). A genesis validator's view shows its genesis name, no
details and no commission.

The scenario: alice's validator (20 quote of self-bond, bob's 10 delegated) and carol's
(20 quote); carol's is tombstoned for a duplicate vote (5%: 1 quote), alice's jailed for
missing 3 of a window of 4 (1%: 0.3 quote), the genesis validator misses one block; a
trade puts 0.2 quote of fees in the pool, handed to the genesis validator, the only one
left with power; bob then undelegates 5 quote from alice's.
"""

from __future__ import annotations

from appchaind.exchange import ExchangeApp
from appchaind.exchange.staking import signing_view, validator_view
from appchaind.exchange.txs import Undelegate
from tests.exchange.support import BUY, IOC, SELL, address, key, limit
from tests.exchange.test_accountability import ALICE, DOWNTIME, GENESIS_KEY, _alice_validator
from tests.exchange.test_staking import UNIT, _app, _create, _one

CAROL = key("carol-consensus").address


def _scenario() -> tuple[ExchangeApp, int]:
    app, d = _alice_validator({**DOWNTIME, "slash_double_sign_ppm": 50_000})
    assert _one(d.block([_create(d, "carol", 20 * UNIT)]))[0] == 0
    d.block([], evidence=[(CAROL, app.height)])
    for _ in range(3):
        d.block([], signers=[(ALICE, False), (GENESIS_KEY.address, True)])
    jailed_at = app.height
    d.block([], signers=[(ALICE, True), (GENESIS_KEY.address, False)])
    d.block([d.tx("dave", limit(0, SELL, 50000, 10))])
    d.block([d.tx("bob", limit(0, BUY, 50000, 10, IOC))])
    assert _one(d.block([d.tx("bob", Undelegate(address("alice"), 5 * UNIT))]))[0] == 0
    return app, jailed_at


def test_the_staking_statistics_count_validators_stake_jails_and_unpaid_rewards() -> None:
    app, _ = _scenario()
    stats = app.statistics().staking
    assert (stats.validators, stats.in_set, stats.jailed, stats.tombstoned) == (3, 1, 2, 1)
    # alice 30 - 0.3 - 5, carol 20 - 1, the genesis validator 10
    assert (stats.bonded, stats.unbonding) == (24_700_000 + 19_000_000 + 10_000_000, 5 * UNIT)
    assert stats.powers == (
        (address("alice"), "alice-node", 0),
        (address("carol"), "carol-node", 0),
        (address("validator"), "v0", 10),
    )
    assert (stats.slashed_total, stats.rewards_unpaid) == (1_300_000, 200_000)
    assert stats.missed_blocks == ((address("validator"), 1),)


def test_a_validators_view_shows_its_jail_term_missed_blocks_and_slashed_total() -> None:
    app, jailed_at = _scenario()
    staking = app.staking

    def view(name: str) -> tuple[object, ...]:
        v = validator_view(staking, staking.validators[address(name)])
        return v["jailed"], v["jailed_until"], v["tombstoned"], v["missed_blocks"], v["slashed"]

    assert view("alice") == (True, jailed_at + 3, False, 0, 300_000)
    assert view("carol") == (True, 0, True, 0, 1_000_000)
    assert view("validator") == (False, 0, False, 1, 0)
    assert signing_view(staking, ALICE) == {
        "operator": address("alice").hex(),
        "missed_blocks": 0,
        "jailed": True,
        "tombstoned": False,
    }
    assert signing_view(staking, CAROL) == {
        "operator": address("carol").hex(),
        "missed_blocks": 0,
        "jailed": True,
        "tombstoned": True,
    }
    assert signing_view(staking, GENESIS_KEY.address) == {
        "operator": address("validator").hex(),
        "missed_blocks": 1,
        "jailed": False,
        "tombstoned": False,
    }
    assert signing_view(staking, b"\x01" * 20) is None


def test_a_genesis_validators_view_shows_its_genesis_name_and_nothing_more() -> None:
    """A genesis validator is its own operator, named by the genesis (moniker ``v0``),
    with no details and no commission; its self-bond is its power × ``power_unit``."""
    app, _ = _app()
    staking = app.staking
    genesis = key("validator")
    assert validator_view(staking, staking.validators[address("validator")]) == {
        "operator": address("validator").hex(),
        "consensus_address": genesis.address.hex(),
        "public_key": genesis.public_key.hex(),
        "moniker": "v0",
        "details": "",
        "commission_ppm": 0,
        "commission_owed": 0,
        "commission_raised_at": 0,
        "stake": 10 * UNIT,
        "self_bond": 10 * UNIT,
        "power": 10,
        "jailed": False,
        "jailed_until": 0,
        "tombstoned": False,
        "missed_blocks": 0,
        "slashed": 0,
    }


def test_the_signing_view_of_a_validator_that_never_missed_is_clean() -> None:
    """A validator that never missed a commit and was never punished has no signing
    record: its view shows no missed blocks, not jailed, not tombstoned."""
    app, d = _app()
    d.block([], signers=[(GENESIS_KEY.address, True)])
    assert address("validator") not in app.staking.signing
    assert signing_view(app.staking, GENESIS_KEY.address) == {
        "operator": address("validator").hex(),
        "missed_blocks": 0,
        "jailed": False,
        "tombstoned": False,
    }
