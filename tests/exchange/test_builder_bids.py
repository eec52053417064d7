"""Builder bids (issue 15): a bid first in a block, valid against the state before the
block, is paid exactly once from the builder's bond, split between the proposer and the
insurance fund, whatever the builder's own txs do; every validator refuses a block whose
bid does not hold; a bid never enters a mempool."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from appchaind.chain import codec
from appchaind.chain.codes import Code
from appchaind.chain.crypto import merkle_root
from appchaind.chain.types import Block, Tx
from appchaind.exchange import ExchangeApp, rewards
from appchaind.exchange.builders import MAX_BID_ROUND
from appchaind.exchange.txs import BuilderBid, RegisterBuilder, UnbondBuilder
from appchaind.node.node import Node
from tests.exchange.support import (
    BUY,
    IOC,
    SELL,
    Driver,
    address,
    block_of,
    genesis,
    key,
    limit,
)

BTC = 0
QUOTE = 1_000_000
BOND = 2000 * QUOTE
PROPOSER = key("validator").address  # the proposer of support.block_of's blocks
FUND = 100_000 * QUOTE  # support.genesis's insurance fund


def _app() -> tuple[ExchangeApp, Driver]:
    app = ExchangeApp(
        genesis(
            {"builder": "5000", "other": "5000", "alice": "1000000", "bob": "1000000"},
            params={"builder_bid_proposer_ppm": 600_000},
        )
    )
    d = Driver(app)
    d.block([
        d.tx("builder", RegisterBuilder("b", BOND)),
        d.tx("other", RegisterBuilder("o", BOND)),
        d.tx("alice", limit(BTC, SELL, 50000, 10)),
    ])  # fmt: skip
    return app, d


def _raw(tx: Tx) -> bytes:
    return codec.encode(tx)


def _builder_block(
    d: Driver,
    txs: list[Tx],
    value: int,
    *,
    signer: str = "builder",
    nonce: int | None = None,
    **overrides: object,
) -> Block:
    """A block at the driver's next height: a bid by ``signer`` first, then ``txs``."""
    raws = [_raw(tx) for tx in txs]
    fields = {
        "height": d.height, "round": 0, "proposer": PROPOSER, "value": value,
        "txs_hash": merkle_root(raws),
    }  # fmt: skip
    fields.update(overrides)
    bid = d.tx(signer, BuilderBid(**fields), nonce=nonce)  # type: ignore[arg-type]
    return block_of([_raw(bid), *raws], d.height, d.time_ms)


def _finalize(app: ExchangeApp, block: Block):  # type: ignore[no-untyped-def]
    return app.finalize_block(block, [None] * len(block.txs), None)


def test_a_winning_bid_is_paid_once_from_the_bond_whatever_its_txs_do() -> None:
    """A bid of 101 quote with one tx that fails (an order far outside the band): the
    block is accepted, the bond pays 101, the proposer gets 60% (60.6 quote) as its
    validator's reward (held in the fee pool until withdrawn; the genesis validator
    charges no commission and its operator holds all its shares), the fund the rest;
    then a bid whose 60% is not a whole micro-unit: the proposer's share is rounded down
    and the fund gets the remainder."""
    app, d = _app()
    failing = d.tx("bob", limit(BTC, BUY, 10, 1))
    value = 101 * QUOTE
    block = _builder_block(d, [failing], value)
    assert app.process_proposal(block) == (True, "")
    result = _finalize(app, block)
    assert [r.code for r in result.tx_results] == [Code.OK, Code.PRICE_OUTSIDE_BAND]
    builder = app.builders[address("builder")]
    assert (builder.bond, builder.bids_won, builder.paid) == (BOND - value, 1, value)
    validator = app.staking.validators[PROPOSER]  # the operator is the key's address
    assert rewards.owed(app.staking, validator, PROPOSER) == (60_600_000, 0)
    assert app.account(PROPOSER) is None  # paid when withdrawn, not before
    assert app.clearing.fee_pool == app.staking.rewards_allocated == 60_600_000
    assert app.clearing.insurance_fund == FUND + 40_400_000
    assert app.clearing.builder_bonds == 2 * BOND - value
    assert app.clearing.conservation_gap() == 0
    (event,) = result.tx_results[0].events
    assert (event.kind, event.attributes) == (
        "bid_paid",
        {
            "builder": address("builder"), "proposer": PROPOSER, "amount": value,
            "to_proposer": 60_600_000, "to_insurance_fund": 40_400_000,
        },
    )  # fmt: skip
    odd = 10_001  # 60% is 6,000.6: the proposer gets 6,000, the fund 4,001
    result = _finalize(app, _builder_block(d, [], odd))
    assert result.tx_results[0].code == Code.OK
    assert rewards.owed(app.staking, validator, PROPOSER) == (60_600_000 + 6_000, 0)
    assert app.clearing.insurance_fund == FUND + 40_400_000 + 4_001
    assert app.clearing.conservation_gap() == 0


