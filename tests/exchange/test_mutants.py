"""Rules of the exchange's tx handling that mutation testing (``make mutate``) found
unguarded: a decoded tx is signature-checked unless the caller says it checked it, the
mempool's refusal codes (size limit, wrong chain, expiry window, replayed nonce), the
limits of a proposal, built or checked, unknown markets, orders touched by their owner only,
and what an order must be."""

from __future__ import annotations

import dataclasses

from appchaind.chain import codec
from appchaind.chain.codes import Code
from appchaind.chain.types import sign_tx
from appchaind.exchange import CancelAll, CancelOrder, ExchangeApp, ReplaceOrder
from tests.exchange.support import (
    CHAIN_ID,
    GENESIS_MS,
    SELL,
    Driver,
    block_of,
    genesis,
    key,
    limit,
)  # fmt: skip

BALANCES = {"alice": "1000000", "bob": "1000000"}


def test_a_decoded_tx_is_signature_checked_unless_the_caller_checked_it() -> None:
    app = ExchangeApp(genesis(BALANCES))
    d = Driver(app)
    honest = d.tx("alice", limit(0, SELL, 50000, 1))
    forged = dataclasses.replace(d.tx("bob", limit(0, SELL, 50001, 1)), signature=bytes(64))
    result = app.execute_block(1, GENESIS_MS + 1000, [forged, honest])
    assert [r.code for r in result.tx_results] == [Code.BAD_SIGNATURE, 0]


def test_the_mempool_admits_a_tx_of_exactly_max_tx_bytes() -> None:
    tx = codec.encode(Driver(ExchangeApp(genesis(BALANCES))).tx("alice", limit(0, SELL, 5, 1)))
    exact = ExchangeApp(genesis(BALANCES, params={"max_tx_bytes": len(tx)}))
    assert exact.check_tx(tx).code == 0
    short = ExchangeApp(genesis(BALANCES, params={"max_tx_bytes": len(tx) - 1}))
    assert short.check_tx(tx).code == Code.MALFORMED


def test_the_mempool_refuses_another_chain_and_a_replayed_nonce_with_their_codes() -> None:
    app = ExchangeApp(genesis(BALANCES))
    d = Driver(app)
    nonce = d.time_ms
    other = sign_tx(key("alice"), CHAIN_ID + "-other", nonce, d.height + 10, limit(0, SELL, 9, 1))
    assert app.check_tx(codec.encode(other)).code == Code.WRONG_CHAIN
    tx = d.tx("alice", limit(0, SELL, 50000, 1), nonce=nonce)
    assert app.check_tx(codec.encode(tx)).code == 0
    d.block([tx])
    assert app.check_tx(codec.encode(tx)).code == Code.NONCE_REPLAYED


def test_the_mempool_judges_expiry_for_the_next_height_both_ends_included() -> None:
    app = ExchangeApp(genesis(BALANCES, params={"max_tx_lifetime_blocks": 5}))
    d = Driver(app)
    d.block([])  # the app is at height 1; the next block is height 2
    codes = []
    for i, expiry in enumerate((1, 2, 7, 8)):
        tx = sign_tx(key("alice"), CHAIN_ID, d.time_ms + i, expiry, limit(0, SELL, 50000, 1))
        codes.append(app.check_tx(codec.encode(tx)).code)
    assert codes == [Code.EXPIRED, 0, 0, Code.EXPIRED]


def _signed(app: ExchangeApp, count: int) -> list[bytes]:
    d = Driver(app)
    return [codec.encode(d.tx("alice", limit(0, SELL, 50000 + i, 1))) for i in range(count)]


def test_a_built_proposal_keeps_to_its_tx_and_byte_limits() -> None:
    app = ExchangeApp(genesis(BALANCES))
    txs = _signed(app, 3)
    t = GENESIS_MS + 1000
    assert app.prepare_proposal(1, t, txs, max_txs=2) == txs[:2]
    assert app.prepare_proposal(1, t, txs, max_bytes=len(txs[0]) + len(txs[1])) == txs[:2]
    two = len(txs[0]) + len(txs[1])
    smaller = app.prepare_proposal(1, t, [b"\x93\x01", *txs], max_bytes=two - 1)
    assert smaller == txs[:1]  # the garbage is skipped, then only one tx fits


