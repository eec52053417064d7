"""The proposer's share of a builder's bid (appchaind/exchange/rewards.py
``credit_proposer``, paid by builders.pay_bid): ``builder_bid_proposer_ppm`` of the bid
(rounded down) is the reward of the validator whose consensus address proposed the
block, all of it, at once, however small; a proposer the staking state does not know,
or whose validator is jailed, leaves the share in the fee pool, where the end of the
block hands it to the validators with power and not jailed, pro rata to stake (down to
its last micro-unit when one validator alone earns); a proposing validator with no
delegation left (its own undelegated) keeps the whole share as its operator's commission.

Two validators of 10 quote each: the genesis validator (commission 0) and alice's
(commission 100%, so what it earns is exactly its ``commission_owed``). Bids here are
worth twice the share (``builder_bid_proposer_ppm`` 500,000).
"""

from __future__ import annotations

from appchaind.chain.crypto import merkle_root
from appchaind.exchange import ExchangeApp, rewards
from appchaind.exchange.txs import BuilderBid, RegisterBuilder, Undelegate
from tests.exchange.support import Driver, address, genesis, key
from tests.exchange.test_staking import UNIT, _create

ALICE_CONSENSUS = key("alice-consensus").address


def _chain(commission_ppm: int = 1_000_000) -> tuple[ExchangeApp, Driver]:
    app = ExchangeApp(
        genesis(
            {"alice": "1000", "builder": "5000"},
            params={"builder_bid_proposer_ppm": 500_000, "min_builder_bid": "0.000001"},
        )
    )
    d = Driver(app)
    d.block([
        _create(d, "alice", 10 * UNIT, commission_ppm=commission_ppm),
        d.tx("builder", RegisterBuilder("b", 1000 * UNIT)),
    ])  # fmt: skip
    assert app.staking.validators[address("alice")].power == 10
    return app, d


def _bid(app: ExchangeApp, d: Driver, value: int, proposer: bytes) -> None:
    bid = d.tx("builder", BuilderBid(d.height, 0, proposer, value, merkle_root([])))
    result = d.block([bid], proposer=proposer)
    assert [r.code for r in result.tx_results] == [0]


def _earned(app: ExchangeApp) -> tuple[int, int]:
    """(alice's validator's commission, the genesis validator's operator's rewards)."""
    staking = app.staking
    alice = staking.validators[address("alice")]
    own = staking.validators[address("validator")]
    return alice.commission_owed, sum(rewards.owed(staking, own, own.operator))


def test_the_proposers_share_of_a_bid_is_its_validators_alone() -> None:
    app, d = _chain()
    _bid(app, d, 2 * UNIT, ALICE_CONSENSUS)
    assert _earned(app) == (UNIT, 0)
    assert app.staking.rewards_allocated == UNIT


def test_a_share_of_one_micro_unit_still_goes_to_the_proposer() -> None:
    app, d = _chain()
    _bid(app, d, 2, ALICE_CONSENSUS)
    assert _earned(app) == (1, 0)


def test_the_share_of_a_proposer_the_staking_state_does_not_know_goes_to_every_validator() -> None:
    app, d = _chain()
    _bid(app, d, 2 * UNIT, b"\x05" * 20)
    assert _earned(app) == (UNIT // 2, UNIT // 2)
    assert app.staking.rewards_allocated == UNIT


def test_a_proposer_without_delegations_keeps_the_whole_share_as_commission() -> None:
    """Alice's validator, at a commission of 0, loses its only delegation (her own) but
    still proposes (consensus takes the change two heights later): with no share to
    spread it over, the whole share is its operator's commission."""
    app, d = _chain(commission_ppm=0)
    d.block([d.tx("alice", Undelegate(address("alice"), 10 * UNIT))])
    assert app.staking.validators[address("alice")].shares == 0
    _bid(app, d, 2 * UNIT, ALICE_CONSENSUS)
    assert app.staking.validators[address("alice")].commission_owed == UNIT


def test_a_jailed_proposers_share_goes_to_the_validators_still_earning() -> None:
    """Alice's validator, tombstoned (so jailed) for a duplicate vote, still proposes
    (consensus takes the change two heights later): its share of the bid is not its own;
    the end of the block hands it to the genesis validator, the only one left earning."""
    app, d = _chain()
    d.block([], evidence=[(ALICE_CONSENSUS, app.height)])
    assert app.staking.is_jailed(address("alice"))
    _bid(app, d, 2 * UNIT, ALICE_CONSENSUS)
    assert _earned(app) == (0, UNIT)
    assert app.staking.rewards_allocated == UNIT


def test_a_single_micro_unit_in_the_pool_goes_to_the_one_validator_earning() -> None:
    """Alice's validator jailed, the share of 1 micro-unit of a bid proposed by a proposer
    the staking state does not know stays in the pool: the end of the block hands that
    micro-unit to the genesis validator, whose stake is all the stake earning."""
    app, d = _chain()
    d.block([], evidence=[(ALICE_CONSENSUS, app.height)])
    _bid(app, d, 2, b"\x05" * 20)
    assert _earned(app) == (0, 1)
    assert app.staking.rewards_allocated == 1
