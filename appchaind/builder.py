"""``appchaind builder``: a block builder that bids for the validators' blocks.

It joins the validators' p2p network as a peer (with a key of its own for the session),
receives their tx gossip into a pool of its own, and follows the chain on one node's RPC
port (the ``blocks`` stream: heights and the txs they committed, and its bond from the
``builders`` query). After each block it builds the next one from its pool (oldest txs
first, at most ``max_txs``, within the chain's block size and a p2p frame) and sends
every validator, in one message, a bid for it per proposer and round 0 and 1 (and a
fresher one every 50 ms while the height lasts if gossip brought txs that make the
block worth more: the proposer keeps each builder's best bid): each bid
names one proposer, so only the validator whose turn it is can use it, and the others
set it aside; a builder does not need to know the proposer schedule. (The proposers are
the genesis validators: the set does not change yet.)

Strategy: a bid is worth ``fee_share_ppm`` of the fees the block's orders would pay if
they all took liquidity (limit orders at their price; the builder holds no state, so a
market order, whose price is not in the tx, and liquidations count for nothing), plus
``value_per_tx`` per tx it carries; at least the chain's minimum bid and at most its
bond. The builder's account must be registered and bonded first
(``appchaind tx builder register``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trio

from appchaind.chain import codec, types
from appchaind.chain.crypto import PrivateKey, merkle_root
from appchaind.chain.units import to_units
from appchaind.client.library import Client, open_client
from appchaind.exchange.txs import BuilderBid, PlaceOrder
from appchaind.home import HomePaths
from appchaind.node.messages import (
    MEMPOOL_MESSAGES,
    BidMessage,
    TxsMessage,
    decode_message,
    encode_message,
)
from appchaind.rpc.views import QUOTE_UNIT
from appchaind.telemetry.logs import get_logger
from config.genesis import PPM, load_genesis
from config.node_config import load_config
from margin.health import fee
from p2p.peers import Channel, Peer, PeerManager

__all__ = ["Builder", "BuilderStats"]

log = get_logger("builder")

#: Txs kept from gossip at most (the oldest go first).
MAX_POOL = 50_000
#: Rounds of each height the builder bids for.
BID_ROUNDS = (0, 1)
#: Seconds between fresher bids for the same height (sent only when worth more).
REBID_S = 0.05
#: Blocks for which committed txs are remembered and refused from gossip.
REMEMBER_BLOCKS = 50
#: Bytes a bid tx takes at most (its envelope and body), and what the codec adds per tx
#: and per message: room kept when filling a block and a frame.
BID_TX_BYTES = 512
TX_OVERHEAD_BYTES = 8
FRAME_OVERHEAD_BYTES = 1024
#: Percent of the followed node's proposal budget a block may fill: the other proposers'
#: budgets differ (each measures its own costs; at 1,000 orders/s on a loaded machine, 90%
#: was over the proposer's budget in 4-6 of 40 proposals).
BUDGET_SHARE = 75


@dataclass
class BuilderStats:
    """What the builder has done: heights bid for, bids sent, txs received by gossip."""

    heights: int = 0
    bids_sent: int = 0
    txs_received: int = 0
    last_height: int = 0
    last_value: int = 0
    pool: int = 0
    errors: list[str] = field(default_factory=list)


class Builder:
    """A builder for the chain of ``home`` (its genesis, config and p2p peers), bidding
    with ``key`` (a registered builder's account key), following the node at ``node``
    (RPC ``HOST:PORT``; default the home's RPC address)."""

    def __init__(
        self,
        home: Path,
        key: PrivateKey,
        *,
        node: str | None = None,
        value_per_tx: int = 1_000,
        max_txs: int = 2_000,
        fee_share_ppm: int = 500_000,
    ) -> None:
        paths = HomePaths(home)
        self.config = load_config(home)
        self.genesis = load_genesis(paths.genesis)
        self.key = key
        self.chain_id = self.genesis.chain_id
        self.node = node or self.config.rpc.listen_address
        self.value_per_tx = value_per_tx
        if not 0 <= fee_share_ppm <= PPM:
            raise ValueError(f"the fee share must be from 0 to 100%, got {fee_share_ppm / 10_000}%")
        self.fee_share_ppm = fee_share_ppm
        self.markets = {m.market_id: m for m in self.genesis.markets}
        self.max_txs = min(max_txs, self.genesis.params.max_block_txs)
        self.proposers = [v.address for v in self.genesis.validator_set()]
        own = PrivateKey.load(paths.node_key).address.hex()
        peers = [*self.config.p2p.persistent_peers, f"{own}@{self.config.p2p.listen_address}"]
        self.peers = PeerManager(
            node_key=PrivateKey.generate(),
            chain_id=self.chain_id,
            listen_host="127.0.0.1",
            listen_port=0,
            persistent_peers=peers,
            on_message=self._on_message,
            max_frame_bytes=self.config.p2p.max_frame_bytes,
        )
        #: Tx hash -> bytes, oldest first: what gossip brought and no block has committed.
        self.pool: dict[bytes, bytes] = {}
        #: Tx hash -> the height that committed it, for the last REMEMBER_BLOCKS blocks
        #: (in height order).
        self.recent: dict[bytes, int] = {}
        #: Tx hash -> the taker fee the tx (an order) would pay, micro-units (not kept: 0).
        self.fees: dict[bytes, int] = {}
        self.stats = BuilderStats()
        self._nonce = 0
        #: The followed node's proposal budget in txs (its status), once read.
        self.proposal_txs: int | None = None
        #: The bond as last read (None: not registered).
        self.bond: int | None = None
        #: (height, value) of the last bids sent; (height, bond) being bid for now.
        self._last_bid: tuple[int, int] | None = None
        #: The hashes of the bid txs sent since the last block, and their values.
        self._sent: dict[bytes, int] = {}
        self._bidding: tuple[int, int] | None = None

    async def _on_message(self, peer: Peer, channel: int, payload: bytes) -> None:
        if channel != Channel.MEMPOOL:
            return  # consensus and sync traffic: not the builder's business
        message = decode_message(MEMPOOL_MESSAGES, payload, self.config.p2p.max_frame_bytes)
        assert isinstance(message, TxsMessage)
        for raw in message.txs:
            self.add(raw)
        while len(self.pool) > MAX_POOL:
            self.fees.pop(oldest := next(iter(self.pool)), None)
            del self.pool[oldest]
        self.stats.txs_received += len(message.txs)

    def add(self, raw: bytes) -> None:
        """A tx from gossip into the pool, with the fee it would pay as a taker; not one
        committed in the last :data:`REMEMBER_BLOCKS` blocks (peers that commit later
        than the followed node still gossip it, and in a block again it would only fail
        as a replay)."""
        h = types.tx_hash(raw)
        if h in self.pool or h in self.recent:
            return
        self.pool[h] = raw
        fee = self.taker_fee(raw)
        if fee:
            self.fees[h] = fee

    def taker_fee(self, raw: bytes) -> int:
        """The fee (micro-units) the tx ``raw`` pays if it is an order that takes liquidity
        at its limit price; 0 for anything else (or bytes that are not a tx)."""
        try:
            tx = codec.decode(types.Tx, raw)
        except codec.CodecError:
            return 0
        body = tx.body
        market = self.markets.get(body.market_id) if isinstance(body, PlaceOrder) else None
        if market is None or not isinstance(body, PlaceOrder):
            return 0
        return fee(body.price * body.size * market.quantum, max(0, market.taker_fee_ppm))

    def _nonce_ms(self) -> int:
        """A fresh nonce: the current time in ms, strictly increasing."""
        self._nonce = max(self._nonce + 1, int(time.time() * 1000))
        return self._nonce

    def block_txs(self, bids: int) -> tuple[bytes, ...]:
        """The oldest txs of the pool that fit a block: at most ``max_txs`` (and at most
        :data:`BUDGET_SHARE` of the followed node's proposal budget, less the bid: a
        proposer refuses a builder's block larger than it would propose itself), within the
        chain's ``max_block_bytes`` with the bid, and within a p2p frame with ``bids``
        bids."""
        limit = self.max_txs
        if self.proposal_txs is not None:
            limit = min(limit, max(0, self.proposal_txs * BUDGET_SHARE // 100 - 1))
        room = min(
            self.genesis.params.max_block_bytes - BID_TX_BYTES,
            self.config.p2p.max_frame_bytes - bids * BID_TX_BYTES - FRAME_OVERHEAD_BYTES,
        )
        txs: list[bytes] = []
        for raw in self.pool.values():
            if len(txs) >= limit or len(raw) + TX_OVERHEAD_BYTES > room:
                break
            txs.append(raw)
            room -= len(raw) + TX_OVERHEAD_BYTES
        return tuple(txs)

    def bids_for(self, height: int, bond: int) -> BidMessage | None:
        """The bids for the block at ``height``, one per validator and round in
        :data:`BID_ROUNDS`, all for the same txs (the oldest of the pool), in one
        message; None when the bond cannot cover the minimum bid, or when it would be
        worth no more than the last bid sent for this height (a proposer keeps a
        builder's best bid: a new one must be worth more to replace it)."""
        txs = self.block_txs(len(self.proposers) * len(BID_ROUNDS))
        params = self.genesis.params
        fees = sum(self.fees.get(types.tx_hash(raw), 0) for raw in txs)
        value = self.value_per_tx * len(txs) + fees * self.fee_share_ppm // PPM
        value = min(bond, max(params.min_builder_bid, value))
        if value < params.min_builder_bid:
            return None
        if self._last_bid is not None and self._last_bid >= (height, value):
            return None
        self._last_bid = (height, value)
        self.stats.last_value = value
        bids = self.sign_bids(height, value, merkle_root(list(txs)))
        self._sent.update((types.tx_hash(bid), value) for bid in bids)
        return BidMessage(bids, txs)

    def sign_bids(self, height: int, value: int, txs_hash: bytes) -> tuple[bytes, ...]:
        """Bids of ``value`` for the block at ``height`` whose txs hash to ``txs_hash``:
        one per proposer and round of :data:`BID_ROUNDS`, signed."""
        bids = []
        for proposer in self.proposers:
            for round in BID_ROUNDS:
                body = BuilderBid(height, round, proposer, value, txs_hash)
                tx = types.sign_tx(self.key, self.chain_id, self._nonce_ms(), height + 5, body)
                bids.append(codec.encode(tx))
        return tuple(bids)

    def committed(self, tx_hashes: Sequence[str], height: int = 0) -> None:
        """The txs of the block at ``height`` leave the pool, and are remembered."""
        for h in tx_hashes:
            self.pool.pop(key := bytes.fromhex(h), None)
            self.fees.pop(key, None)
            self.recent[key] = height
        while self.recent and next(iter(self.recent.values())) < height - REMEMBER_BLOCKS:
            del self.recent[next(iter(self.recent))]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Bid after every block, and again every :data:`REBID_S` while the height lasts
        if gossip brought txs that make the block worth more, until cancelled."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.peers.run)
            async with open_client(self.node) as client:
                blocks = await client.subscribe("blocks")
                task_status.started()
                nursery.start_soon(self._rebid)
                await self._refresh(client)
                async for block in blocks:
                    self.committed(block["tx_hashes"], int(block["height"]))
                    self._paid(block["tx_hashes"])
                    height = int(block["height"]) + 1
                    # Bid at once with the bond and budget last read (a bid worth more
                    # than the bond is refused, not paid); read them again after.
                    if self.bond is not None:
                        self._bidding = (height, self.bond)
                        self._send(self.bids_for(height, self.bond))
                    await self._refresh(client)
                    if self.bond is None:
                        self._bidding = None
                    elif self._bidding != (height, self.bond):
                        self._bidding = (height, self.bond)
                        self._send(self.bids_for(height, self.bond))
                    self.stats.heights += 1
                    self.stats.last_height = height
                    self.stats.pool = len(self.pool)
            nursery.cancel_scope.cancel()

    def _paid(self, tx_hashes: Sequence[str]) -> None:
        """If the block committed one of our bids, its value left the bond."""
        for h in tx_hashes:
            value = self._sent.get(bytes.fromhex(h))
            if value is not None and self.bond is not None:
                self.bond -= value
                break
        self._sent.clear()

    async def _refresh(self, client: Client) -> None:
        """Reads the builder's bond (None: not registered) and the followed node's
        proposal budget."""
        address = self.key.address.hex()
        mine = [b for b in (await client.builders())["builders"] if b["address"] == address]
        if not mine:
            self.bond = None
            self.stats.errors.append(f"{address} is not a registered builder")
        else:
            self.bond = to_units(mine[0]["bond"], QUOTE_UNIT, "bond")
        self.proposal_txs = (await client.status()).get("proposal_txs")

    async def _rebid(self) -> None:
        """A fresher block for the height being bid for, when it is worth more: a
        proposer takes the block when its turn comes, and txs that arrived since the
        last bid would otherwise wait for the next height."""
        while True:
            await trio.sleep(REBID_S)
            if self._bidding is not None:
                self._send(self.bids_for(*self._bidding))

    def _send(self, message: BidMessage | None) -> None:
        if message is not None:
            self.peers.broadcast(Channel.BUILDER, encode_message(message))
            self.stats.bids_sent += len(message.bids)
