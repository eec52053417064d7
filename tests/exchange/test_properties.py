"""Property tests over random order flow, price paths and blocks.

Invariants after every block: quote conservation (exact), Σ positions = 0 per market, no
crossed book; and determinism: two fresh instances, and one restarted from LevelDB
halfway, agree on the app hash at every height.
"""

from __future__ import annotations

import tempfile
from hashlib import sha256
from pathlib import Path
from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from appchaind.exchange import (
    CancelAll,
    CancelOrder,
    ExchangeApp,
    Faucet,
    OrderType,
    PlaceOrder,
    ReplaceOrder,
    Transfer,
    Withdraw,
)
from appchaind.store import Store
from appchaind.types import sign_tx
from tests.exchange.support import BLOCK_MS, CHAIN_ID, GENESIS_MS, address, genesis, key


class _Replace(NamedTuple):
    order_id: int
    client_id: int
    by_client_id: bool
    order: tuple


TRADERS = ["t0", "t1", "t2", "t3", "t4"]
PRICES = [50000, 3000]

#: An order as (market, side, type, tif, price offset ‰, size, trigger offset ‰, reduce only,
#: client id, good_til_block offset): materialised against the block's oracle price.
order_st = st.tuples(
    st.integers(0, 1),
    st.integers(0, 1),
    st.sampled_from([0, 0, 0, 1, 2, 3, 4, 5]),
    st.integers(0, 3),
    st.integers(-30, 30),
    st.integers(1, 150),
    st.integers(-30, 30),
    st.sampled_from([False, False, False, True]),
    st.integers(0, 6),
    st.sampled_from([0, 0, 0, 3, 6]),
)
other_st = st.one_of(
    st.builds(CancelOrder, st.integers(0, 1), st.integers(1, 60), st.integers(0, 6), st.booleans()),
    st.builds(CancelAll, st.integers(0, 1), st.booleans()),
    st.builds(
        _Replace,
        st.integers(1, 60),
        st.integers(0, 6),
        st.booleans(),
        order_st,
    ),
    st.builds(
        lambda to, a: Transfer(address(TRADERS[to]), a), st.integers(0, 4), st.integers(1, 10**9)
    ),
    st.builds(Withdraw, st.integers(1, 10**9)),
    st.builds(Faucet, st.integers(1, 10**8)),
)
body_st = st.integers(0, 99).flatmap(lambda r: order_st if r < 70 else other_st)


def _order(spec, prices, height):
    m, side, otype, tif, off, size, trig, ro, cid, gtb = spec
    price = max(1, prices[m] + off * prices[m] // 1000)
    trigger = max(1, prices[m] + trig * prices[m] // 1000) if otype >= 2 else 0
    return PlaceOrder(
        m, side, otype, tif, price, size, trigger, ro, cid, height + gtb if gtb else 0
    )


tx_st = st.tuples(st.integers(0, len(TRADERS) - 1), body_st, st.integers(0, 9))
block_st = st.tuples(
    st.lists(st.integers(-60, 60), min_size=2, max_size=2),
    st.lists(tx_st, max_size=12),
)


def _genesis():
    return genesis(
        {"t0": "20000", "t1": "20000", "t2": "900", "t3": "500", "t4": "1000000"},
        params={"max_liquidations_per_block": 2, "faucet_max_amount": "100"},
        insurance_fund="500",
    )


#: Block 1 of every run: a maker quotes both markets and two small accounts take leveraged
#: positions, so random price paths liquidate them.
OPENING = [
    (4, PlaceOrder(0, 0, 0, 0, 50000, 300, 0, False, 1, 0), 9),
    (4, PlaceOrder(0, 1, 0, 0, 49500, 300, 0, False, 2, 0), 9),
    (4, PlaceOrder(1, 1, 0, 0, 3000, 1000, 0, False, 3, 0), 9),
    (4, PlaceOrder(1, 0, 0, 0, 3030, 2000, 0, False, 4, 0), 9),
    (2, PlaceOrder(0, 1, 0, 2, 50000, 150, 0, False, 0, 0), 9),
    (3, PlaceOrder(1, 0, 0, 2, 3000, 1000, 0, False, 0, 0), 9),
]


def _build(blocks):
    """Signed txs and decided prices per block (nonces from block time; some replayed)."""
    built = []
    prices = list(PRICES)
    counter = 0
    blocks = [([0, 0], OPENING), *blocks]
    for height, (moves, specs) in enumerate(blocks, start=1):
        time_ms = GENESIS_MS + height * BLOCK_MS
        prices = [max(1, p + p * mv // 1000) for p, mv in zip(prices, moves, strict=True)]
        txs = []
        for trader, body, replay in specs:
            counter += 1
            nonce = time_ms - 1000 + counter
            if replay == 0 and txs:
                txs.append(txs[-1])  # a replayed tx in the same block
            if isinstance(body, _Replace):
                order = _order(body.order, prices, height)
                body = ReplaceOrder(body.order_id, body.client_id, body.by_client_id, order)
            elif isinstance(body, tuple):
                body = _order(body, prices, height)
            txs.append(sign_tx(key(TRADERS[trader]), CHAIN_ID, nonce, height + 5, body))
        built.append((height, time_ms, txs, list(prices)))
    return built


def _check_invariants(app: ExchangeApp) -> None:
    clearing = app.clearing
    assert clearing.conservation_gap() == 0
    for market_id in range(len(app.markets)):
        assert sum(a.position_size(market_id) for a in clearing.accounts.values()) == 0
        book = app.books[market_id]
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask


def _run(app: ExchangeApp, block) -> bytes:
    height, time_ms, txs, prices = block
    result = app.finalize_block(
        height, time_ms, txs, prev_block_hash=sha256(bytes([height % 256])).digest(),
        oracle_prices=prices, signatures_verified=True,
    )  # fmt: skip
    assert len(result.tx_results) == len(txs)
    app.commit()
    return result.app_hash


@settings(max_examples=25)
@given(st.lists(block_st, min_size=2, max_size=8))
def test_random_blocks_keep_invariants_and_replicate(blocks):
    built = _build(blocks)
    genesis_doc = _genesis()
    half = len(built) // 2
    with tempfile.TemporaryDirectory() as tmp:
        a = ExchangeApp(genesis_doc)
        b = ExchangeApp(genesis_doc)
        store = Store(Path(tmp) / "data")
        c = ExchangeApp(genesis_doc, store)
        assert a.app_hash == b.app_hash == c.app_hash
        for i, block in enumerate(built):
            if i == half:
                store.close()
                store = Store(Path(tmp) / "data")
                c = ExchangeApp(genesis_doc, store)
                assert c.app_hash == a.app_hash
                assert c.state_summary() == a.state_summary()
            ha, hb, hc = _run(a, block), _run(b, block), _run(c, block)
            assert ha == hb == hc
            _check_invariants(a)
        store.close()


@settings(max_examples=10)
@given(st.lists(block_st, min_size=1, max_size=5))
def test_app_hash_matches_full_recomputation(blocks):
    """The incremental commitment equals a from-scratch rebuild of the stored state."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "data")
        app = ExchangeApp(_genesis(), store)
        for block in _build(blocks):
            _run(app, block)
        store.close()
        store = Store(Path(tmp) / "data")
        assert ExchangeApp(_genesis(), store).app_hash == app.app_hash
        store.close()


def test_conditional_kinds_are_registered():
    assert OrderType.TAKE_PROFIT_LIMIT == 5
