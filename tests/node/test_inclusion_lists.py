"""Inclusion lists on the node side (issue 15): the mempool remembers when each tx was
admitted and a validator lists, in its precommit, the oldest orders and cancels that have
waited long enough and that the block does not carry, within the chain's caps; a node
whose own proposals censor one trader still commits that trader's order by the next
block, through the forced path, and answers the tx query with its height."""

from __future__ import annotations

import time
from pathlib import Path

import trio

from appchaind.abci import TxResult
from appchaind.chain import codec, types
from appchaind.chain.codes import Code
from appchaind.chain.crypto import PrivateKey
from appchaind.chain.signatures import SignatureVerifier
from appchaind.consensus.effects import RequestPrepareProposal
from appchaind.exchange.inclusion import listable
from appchaind.exchange.txs import CancelAll, Transfer, Withdraw
from appchaind.node.mempool import Mempool
from appchaind.node.node import Node
from appchaind.rpc.server import RpcServer
from tests.exchange.support import BUY, limit
from tests.node.exchange_node import exchange_node

CHAIN = "inclusion-test"
ME = PrivateKey(b"\x01" * 32)
TRADER = PrivateKey(b"\x05" * 32)
OTHER = PrivateKey(b"\x06" * 32)


def _tx(key: PrivateKey, nonce: int, body: object) -> bytes:
    return codec.encode(types.sign_tx(key, CHAIN, nonce, 100, body))


async def test_the_oldest_listable_txs_admitted_long_enough_ago_are_listed() -> None:
    """Admitted at height 0: an order, a transfer, a cancel-all, a withdraw; at height 1:
    another order. Listed for ``admitted_by`` 0: the order and the cancel-all (oldest
    first, orders and cancels only); for 1, the later order too; never a tx of the block;
    at most ``max_txs``, and a tx that would pass ``max_bytes`` is passed over."""
    verifier = SignatureVerifier(threads=1)
    pool = Mempool(chain_id=CHAIN, check_tx=lambda raw, tx: TxResult(Code.OK), verifier=verifier)
    order = _tx(TRADER, 1, limit(0, BUY, 65000, 1))
    transfer = _tx(TRADER, 2, Transfer(OTHER.address, 1))
    cancel = _tx(OTHER, 3, CancelAll(0, True))
    withdraw = _tx(OTHER, 4, Withdraw(1))
    later = _tx(OTHER, 5, limit(0, BUY, 64000, 2))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(verifier.run)
        for raw in (order, transfer, cancel, withdraw):
            assert (await pool.add(raw)).accepted
        pool.update(1, [])
        assert (await pool.add(later)).accepted
        nursery.cancel_scope.cancel()

    def listed(admitted_by: int, exclude: frozenset[bytes] = frozenset(), **caps: int):
        limits = {"max_txs": 32, "max_bytes": 16384, **caps}
        return pool.inclusion_list(admitted_by, exclude, listable=listable, **limits)

    assert listed(0) == [order, cancel]
    assert listed(1) == [order, cancel, later]
    assert listed(1, frozenset({order})) == [cancel, later]
    assert listed(1, max_txs=2) == [order, cancel]
    assert len(later) > len(cancel)
    assert listed(1, max_bytes=len(order) + len(cancel)) == [order, cancel]
    assert listed(1, frozenset({cancel}), max_bytes=len(order) + len(cancel)) == [order]
    assert listed(1, max_bytes=len(cancel)) == [cancel]
    assert listed(-1) == []


def _node(tmp_path: Path) -> Node:
    return exchange_node(tmp_path, CHAIN, ME, [("trader", TRADER.address, "100000")])


