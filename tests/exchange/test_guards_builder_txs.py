"""A builder's own txs and record (appchaind/exchange/builders.py):

- RegisterBuilder and BondBuilder beyond the free collateral are refused with the
  clearing house's reason, which names both amounts;
- BondBuilder adds to the bond and says so in a ``builder_bonded`` event (builder,
  amount, bond after);
- UnbondBuilder takes from 1 micro-unit to the whole bond, reported in a
  ``builder_unbonding`` event (builder, amount, bond after, release height =
  height + ``builder_unbonding_blocks``), and the end of that block returns it to the
  builder's balance, whatever the other builders;
- each winning bid counts in the builder's record: bids won and micro-units paid, summed
  over its bids (both stored, so in the app hash).
"""

from __future__ import annotations

from appchaind.chain.codes import Code
from appchaind.chain.crypto import merkle_root
from appchaind.exchange import ExchangeApp
from appchaind.exchange.txs import BondBuilder, BuilderBid, RegisterBuilder, UnbondBuilder
from tests.exchange.support import Driver, address, genesis, key

QUOTE = 1_000_000
BOND = 1000 * QUOTE
PROPOSER = key("validator").address


def _builder() -> tuple[ExchangeApp, Driver]:
    app = ExchangeApp(genesis({"builder": "5000"}, params={"builder_unbonding_blocks": 4}))
    d = Driver(app)
    d.block([d.tx("builder", RegisterBuilder("b", BOND))])
    return app, d


def test_bond_and_unbond_report_the_amount_and_the_bond_left() -> None:
    app, d = _builder()
    height = d.height
    result = d.block([
        d.tx("builder", BondBuilder(7)),
        d.tx("builder", UnbondBuilder(1)),
        d.tx("builder", BondBuilder(5000 * QUOTE)),
    ])  # fmt: skip
    bonded, unbonding, refused = result.tx_results
    builder = address("builder")
    assert (bonded.code, [(e.kind, e.attributes) for e in bonded.events]) == (
        Code.OK,
        [("builder_bonded", {"builder": builder, "amount": 7, "bond": BOND + 7})],
    )
    assert (unbonding.code, [(e.kind, e.attributes) for e in unbonding.events]) == (
        Code.OK,
        [
            (
                "builder_unbonding",
                {"builder": builder, "amount": 1, "bond": BOND + 6, "release_height": height + 4},
            )
        ],
    )
    free = 5000 * QUOTE - BOND - 7
    assert (refused.code, refused.log) == (
        Code.INSUFFICIENT_FREE_COLLATERAL,
        f"a bond of {5000 * QUOTE} micro-units exceeds the free collateral of {free}",
    )
    assert app.builders[builder].bond == BOND + 6


def test_the_builders_record_sums_its_winning_bids() -> None:
    app, d = _builder()
    for value in (3 * QUOTE, 5 * QUOTE):
        bid = d.tx("builder", BuilderBid(d.height, 0, PROPOSER, value, merkle_root([])))
        assert [r.code for r in d.block([bid], proposer=PROPOSER).tx_results] == [Code.OK]
    builder = app.builders[address("builder")]
    assert (builder.bids_won, builder.paid, builder.bond) == (2, 8 * QUOTE, BOND - 8 * QUOTE)
    assert builder.record()[4:] == [2, 8 * QUOTE]


def test_a_registration_beyond_the_free_collateral_says_why() -> None:
    app = ExchangeApp(genesis({"builder": "5000"}))
    d = Driver(app)
    (refused,) = d.block([d.tx("builder", RegisterBuilder("b", 6000 * QUOTE))]).tx_results
    assert (refused.code, refused.log) == (
        Code.INSUFFICIENT_FREE_COLLATERAL,
        f"a bond of {6000 * QUOTE} micro-units exceeds the free collateral of {5000 * QUOTE}",
    )
    assert app.builders == {}


def test_unbonded_amounts_are_released_at_their_height_whoever_else_is_a_builder() -> None:
    """Alice (whose address sorts first) is a builder with nothing unbonding; bob
    unbonds 5 quote at height 2, due at 6: it is back in his balance at the end of
    block 6."""
    app = ExchangeApp(
        genesis({"alice": "5000", "bob": "5000"}, params={"builder_unbonding_blocks": 4})
    )
    d = Driver(app)
    assert address("alice") < address("bob")
    d.block([d.tx("alice", RegisterBuilder("a", BOND)), d.tx("bob", RegisterBuilder("b", BOND))])
    d.block([d.tx("bob", UnbondBuilder(5 * QUOTE))])
    balance = app.account(address("bob")).balance  # type: ignore[union-attr]
    while app.height < 6:
        d.block([])
    assert app.account(address("bob")).balance == balance + 5 * QUOTE  # type: ignore[union-attr]
    assert app.builders[address("bob")].unbonding == []
