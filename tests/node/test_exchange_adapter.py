"""The exchange behind the node's interface (finalize_block as the node calls it): txs the
node hands over decoded give exactly the result of decoding the block's bytes."""

from __future__ import annotations

from pathlib import Path

from appchaind.chain import codec, crypto, types
from appchaind.chain.crypto import PrivateKey
from appchaind.exchange import ExchangeApp
from appchaind.exchange.txs import Faucet, PlaceOrder
from appchaind.home import demo_genesis
from appchaind.store import Store
from config.genesis import parse_genesis

ALICE, BOB = PrivateKey(b"\x0a" * 32), PrivateKey(b"\x0b" * 32)


def block_of(txs: list[bytes], time_ms: int) -> types.Block:
    header = types.Header(
        "c", 1, time_ms, b"", b"", crypto.merkle_root(txs), b"\x00" * 32, b"\x00" * 32, b"",
        ALICE.address, types.evidence_hash(()),
    )  # fmt: skip
    return types.Block(header, tuple(txs), (), None)


def test_decoded_txs_give_the_same_results_and_app_hash(tmp_path: Path) -> None:
    genesis = parse_genesis(
        demo_genesis(
            "c",
            [("v", ALICE, 1)],
            [("a", ALICE.address, "100000"), ("b", BOB.address, "100000")],
            "2026-11-26T00:00:00Z",
        )  # fmt: skip
    )
    t = genesis.genesis_time_ms + 1000
    signed = [
        types.sign_tx(ALICE, "c", t, 5, PlaceOrder(0, 0, 0, 0, 650_000, 100, 0, False, 1, 0)),
        types.sign_tx(BOB, "c", t, 5, PlaceOrder(0, 1, 0, 0, 650_000, 40, 0, False, 2, 0)),
        types.sign_tx(BOB, "c", t + 1, 5, Faucet(5_000_000)),
    ]
    raws = [codec.encode(tx) for tx in signed]
    block = block_of(raws, t)
    results = []
    mixed = (signed[0], None, signed[2])  # the node had no verdict on the second tx
    for i, decoded in enumerate(((None, None, None), tuple(signed), mixed)):
        with Store(tmp_path / f"data{i}") as store:
            app = ExchangeApp(genesis, store)
            results.append(app.finalize_block(block, decoded, None))
    plain, fast, part = results
    assert plain.app_hash == fast.app_hash == part.app_hash
    assert plain.tx_results == fast.tx_results == part.tx_results
    assert [r.code for r in plain.tx_results] == [0, 0, 0]
    assert any(kind == "fill" for kind, _ in plain.tx_results[1].events)


def test_a_tx_the_node_did_not_verify_is_signature_checked(tmp_path: Path) -> None:
    """Decoded txs are the node's verified ones and trusted; one it has no verdict on goes
    in as None, and the exchange checks its signature."""
    genesis = parse_genesis(
        demo_genesis(
            "c", [("v", ALICE, 1)], [("a", ALICE.address, "100000")], "2026-11-26T00:00:00Z"
        )
    )
    t = genesis.genesis_time_ms + 1000
    good = types.sign_tx(ALICE, "c", t, 5, PlaceOrder(0, 0, 0, 0, 650_000, 1, 0, False, 1, 0))
    forged = types.sign_tx(ALICE, "c", t + 1, 5, PlaceOrder(0, 0, 0, 0, 650_000, 1, 0, False, 2, 0))
    forged = types.Tx(*[getattr(forged, f) for f in ("chain_id", "sender", "nonce",
                                                      "expiry_height", "body")], b"\x01" * 64)  # fmt: skip
    raws = [codec.encode(good), codec.encode(forged)]
    with Store(tmp_path / "data") as store:
        app = ExchangeApp(genesis, store)
        result = app.finalize_block(block_of(raws, t), (good, None), None)
    assert [r.code for r in result.tx_results] == [0, 2]  # 2: BAD_SIGNATURE


def test_a_tx_over_the_size_limit_is_malformed_whoever_decoded_it(tmp_path: Path) -> None:
    """The node may hand over a tx it decoded itself (verified when the proposal came); if
    the tx is larger than the chain allows, it is refused as if the exchange had decoded
    it, so the result never depends on what a node had in its caches."""
    doc = demo_genesis(
        "c", [("v", ALICE, 1)], [("a", ALICE.address, "100000")], "2026-11-26T00:00:00Z"
    )
    t = parse_genesis(doc).genesis_time_ms + 1000
    tx = types.sign_tx(ALICE, "c", t, 5, PlaceOrder(0, 0, 0, 0, 650_000, 1, 0, False, 1, 0))
    raw = codec.encode(tx)
    doc["params"]["max_tx_bytes"] = len(raw) - 1
    for decoded in (tx, None):
        app = ExchangeApp(parse_genesis(doc))
        result = app.finalize_block(block_of([raw], t), (decoded,), None)
        assert [r.code for r in result.tx_results] == [1]  # 1: MALFORMED