def test_a_proposal_over_the_tx_or_byte_limit_or_for_another_chain_is_refused() -> None:
    txs = _signed(ExchangeApp(genesis(BALANCES)), 3)
    size = sum(map(len, txs))
    exact = ExchangeApp(genesis(BALANCES, params={"max_block_txs": 3, "max_block_bytes": size}))
    block = block_of(txs)
    assert exact.process_proposal(block) == (True, "")
    fewer = ExchangeApp(genesis(BALANCES, params={"max_block_txs": 2}))
    assert not fewer.process_proposal(block)[0]
    small = ExchangeApp(genesis(BALANCES, params={"max_block_bytes": size - 1}))
    assert not small.process_proposal(block)[0]
    other = sign_tx(key("alice"), CHAIN_ID + "-other", 1, 10, limit(0, SELL, 9, 1))
    assert not exact.process_proposal(block_of([codec.encode(other)]))[0]


def _order_ids(result, index: int) -> list[int]:  # type: ignore[no-untyped-def]
    return [e.attributes["order_id"] for e in result.tx_results[index].events if e.kind == "order"]


def test_a_tx_for_a_market_that_does_not_exist_is_refused() -> None:
    app = ExchangeApp(genesis(BALANCES))  # markets 0 and 1
    d = Driver(app)
    result = d.block([
        d.tx("alice", limit(2, SELL, 50000, 1)),
        d.tx("alice", CancelOrder(2, 1, 0, False)),
        d.tx("alice", CancelAll(2, False)),
        d.tx("alice", ReplaceOrder(1, 0, False, limit(2, SELL, 50000, 1))),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [Code.UNKNOWN_MARKET] * 4


def test_an_order_is_cancelled_or_replaced_by_its_owner_only() -> None:
    app = ExchangeApp(genesis(BALANCES))
    d = Driver(app)
    placed = d.block([
        d.tx("alice", limit(0, SELL, 50100, 2, client_id=7)),
        d.tx("alice", limit(0, SELL, 50200, 2, client_id=8)),
    ])  # fmt: skip
    (order_id,), (other_id,) = _order_ids(placed, 0), _order_ids(placed, 1)
    result = d.block([
        d.tx("bob", CancelOrder(0, order_id, 0, False)),
        d.tx("bob", ReplaceOrder(order_id, 0, False, limit(0, SELL, 50100, 1))),
        d.tx("bob", CancelAll(0, True)),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [Code.ORDER_NOT_FOUND, Code.ORDER_NOT_FOUND, 0]
    assert app.books[0].order(order_id) is not None
    assert d.block([d.tx("alice", CancelOrder(0, order_id, 0, False))]).tx_results[0].code == 0
    assert app.books[0].order(order_id) is None and app.books[0].order(other_id) is not None
    assert d.block([d.tx("alice", CancelAll(0, False))]).tx_results[0].code == 0
    assert app.books[0].order(other_id) is None


def test_an_order_needs_a_known_side_a_size_a_known_kind_and_a_future_expiry() -> None:
    app = ExchangeApp(genesis(BALANCES))
    d = Driver(app)
    d.block([])
    height = d.height
    good = limit(0, SELL, 50100, 1)
    bodies = [
        dataclasses.replace(good, side=2),
        dataclasses.replace(good, size=0),
        dataclasses.replace(good, time_in_force=4),
        dataclasses.replace(good, order_type=99),
        dataclasses.replace(good, good_til_block=height - 1),
        dataclasses.replace(good, good_til_block=height, client_id=1),
        dataclasses.replace(good, side=1, price=49900, client_id=2),
    ]
    result = d.block([d.tx("alice", body) for body in bodies])
    assert [r.code for r in result.tx_results] == [Code.INVALID_ORDER] * 5 + [0, 0]
