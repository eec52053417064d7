"""Rules of the exchange's tx handling that mutation testing (``make mutate``) found
unguarded: a decoded tx is signature-checked unless the caller says it checked it, the
mempool's refusal codes (size limit, wrong chain, expiry window, replayed nonce), and the
limits of a proposal, built or checked."""

from __future__ import annotations

import dataclasses

from appchaind import codec
from appchaind.exchange import Code, ExchangeApp
from appchaind.types import sign_tx
from tests.exchange.support import (
    CHAIN_ID,
    GENESIS_MS,
    SELL,
    Driver,
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
    result = app.finalize_block(1, GENESIS_MS + 1000, [forged, honest])
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
    assert app.prepare_proposal(txs, max_txs=2) == txs[:2]
    assert app.prepare_proposal(txs, max_bytes=len(txs[0]) + len(txs[1])) == txs[:2]
    smaller = app.prepare_proposal([b"\x93\x01", *txs], max_bytes=len(txs[0]) + len(txs[1]) - 1)
    assert smaller == txs[:1]  # the garbage is skipped, then only one tx fits


def test_a_proposal_over_the_tx_or_byte_limit_or_for_another_chain_is_refused() -> None:
    txs = _signed(ExchangeApp(genesis(BALANCES)), 3)
    size = sum(map(len, txs))
    exact = ExchangeApp(genesis(BALANCES, params={"max_block_txs": 3, "max_block_bytes": size}))
    assert exact.process_proposal(txs) == (True, "")
    assert not ExchangeApp(genesis(BALANCES, params={"max_block_txs": 2})).process_proposal(txs)[0]
    small = ExchangeApp(genesis(BALANCES, params={"max_block_bytes": size - 1}))
    assert not small.process_proposal(txs)[0]
    other = sign_tx(key("alice"), CHAIN_ID + "-other", 1, 10, limit(0, SELL, 9, 1))
    assert not exact.process_proposal([codec.encode(other)])[0]
