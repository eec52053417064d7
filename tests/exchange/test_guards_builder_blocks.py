"""A builder-built block as every validator judges it (appchaind/exchange/app.py,
``builder_block_problem``), and the builders in the state summary:

- the bid's envelope must apply against the committed state like a mempool tx's: its
  signer's account exists and the bid's nonce is not one the builder already used (a
  block whose bid replays a nonce is refused: executed, the bid would pay nothing);
- the node counts a refused builder block by the kind of its refusal
  (:func:`appchaind.node.auction.reason_label` of the reason): a bid that does not hold
  (here: the block's txs do not hash to the bid's txs_hash) is ``bid_does_not_hold``;
- ``state_summary()`` lists each builder (by address) with its bond and its unbonding
  amounts ([release height, amount] each), what the scenario vectors compare.
"""

from __future__ import annotations

from appchaind.chain import codec
from appchaind.chain.codes import Code
from appchaind.chain.crypto import merkle_root
from appchaind.exchange import ExchangeApp
from appchaind.exchange.txs import BuilderBid, RegisterBuilder, UnbondBuilder
from appchaind.node.auction import reason_label
from tests.exchange.support import Driver, address, block_of, genesis, key

QUOTE = 1_000_000
BOND = 2000 * QUOTE
PROPOSER = key("validator").address  # the proposer of support.block_of's blocks


def _registered() -> tuple[ExchangeApp, Driver, int]:
    """A builder registered with a bond of 2000 quote; returns the nonce it used."""
    app = ExchangeApp(genesis({"builder": "5000"}))
    d = Driver(app)
    register = d.tx("builder", RegisterBuilder("b", BOND))
    assert d.block([register]).tx_results[0].code == Code.OK
    return app, d, register.nonce


def test_a_block_whose_bid_replays_a_nonce_of_its_builder_is_refused() -> None:
    app, d, used = _registered()
    for nonce, holds in ((used, False), (used + 1, True)):
        bid = d.tx(
            "builder", BuilderBid(d.height, 0, PROPOSER, QUOTE, merkle_root([])), nonce=nonce
        )
        block = block_of([codec.encode(bid)], d.height, d.time_ms)
        accepted, why = app.process_proposal(block)
        assert accepted is holds, why
    replayed = d.tx(
        "builder", BuilderBid(d.height, 0, PROPOSER, QUOTE, merkle_root([])), nonce=used
    )
    result = app.finalize_block(
        block_of([codec.encode(replayed)], d.height, d.time_ms), [None], None
    )
    assert result.tx_results[0].code == Code.NONCE_REPLAYED
    assert app.builders[address("builder")].paid == 0


def test_a_block_whose_txs_do_not_match_its_bid_is_counted_as_a_bid_that_does_not_hold() -> None:
    app, d, _ = _registered()
    bid = d.tx("builder", BuilderBid(d.height, 0, PROPOSER, QUOTE, b"\x01" * 32))
    reason = app.builder_block_problem([codec.encode(bid)], d.height, d.time_ms, PROPOSER)
    assert reason is not None and reason_label(reason) == "bid_does_not_hold"


def test_the_state_summary_lists_each_builders_bond_and_unbonding_amounts() -> None:
    app, d, _ = _registered()
    d.block([d.tx("builder", UnbondBuilder(5 * QUOTE))])  # at height 2: released at 102
    summary = app.state_summary()
    assert summary["builders"] == {address("builder").hex(): [BOND - 5 * QUOTE, [[102, 5 * QUOTE]]]}
    assert summary["builder_bonds"] == BOND
