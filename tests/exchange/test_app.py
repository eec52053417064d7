"""The application interface: ordering rule, oracle, mempool admission, proposals, nonces."""

from __future__ import annotations

import msgpack
import pytest

from appchaind.chain import codec
from appchaind.chain.codes import Code
from appchaind.chain.types import Tx, sign_tx
from appchaind.exchange import (
    CancelOrder,
    ExchangeApp,
    Faucet,
    ReplaceOrder,
    StateError,
    Withdraw,
)
from appchaind.exchange.commitment import account_key
from appchaind.exchange.oracle import PrecommitExtension, SimulatedFeed, aggregate, encode_vote
from appchaind.store import Store, WriteBatch
from tests.exchange.support import (
    BUY,
    CHAIN_ID,
    GENESIS_MS,
    IOC,
    POST_ONLY,
    SELL,
    Driver,
    address,
    block_of,
    genesis,
    key,
    limit,
    market_order,
    precommit_with,
)  # fmt: skip

BALANCES = {"alice": "1000000", "bob": "1000000"}


def test_cancels_then_post_only_then_the_rest_whatever_the_block_order():
    app = ExchangeApp(genesis(BALANCES))
    d = Driver(app)
    d.block([d.tx("alice", limit(0, SELL, 50000, 5, client_id=1))])
    # The builder puts the taker first, then a post-only quote, then the cancel of the ask.
    taker = d.tx("bob", limit(0, BUY, 50000, 5))
    quote = d.tx("bob", limit(0, BUY, 49000, 5, POST_ONLY, client_id=9))
    cancel = d.tx("alice", CancelOrder(0, 0, 1, True))
    result = d.block([taker, quote, cancel])
    assert [r.code for r in result.tx_results] == [0, 0, 0]
    # The cancel ran first, so the taker found no ask and rested as a bid at 50000.
    assert app.account(address("bob")).position_size(0) == 0
    assert [e.attributes["status"] for e in result.tx_results[0].events] == ["resting"]


def test_oracle_median_needs_two_thirds_and_is_clamped():
    current = [50000]
    votes = [(10, encode_vote({0: 51000})), (10, encode_vote({0: 52000})), (10, b"")]
    # 20 of 30 power reported (exactly 2/3): the lower weighted median, clamped to +1%.
    assert aggregate(votes, 30, current, [10_000]) == [(50500, 50000, 20)]
    assert aggregate(votes[:1], 30, current, [10_000]) == [(50000, 50000, 10)]
    assert aggregate([(10, b"\x01garbage")] + votes[:2], 30, current, [100_000])[0][0] == 51000


def test_extend_vote_and_verify_with_the_simulated_feed():
    g = genesis(BALANCES)
    clock = [GENESIS_MS / 1000 + 3600]
    feeds = [
        SimulatedFeed(
            g.markets,
            seed=b"net",
            validator_seed=bytes([i]),
            start_ms=GENESIS_MS,
            clock=lambda: clock[0],
        )  # fmt: skip
        for i in range(2)
    ]
    apps = [ExchangeApp(g, price_source=f) for f in feeds]
    extensions = [a.extend_vote(1, 0, b"\x01" * 32) for a in apps]
    assert all(apps[0].verify_vote_extension(precommit_with(x)) for x in extensions)
    prices = [p for x in extensions for p in codec.decode(PrecommitExtension, x).prices]
    # Shared walk plus small per-validator noise: the validators agree within 0.02%.
    assert abs(prices[0].price - prices[2].price) * 5000 <= prices[0].price
    assert not apps[0].verify_vote_extension(precommit_with(encode_vote({0: 1})))
    assert not apps[0].verify_vote_extension(precommit_with(b"\xc1"))
    result = apps[0].execute_block(
        1, GENESIS_MS + 1000, [], oracle_votes=[(5, extensions[0]), (5, extensions[1])]
    )
    assert result.events[0].kind == "oracle"


