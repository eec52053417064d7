"""The builder process's blocks and bids (appchaind/builder.py, issue 15): a block that
every proposer can take — within the chain's limits, a p2p frame and the proposal budget
the followed node reports — and one message of bids, one per proposer and round, each
signed and naming the block's txs hash."""

from __future__ import annotations

from pathlib import Path

from appchaind import builder as builder_module
from appchaind.builder import BID_ROUNDS, Builder
from appchaind.chain import codec, types
from appchaind.chain.crypto import PrivateKey, merkle_root
from appchaind.exchange.txs import BuilderBid, Faucet
from appchaind.home import demo_genesis, init_home
from margin.health import fee
from tests.exchange.support import BUY, limit

CHAIN = "builder-test"
VALIDATORS = [PrivateKey(bytes([i]) * 32) for i in (1, 2, 3)]
KEY = PrivateKey(b"\x09" * 32)


def _builder(tmp_path: Path, **overrides: object) -> Builder:
    genesis = demo_genesis(
        CHAIN, [(f"v{i}", k, 10) for i, k in enumerate(VALIDATORS)], [], "2026-01-01T00:00:00Z"
    )
    init_home(
        tmp_path / "home", moniker="b", chain_id=CHAIN, genesis_time="2026-01-01T00:00:00Z",
        genesis_doc=genesis,
    )  # fmt: skip
    return Builder(tmp_path / "home", KEY, **overrides)  # type: ignore[arg-type]