async def test_a_censoring_proposer_cannot_keep_an_order_out_of_the_next_block(
    tmp_path: Path,
) -> None:
    """The node's own proposals drop every tx of the trader (a censoring proposer, made
    for this test). Its precommit of the first block that dropped the order lists it, so
    the next block executes it after its own txs: the tx index and the RPC ``tx`` query
    answer with that height and an index past the block's txs, the block's forced txs
    hold it, and it left the mempool. With ``inclusion_after_blocks`` 0 nothing is
    listed: the trader's next order stays out, blocks after the first that dropped it."""
    node = _node(tmp_path)
    exchange = node.exchange
    assert exchange is not None
    honest = node._local_block
    #: Per tx of the trader's, the heights whose proposals dropped it.
    dropped: dict[bytes, list[int]] = {}

    def censoring(effect: RequestPrepareProposal) -> list[bytes]:
        kept = []
        for raw in honest(effect):
            if codec.decode(types.Tx, raw).sender == TRADER.public_key:
                dropped.setdefault(raw, []).append(effect.height)
            else:
                kept.append(raw)
        return kept

    def order(nonce: int, size: int) -> bytes:
        body = limit(0, BUY, exchange.markets[0].oracle_price, size)
        return codec.encode(types.sign_tx(TRADER, CHAIN, nonce, node.latest_height + 20, body))

    node._local_block = censoring  # type: ignore[method-assign]
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            now = int(time.time() * 1000)
            raw = order(now, 1)
            h = types.tx_hash(raw)
            assert (await node.submit_tx(raw)).accepted
            with trio.fail_after(30):
                while node.tx_location(h) is None:
                    await node.wait_committed(node.latest_height + 1)
            entry = node.tx_location(h)
            assert entry is not None and entry.code == Code.OK
            assert entry.height == dropped[raw][0] + 1
            block = node.block(entry.height)
            assert block is not None and raw not in block.txs
            assert node.forced_txs(entry.height) == [raw]
            assert entry.index == len(block.txs)
            assert not node.is_pending(h)
            answer = await RpcServer(node).call("tx", {"hash": h})
            assert (answer["height"], answer["code"]) == (entry.height, 0)
            doc = await RpcServer(node).call("block", {"height": entry.height})
            assert doc["forced_tx_hashes"] == [h.hex()]
            forced = node.metrics.registry.get_sample_value(
                "appchaind_pbs_forced_inclusions_total", {"chain_id": CHAIN}
            )
            assert forced == 1
            node.config.pbs.inclusion_after_blocks = 0
            unlisted = order(now + 1, 2)
            assert (await node.submit_tx(unlisted)).accepted
            with trio.fail_after(30):
                while unlisted not in dropped:
                    await node.wait_committed(node.latest_height + 1)
                await node.wait_committed(dropped[unlisted][0] + 3)
            assert node.tx_location(types.tx_hash(unlisted)) is None
            assert node.is_pending(types.tx_hash(unlisted))
            nursery.cancel_scope.cancel()
    finally:
        node.wal.close()
        node.store.close()


async def test_a_block_carrying_a_committed_tx_again_leaves_its_result_alone(
    tmp_path: Path,
) -> None:
    """A proposer (made for this test) puts a tx committed two blocks ago into its next
    block again: it fails there as a replay, and the tx index keeps the first commit's
    height and success (the `tx` query must not report a committed order as failed)."""
    node = _node(tmp_path)
    exchange = node.exchange
    assert exchange is not None
    honest = node._local_block
    replay: list[bytes] = []
    replayed_at: list[int] = []

    def replaying(effect: RequestPrepareProposal) -> list[bytes]:
        txs = honest(effect)
        if replay and not replayed_at:
            replayed_at.append(effect.height)
            return [*txs, *replay]
        return txs

    node._local_block = replaying  # type: ignore[method-assign]
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            body = limit(0, BUY, exchange.markets[0].oracle_price, 1)
            raw = codec.encode(
                types.sign_tx(TRADER, CHAIN, int(time.time() * 1000), node.latest_height + 20, body)
            )
            h = types.tx_hash(raw)
            assert (await node.submit_tx(raw)).accepted
            with trio.fail_after(30):
                while node.tx_location(h) is None:
                    await node.wait_committed(node.latest_height + 1)
            first = node.tx_location(h)
            assert first is not None and first.code == Code.OK
            replay.append(raw)
            with trio.fail_after(30):
                while not replayed_at or node.latest_height < replayed_at[0]:
                    await node.wait_committed(node.latest_height + 1)
            block = node.block(replayed_at[0])
            assert block is not None and raw in block.txs  # it was carried again ...
            assert node.tx_location(h) == first  # ... and the first result stands
            nursery.cancel_scope.cancel()
    finally:
        node.wal.close()
        node.store.close()