def test_check_tx_and_proposals():
    app = ExchangeApp(genesis(BALANCES))
    d = Driver(app)
    good = codec.encode(d.tx("alice", limit(0, SELL, 50000, 1)))
    stranger = codec.encode(d.tx("nobody", limit(0, SELL, 50000, 1)))
    faucet = codec.encode(d.tx("newcomer", Faucet(1000)))
    cancel = codec.encode(d.tx("bob", CancelOrder(0, 5, 0, False)))
    assert app.check_tx(good).code == 0
    assert app.check_tx(stranger).code == Code.UNKNOWN_ACCOUNT
    assert app.check_tx(faucet).code == 0
    assert app.check_tx(b"\x93\x01").code == Code.MALFORMED
    tampered = bytearray(good)
    tampered[-1] ^= 1
    assert app.check_tx(bytes(tampered)).code == Code.BAD_SIGNATURE
    # The node's mempool decoded and verified it: the app takes its word.
    assert app.check_tx(bytes(tampered), codec.decode(Tx, bytes(tampered))).code == 0
    txs = app.prepare_proposal(1, GENESIS_MS + 1000, [good, stranger, good, faucet, cancel])
    assert txs == [cancel, good, faucet]
    assert app.process_proposal(block_of(txs)) == (True, "")
    assert not app.process_proposal(block_of([b"\x93\x01"]))[0]
    result = app.execute_block(1, GENESIS_MS + 1000, txs)
    assert [r.code for r in result.tx_results] == [Code.ORDER_NOT_FOUND, 0, 0]
    assert app.account(key("newcomer").address).balance == 1000


def test_txs_the_node_verified_are_not_verified_again():
    """finalize_block: a tx the node hands over decoded is one it verified on its worker
    threads, and the app takes its word (it is never re-verified); a tx it hands over as
    None is decoded and verified by the app."""
    app = ExchangeApp(genesis(BALANCES))
    d = Driver(app)
    signed = d.tx("alice", limit(0, SELL, 50000, 1))
    forged_tx = type(signed)(
        *[getattr(signed, f) for f in ("chain_id", "sender", "nonce", "expiry_height", "body")],
        bytes(64),
    )
    forged = codec.encode(forged_tx)
    honest = codec.encode(d.tx("bob", limit(0, BUY, 49000, 1)))
    assert app.check_tx(forged).code == Code.BAD_SIGNATURE
    assert app.check_tx(forged, forged_tx).code == 0
    result = app.finalize_block(block_of([forged, honest]), [forged_tx, None], None)
    assert [r.code for r in result.tx_results] == [0, 0]
    again = ExchangeApp(genesis(BALANCES))
    result = again.finalize_block(block_of([forged, honest]), [None, None], None)
    assert [r.code for r in result.tx_results] == [Code.BAD_SIGNATURE, 0]


def test_nonce_window_set_and_expiry():
    app = ExchangeApp(genesis(BALANCES, params={"max_recent_nonces": 3}))
    d = Driver(app)
    now = d.time_ms
    txs = [d.tx("bob", Withdraw(1), nonce=now - i) for i in range(4)]
    txs.append(d.tx("bob", Withdraw(1), nonce=now - 10))  # below the 3 kept ones
    txs.append(d.tx("bob", Withdraw(1), nonce=now + 10**9))  # far in the future
    result = d.block(txs)
    codes = [r.code for r in result.tx_results]
    assert codes == [0, 0, 0, Code.NONCE_REPLAYED, Code.NONCE_REPLAYED, Code.NONCE_OUT_OF_WINDOW]
    d.block([])
    stale = sign_tx(key("bob"), CHAIN_ID, d.time_ms - 5, 1, Withdraw(1))  # expired at height 1
    assert d.block([stale]).tx_results[0].code == Code.EXPIRED


def test_recent_nonces_survive_a_restart_and_an_unreadable_record_is_refused(tmp_path):
    g = genesis(BALANCES, params={"max_recent_nonces": 3})
    with Store(tmp_path / "data") as store:
        app = ExchangeApp(g, store)
        d = Driver(app)
        now = d.time_ms
        # out of order (the kept nonces are spliced, not appended), then one past the cap
        txs = [d.tx("bob", Withdraw(1), nonce=now - i) for i in (5, 1, 3, 2)]
        assert [r.code for r in d.block(txs).tx_results] == [0, 0, 0, 0]
        app.commit()
        kept = app.account(address("bob")).nonces
        assert kept == [now - 3, now - 2, now - 1]
    with Store(tmp_path / "data") as store:
        restarted = ExchangeApp(g, store)
        assert restarted.app_hash == app.app_hash
        assert restarted.account(address("bob")).nonces == kept
        d = Driver(restarted)
        replayed = [d.tx("bob", Withdraw(1), nonce=n) for n in (now - 2, now - 5)]
        codes = [r.code for r in d.block(replayed).tx_results]
        assert codes == [Code.NONCE_REPLAYED, Code.NONCE_REPLAYED]
        # the record as an older version wrote it: the nonces as a list
        key = account_key(address("bob"))
        balance, positions, _ = msgpack.unpackb(store.get(key))
        batch = WriteBatch()
        batch.put(key, msgpack.packb([balance, positions, kept]))
        store.write(batch)
    with Store(tmp_path / "data") as store, pytest.raises(StateError, match="another version"):
        ExchangeApp(g, store)