def _fill(b: Builder, count: int, size: int) -> list[bytes]:
    raws = [i.to_bytes(4, "big") * (size // 4) for i in range(count)]
    for raw in raws:
        b.pool[types.tx_hash(raw)] = raw
    return raws


def test_a_block_is_the_oldest_txs_within_max_txs_and_the_proposal_budget(
    tmp_path: Path,
) -> None:
    b = _builder(tmp_path, max_txs=50)
    raws = _fill(b, 200, 100)
    assert b.block_txs(6) == tuple(raws[:50])
    # The followed node proposes 40 txs at most now: a block (with its bid) of 90% of it.
    b.proposal_txs = 40
    assert b.block_txs(6) == tuple(raws[: 40 * builder_module.BUDGET_SHARE // 100 - 1])
    b.proposal_txs = 0
    assert b.block_txs(6) == ()


def test_a_block_fits_the_chains_block_bytes_and_a_p2p_frame(tmp_path: Path) -> None:
    b = _builder(tmp_path)
    b.max_txs = 10**9  # only the bytes limit here
    frame = b.config.p2p.max_frame_bytes
    block = b.genesis.params.max_block_bytes
    raws = _fill(b, min(frame, block) // 1000 + 50, 1000)
    txs = b.block_txs(6)
    used = sum(len(t) + builder_module.TX_OVERHEAD_BYTES for t in txs)
    assert used <= min(block, frame) - builder_module.BID_TX_BYTES
    assert txs == tuple(raws[: len(txs)]) and len(txs) < len(raws)
    # One more tx would not have fit.
    assert used + 1000 + builder_module.TX_OVERHEAD_BYTES > min(
        block - builder_module.BID_TX_BYTES,
        frame - 6 * builder_module.BID_TX_BYTES - builder_module.FRAME_OVERHEAD_BYTES,
    )


def test_one_message_holds_a_signed_bid_per_proposer_and_round_for_the_block(
    tmp_path: Path,
) -> None:
    b = _builder(tmp_path, max_txs=5, value_per_tx=1_000_000)
    raws = _fill(b, 8, 64)
    message = b.bids_for(12, bond=100 * 10**6)
    assert message is not None and message.txs == tuple(raws[:5])
    seen = set()
    for raw in message.bids:
        tx = codec.decode(types.Tx, raw)
        assert tx.verify_signature() and tx.sender == KEY.public_key
        assert isinstance(tx.body, BuilderBid)
        assert tx.body.txs_hash == merkle_root(list(message.txs))
        assert (tx.body.height, tx.body.value) == (12, 5 * 10**6)
        seen.add((tx.body.proposer, tx.body.round))
    assert seen == {(k.address, r) for k in VALIDATORS for r in BID_ROUNDS}
    # The bond caps the value; below the chain's minimum bid there is no bid.
    capped = b.bids_for(13, bond=2 * 10**6)
    assert capped is not None
    assert codec.decode(types.Tx, capped.bids[0]).body.value == 2 * 10**6  # type: ignore[attr-defined]
    assert b.bids_for(14, bond=0) is None


def test_a_fresher_bid_for_a_height_goes_only_when_worth_more(tmp_path: Path) -> None:
    """The builder bids again while a height lasts (a proposer takes the block when its
    turn comes, and keeps each builder's best bid): only when gossip brought txs that
    make the block worth more than the last bid; a new height starts afresh."""
    b = _builder(tmp_path, max_txs=100, value_per_tx=1_000_000)
    _fill(b, 3, 64)
    first = b.bids_for(20, bond=10**12)
    assert first is not None and len(first.txs) == 3
    assert b.bids_for(20, bond=10**12) is None  # nothing new: the proposer has it
    raws = [bytes([9, i]) * 32 for i in range(2)]
    for raw in raws:
        b.add(raw)
    fresher = b.bids_for(20, bond=10**12)
    assert fresher is not None and fresher.txs[-2:] == tuple(raws)
    assert b.bids_for(21, bond=10**12) is not None


def test_a_bid_is_a_share_of_the_taker_fees_its_orders_would_pay(tmp_path: Path) -> None:
    """Orders at their limit price are worth the taker fee they would pay (notional =
    ticks x lots x quantum); the bid is fee_share of their sum plus value_per_tx per tx.
    A tx that is not an order adds nothing but its per-tx value; a committed tx leaves
    the pool with its fee."""
    b = _builder(tmp_path, max_txs=10, value_per_tx=10, fee_share_ppm=250_000)
    market = b.genesis.markets[0]
    orders = [
        codec.encode(types.sign_tx(KEY, CHAIN, n, 100, limit(0, BUY, 50_000 + n, 3)))
        for n in range(2)
    ]
    other = codec.encode(types.sign_tx(KEY, CHAIN, 9, 100, Faucet(5)))
    for raw in (*orders, other):
        b.add(raw)
    expected = [fee((50_000 + n) * 3 * market.quantum, market.taker_fee_ppm) for n in range(2)]
    assert [b.fees.get(types.tx_hash(raw), 0) for raw in (*orders, other)] == [*expected, 0]
    message = b.bids_for(7, bond=10**12)
    assert message is not None
    value = codec.decode(types.Tx, message.bids[0]).body.value  # type: ignore[attr-defined]
    assert value == max(b.genesis.params.min_builder_bid, 3 * 10 + sum(expected) // 4)
    b.committed([types.tx_hash(orders[0]).hex()])
    assert types.tx_hash(orders[0]) not in b.fees and len(b.pool) == 2


def test_a_bid_that_won_the_last_block_leaves_the_bond_before_the_next_bid(
    tmp_path: Path,
) -> None:
    """The builder bids for the next height at once with the bond it last read; if the
    block just committed paid one of its bids, that value is taken off first, so the
    next bid never exceeds what is left (a proposer would refuse it and build its own)."""
    b = _builder(tmp_path, max_txs=100, value_per_tx=10**6)
    _fill(b, 4, 64)
    b.bond = 10 * 10**6
    message = b.bids_for(30, bond=b.bond)
    assert message is not None
    won = types.tx_hash(message.bids[3]).hex()
    b._paid(["aa" * 32, won])
    assert b.bond == 6 * 10**6
    b._paid(["bb" * 32])  # a block without our bid: nothing leaves
    assert b.bond == 6 * 10**6


def test_a_committed_tx_gossiped_again_stays_out_of_the_pool(tmp_path: Path) -> None:
    """Peers that commit a block later than the followed node still gossip its txs; the
    builder remembers the txs of the last REMEMBER_BLOCKS blocks and keeps them out of
    its pool (a block carrying one again would only fail it as a replay: a load run
    with the builder had 364 such failures)."""
    b = _builder(tmp_path)
    raws = _fill(b, 3, 64)
    b.committed([types.tx_hash(raws[0]).hex()], height=10)
    b.add(raws[0])
    assert types.tx_hash(raws[0]) not in b.pool and len(b.pool) == 2
    # Long after, it is forgotten (the gossip of a committed tx stops within a block or two).
    b.committed([], height=10 + builder_module.REMEMBER_BLOCKS + 1)
    b.add(raws[0])
    assert types.tx_hash(raws[0]) in b.pool
