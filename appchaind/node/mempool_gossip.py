"""The mempool channel: txs from clients and peers into the mempool, and out to peers.

Admitted txs (from the RPC/HTTP ports or a peer) are gossiped to every peer in batches
every ``GOSSIP_INTERVAL_S``, each batch sized to fit one p2p frame. A peer's tx message
is admitted in a task of its own, at most ``MAX_GOSSIP_TASKS`` at once; beyond that the
message is dropped and counted (:attr:`MempoolGossip.dropped_total`), never waited for:
the peer's connection also carries its consensus messages, which must not queue behind
txs this node has no CPU to admit (the txs stay in the mempools of the nodes that
admitted them, and reach a block through those). A failure while admitting one peer's
batch ends that batch only (``appchaind.containment``).
"""

from __future__ import annotations

from collections.abc import Sequence

import trio

from appchaind.containment import ConnectionGuard, FailureHook
from appchaind.node.mempool import AddResult, Mempool
from appchaind.node.messages import TxsMessage, encode_message
from appchaind.telemetry.metrics import NodeMetrics
from p2p.peers import Channel, PeerManager

__all__ = ["MempoolGossip", "MAX_GOSSIP_TASKS"]

#: Gossiped tx messages admitted concurrently (each a task); peers wait beyond that.
MAX_GOSSIP_TASKS = 32
GOSSIP_INTERVAL_S = 0.02
#: At most this many txs in one gossip message.
MAX_BATCH_TXS = 5000


class MempoolGossip:
    """The mempool channel of one node. Start with ``nursery.start(gossip.run)``."""

    def __init__(
        self,
        mempool: Mempool,
        peers: PeerManager,
        metrics: NodeMetrics,
        max_frame_bytes: int,
        on_failure: FailureHook | None = None,
    ) -> None:
        self.mempool = mempool
        self.peers = peers
        self.metrics = metrics
        self.max_frame_bytes = max_frame_bytes
        #: Admitted txs not yet gossiped, oldest first.
        self.outbox: list[bytes] = []
        self._slots = trio.Semaphore(MAX_GOSSIP_TASKS)
        #: Gossiped txs dropped because every admission slot was busy.
        self.dropped_total = 0
        self._guard = ConnectionGuard("mempool_gossip", on_failure=on_failure)
        self._nursery: trio.Nursery | None = None

    async def submit(self, raws: Sequence[bytes]) -> list[AddResult]:
        """Admits clients' txs (RPC/HTTP) and gossips those accepted."""
        results = await self.mempool.add_from_clients(raws)
        for raw, result in zip(raws, results, strict=True):
            if result.accepted:
                self.outbox.append(raw)
        # (appchaind_mempool_size is read at scrape time: node/collector.py.)
        return results

    def on_txs(self, message: TxsMessage, peer_id: str) -> None:
        """A peer's tx message: admitted in a task of its own if a slot is free, else
        dropped (counted). Never waits: the peer's reader goes on to its next message."""
        assert self._nursery is not None, "MempoolGossip.run is not running"
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            self.dropped_total += len(message.txs)
            return
        self._nursery.start_soon(self._admit_from_peer, message.txs, peer_id)

    async def _admit_from_peer(self, txs: tuple[bytes, ...], peer_id: str) -> None:
        try:
            await self._guard.run(self._admit, txs, peer=peer_id)
        finally:
            self._slots.release()

    async def _admit(self, txs: tuple[bytes, ...]) -> None:
        # One batch: the new txs' signatures are checked together on the worker threads.
        for raw, result in zip(txs, await self.mempool.add_many(txs), strict=True):
            if result.accepted:
                self.outbox.append(raw)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await self._gossip_loop()

    async def _gossip_loop(self) -> None:
        while True:
            await trio.sleep(GOSSIP_INTERVAL_S)
            if self.outbox:
                self.gossip_batch()

    def gossip_batch(self) -> None:
        """Sends the oldest waiting txs that fit in one p2p frame to every peer."""
        # The frame holds the channel byte, the message tag and list header, and up to 5
        # bytes of msgpack length per tx: a larger batch could not be sent at all.
        budget = self.max_frame_bytes - 16
        count, size = 0, 0
        for raw in self.outbox[:MAX_BATCH_TXS]:
            if count and size + len(raw) + 5 > budget:
                break
            count, size = count + 1, size + len(raw) + 5
        batch, self.outbox = self.outbox[:count], self.outbox[count:]
        self.peers.broadcast(Channel.MEMPOOL, encode_message(TxsMessage(tuple(batch))))