def test_the_builders_txs_run_after_the_bid_in_the_execution_order() -> None:
    """A builder-built block with a taker: its fill happens, and the bid is paid first
    (the taker's fees are not taken from what pays the bid)."""
    app, d = _app()
    taker = d.tx("bob", limit(BTC, BUY, 50000, 4, IOC))
    result = _finalize(app, _builder_block(d, [taker], 5 * QUOTE))
    assert [r.code for r in result.tx_results] == [Code.OK, Code.OK]
    assert app.account(address("bob")).position_size(BTC) == 4  # type: ignore[union-attr]
    assert app.builders[address("builder")].bond == BOND - 5 * QUOTE


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("above the bond", "exceeds the builder's bond"),
        ("below the minimum", "below the minimum bid"),
        ("wrong height", "is for height"),
        ("wrong proposer", "is for proposer"),
        ("not a builder", "not a registered builder"),
        ("txs do not match", "do not hash to the bid's txs_hash"),
        ("unbonding", "exceeds the builder's bond"),
        ("not first", "must be the block's first tx"),
        ("stale envelope", "outside"),
    ],
)
def test_a_block_whose_bid_does_not_hold_is_refused(case: str, reason: str) -> None:
    app, d = _app()
    if case == "unbonding":  # an amount unbonding backs no bid
        d.block([d.tx("builder", UnbondBuilder(BOND - QUOTE))])
    taker = d.tx("bob", limit(BTC, BUY, 50000, 1, IOC))
    value = {"above the bond": BOND + 1, "below the minimum": 9_999, "unbonding": 2 * QUOTE}
    overrides: dict[str, object] = {
        "wrong height": {"height": d.height + 1},
        "wrong proposer": {"proposer": address("alice")},
    }.get(case, {})
    signer = "alice" if case == "not a builder" else "builder"
    nonce = 1 if case == "stale envelope" else None  # far outside the nonce window
    block = _builder_block(
        d, [taker], value.get(case, QUOTE), signer=signer, nonce=nonce, **overrides
    )
    if case == "txs do not match":
        block = block_of([block.txs[0], _raw(d.tx("bob", limit(BTC, BUY, 50000, 2, IOC)))],
                         d.height, d.time_ms)  # fmt: skip
    if case == "not first":
        block = block_of([block.txs[1], block.txs[0]], d.height, d.time_ms)
    accepted, why = app.process_proposal(block)
    assert not accepted and reason in why, why


def test_a_bid_at_its_minimum_and_at_the_whole_bond_is_accepted() -> None:
    app, d = _app()
    for value in (10_000, BOND):
        block = _builder_block(d, [], value)
        assert app.process_proposal(block) == (True, ""), value
    result = _finalize(app, block)
    assert result.tx_results[0].code == Code.OK
    assert app.builders[address("builder")].bond == 0