def test_market_order_margin_and_commit_into_the_nodes_batch():
    app = ExchangeApp(genesis({"alice": "1000000", "bob": "100"}))
    d = Driver(app)
    d.block([d.tx("alice", limit(0, SELL, 50000, 100))])
    result = d.block([d.tx("bob", market_order(0, BUY, 100))])
    assert result.tx_results[0].code == Code.INSUFFICIENT_MARGIN
    assert "initial margin" in result.tx_results[0].log
    batch = WriteBatch()
    assert app.commit(batch) == app.app_hash
    assert len(batch) > 3


def test_file_price_source_rounds_to_ticks_and_skips_garbage(tmp_path):
    from appchaind.exchange.oracle import FilePriceSource

    g = genesis(BALANCES)
    path = tmp_path / "prices.json"
    path.write_text('{"BTC-PERP": "50123.6", "ETH-PERP": "oops", "XRP-PERP": "1"}')
    assert FilePriceSource(path, g.markets).prices() == {0: 50124}
    assert FilePriceSource(tmp_path / "missing.json", g.markets).prices() == {}


def test_finalize_block_leaves_the_garbage_collector_as_it_found_it():
    import gc

    app = ExchangeApp(genesis(BALANCES))
    d = Driver(app)
    assert gc.isenabled()
    d.block([d.tx("alice", limit(0, SELL, 50000, 5, client_id=1))])
    assert gc.isenabled()
    gc.disable()
    try:
        d.block([d.tx("bob", limit(0, BUY, 50000, 5))])
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(ValueError):  # a block that raises must not leave it paused
        app.execute_block(app.height + 2, GENESIS_MS, [])
    assert gc.isenabled()


def test_a_refused_replacement_leaves_the_order_to_replace_as_it_was():
    app = ExchangeApp(genesis({"alice": "1000000", "bob": "1000000", "carol": "1000"}))
    d = Driver(app)
    d.block([
        d.tx("alice", limit(0, SELL, 50100, 5, client_id=1)),
        d.tx("bob", limit(0, SELL, 50100, 5, client_id=1)),
        d.tx("carol", limit(0, BUY, 49000, 1, client_id=7)),
    ])  # fmt: skip
    book = app.books[0]
    alice_id, bob_id = book.order_ids_of(address("alice")) + book.order_ids_of(address("bob"))
    # Outside the price band, then far beyond carol's margin: both refused, nothing changes.
    refused = d.block([
        d.tx("alice", ReplaceOrder(0, 1, True, limit(0, SELL, 90000, 5, client_id=1))),
        d.tx("carol", ReplaceOrder(0, 7, True, limit(0, BUY, 49000, 500, client_id=7))),
    ])  # fmt: skip
    assert [r.code for r in refused.tx_results] == [
        Code.PRICE_OUTSIDE_BAND,
        Code.INSUFFICIENT_MARGIN,
    ]
    assert all("left as it was" in r.log for r in refused.tx_results)
    assert all(not r.events for r in refused.tx_results)
    assert book.order(alice_id) is not None and book.order(alice_id)[8] == 5
    assert book.order_id_for_client(address("carol"), 7) is not None
    # Alice's order kept its time priority ahead of bob's at the same price.
    fill = d.block([d.tx("carol", limit(0, BUY, 50100, 1, IOC))])
    makers = [e.attributes["maker"] for e in fill.tx_results[0].events if e.kind == "fill"]
    assert makers == [address("alice")] and book.order(bob_id)[8] == 5
    # A valid replacement still cancels the old order and places the new one.
    moved = d.block(
        [d.tx("alice", ReplaceOrder(0, 1, True, limit(0, SELL, 50200, 3, client_id=1)))]
    )
    assert moved.tx_results[0].code == 0 and book.order(alice_id) is None
    assert book.depth(SELL, 2) == [(50100, 5), (50200, 3)]