def test_a_bid_never_enters_a_mempool_and_pays_nothing_out_of_place() -> None:
    """check_tx refuses a bid; the local builder leaves it out; a decided block holding a
    bid after its first tx (process_proposal would refuse it) pays nothing for it, nor
    for a bid that no longer holds (the bond was spent by the block's first bid)."""
    app, d = _app()
    bid = d.tx("other", BuilderBid(d.height, 0, PROPOSER, QUOTE, merkle_root([])))
    assert app.check_tx(_raw(bid)).code == Code.INVALID_BID
    assert app.prepare_proposal(d.height, d.time_ms, [_raw(bid)]) == []
    first = _builder_block(d, [], BOND)
    again = d.tx("builder", BuilderBid(d.height, 0, PROPOSER, QUOTE, merkle_root([])))
    block = block_of([first.txs[0], _raw(bid), _raw(again)], d.height, d.time_ms)
    result = _finalize(app, block)
    assert [r.code for r in result.tx_results] == [Code.OK, Code.INVALID_BID, Code.INVALID_BID]
    assert app.builders[address("other")].bond == BOND
    assert app.builders[address("builder")].paid == BOND
    assert app.clearing.conservation_gap() == 0


def test_a_replayed_block_pays_a_bid_that_no_longer_holds_nothing() -> None:
    """Execution re-checks the bid against the state (a replay without process_proposal,
    e.g. a test or a tool): a bid above the bond is refused and the block goes on."""
    app, d = _app()
    taker = d.tx("bob", limit(BTC, BUY, 50000, 1, IOC))
    result = _finalize(app, _builder_block(d, [taker], BOND + 1))
    assert [r.code for r in result.tx_results] == [Code.INVALID_BID, Code.OK]
    assert app.builders[address("builder")].paid == 0
    assert app.account(PROPOSER) is None


def test_a_bid_must_be_for_a_round_whose_proposer_built_the_block() -> None:
    """The node gives the application the proposer schedule of the height: a bid for
    round 0 or 2 (the block's proposer) holds; for round 1 (another proposer) the block
    is refused; beyond MAX_BID_ROUND it is refused without asking the schedule (each
    round costs a step of it)."""
    app, d = _app()
    asked: list[int] = []

    def proposer_of_round(round: int) -> bytes:
        asked.append(round)
        return address("alice") if round == 1 else PROPOSER

    for bid_round, holds in ((0, True), (1, False), (2, True), (MAX_BID_ROUND, True)):
        block = _builder_block(d, [], QUOTE, round=bid_round)
        accepted, why = app.process_proposal(block, proposer_of_round)
        assert accepted is holds, (bid_round, why)
        assert holds or "round 1" in why
    block = _builder_block(d, [], QUOTE, round=MAX_BID_ROUND + 1)
    accepted, why = app.process_proposal(block, proposer_of_round)
    assert not accepted and f"round {MAX_BID_ROUND + 1}" in why
    assert asked == [0, 1, 2, MAX_BID_ROUND]


def test_the_verdict_on_a_builders_block_does_not_depend_on_the_nodes_round() -> None:
    """process_proposal is a function of the block and the committed state: the node's
    schedule (Node._proposer_of_round) answers for any round, whatever round its machine
    is in, so a round-1 builder block judged by a node still in round 0 (it arrived
    early, or block sync fed it before its commit) gets the same verdict as in round 1."""
    app, d = _app()
    schedule = {0: address("alice"), 1: PROPOSER}
    validators = SimpleNamespace(proposer_for_round=schedule.__getitem__)
    block = _builder_block(d, [], QUOTE, round=1)
    verdicts = set()
    for machine_round in (0, 1):
        node = SimpleNamespace(
            _machine=SimpleNamespace(round=machine_round),
            chain_state=SimpleNamespace(validators=validators),
        )
        verdicts.add(
            app.process_proposal(block, lambda r, node=node: Node._proposer_of_round(node, r))  # type: ignore[misc]
        )
    assert verdicts == {(True, "")}
