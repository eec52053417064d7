"""The one place that turns components' ``statistics()`` into the node's metrics.

Components never reach into each other for metrics (trio's style): the peer manager,
the mempool, the RPC server and the exchange each expose a frozen ``statistics()``
record, and :class:`MetricsCollector` reads them when Prometheus scrapes
(:meth:`render`) and after each commit (:meth:`on_commit`, a node ``on_commit``
listener: the exchange's per-market gauges and its event counters). Consensus metrics
(heights, rounds, block intervals) are set by the node as it commits.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import TYPE_CHECKING

from prometheus_client import Counter

from appchaind.abci import FinalizeResult
from appchaind.chain.types import Block

if TYPE_CHECKING:
    from appchaind.node.node import Node
    from appchaind.rpc.server import RpcServer

__all__ = ["MetricsCollector"]


class MetricsCollector:
    """Sets ``node.metrics`` from the statistics of the node's components."""

    def __init__(self, node: Node, rpc: RpcServer | None = None) -> None:
        self.node = node
        self.rpc = rpc
        exchange = node.exchange
        self._markets = [] if exchange is None else [m.params for m in exchange.markets]
        #: What each counter fed from a component's running total has been advanced to.
        self._fed: dict[str, int] = {}

    def render(self) -> bytes:
        """The Prometheus exposition, with the scrape-time gauges refreshed first."""
        self.collect()
        return self.node.metrics.render()

    def collect(self) -> None:
        """Gauges read at scrape time: peers, mempool, sync mode, RPC connections."""
        node, m = self.node, self.node.metrics
        peers = node.peers.statistics()
        m.set(m.p2p_peers, peers.peers)
        self._advance(m.p2p_receive_bytes, "received", peers.bytes_received)
        self._advance(m.p2p_send_bytes, "sent", peers.bytes_sent)
        self._advance(m.p2p_dropped, "dropped", peers.dropped_total)
        pool = node.mempool.statistics()
        m.set(m.mempool_size, pool.size)
        m.set(m.mempool_size_bytes, pool.size_bytes)
        self._advance(m.mempool_failed_txs, "failed", pool.rejected_total)
        self._advance(m.mempool_evicted_txs, "evicted", pool.evicted_total)
        self._advance(m.mempool_recheck_times, "rechecked", pool.rechecked_total)
        self._advance(m.mempool_busy_txs, "busy", pool.busy_total)
        self._advance(
            m.mempool_gossip_dropped_txs, "gossip_dropped", node.mempool_gossip.dropped_total
        )
        m.set(m.mempool_backlog_limit, pool.backlog_limit)
        try:
            disk = os.statvfs(node.paths.data)
        except OSError:
            pass  # the data directory is gone: the node will say so where it writes
        else:
            m.set(m.disk_free_bytes, disk.f_bavail * disk.f_frsize)
            m.set(m.disk_total_bytes, disk.f_blocks * disk.f_frsize)
        m.set(m.fast_syncing, 1 if node.syncing else 0)
        m.set(m.blocksync_syncing, 1 if node.syncing else 0)
        if self.rpc is not None:
            rpc = self.rpc.statistics()
            m.set(m.rpc_connections, rpc.connections)
            m.set(m.rpc_subscriptions, rpc.subscriptions)
            self._advance(m.rpc_dropped_subscribers, "subscribers_dropped", rpc.dropped_subscribers)

    def _advance(self, counter: Counter, key: str, total: int, unit: float = 1) -> None:
        """Advances ``counter`` to a component's running ``total`` (counters only grow),
        counted in ``unit``s of it (1e6: micro-units counted in quote units)."""
        done = self._fed.get(key, 0)
        if total > done:
            self.node.metrics.inc(counter, (total - done) / unit)
            self._fed[key] = total

    def on_commit(self, block: Block, hashes: list[bytes], result: FinalizeResult) -> None:
        """The exchange's gauges as of this block, and its fills, volume and liquidations."""
        exchange = self.node.exchange
        if exchange is None:
            return
        m = self.node.metrics
        stats = exchange.statistics()
        for market in stats.markets:
            p = self._markets[market.market_id]
            tick, lot = Decimal(p.tick_size), Decimal(p.lot_size)
            m.set_market(m.oracle_price, p.symbol, float(market.oracle_price * tick))
            bid, ask = market.best_bid, market.best_ask
            mid = (bid + ask) * tick / 2 if bid is not None and ask is not None else 0
            m.set_market(m.mid_price, p.symbol, float(mid))
            m.set_market(m.open_interest, p.symbol, float(market.open_interest * lot))
            m.set_market(m.funding_rate, p.symbol, market.funding_rate_ppm / 1e6)
            m.set_market(m.resting_orders, p.symbol, market.resting_orders)
        m.set(m.insurance_fund, stats.clearing.insurance_fund / 1e6)
        m.set(m.accounts, stats.clearing.accounts)
        staking = stats.staking
        m.set(m.staking_validators, staking.in_set)
        m.set(m.staking_registered, staking.validators)
        m.set(m.staking_bonded, staking.bonded / 1e6)
        m.set(m.staking_unbonding, staking.unbonding / 1e6)
        m.set(m.staking_jailed, staking.jailed)
        m.set(m.staking_tombstoned, staking.tombstoned)
        m.set(m.staking_rewards_unpaid, staking.rewards_unpaid / 1e6)
        self._advance(m.staking_slashed, "slashed", staking.slashed_total, 1e6)
        m.staking_missed_blocks.clear()
        for operator, missed in staking.missed_blocks:
            m.staking_missed_blocks.labels(m.chain_id, operator.hex()).set(missed)
        for operator, _moniker, power in staking.powers:
            m.staking_power.labels(m.chain_id, operator.hex()).set(power)
        # Summed per market first: a labelled counter's update costs more than the sum.
        count = len(self._markets)
        fills, lots, liquidations = [0] * count, [0] * count, [0] * count
        events = [e for o in result.tx_results for e in o.events] + list(result.events)
        for kind, attributes in events:
            market_id = attributes.get("market")
            if type(market_id) is not int or not 0 <= market_id < count:
                continue
            if kind == "fill":
                size = attributes["size"]
                assert isinstance(size, int)
                fills[market_id] += 1
                lots[market_id] += size
            elif kind == "liquidation":
                liquidations[market_id] += 1
        for market_id, p in enumerate(self._markets):
            if fills[market_id]:
                m.inc_market(m.fills, p.symbol, fills[market_id])
                m.inc_market(m.volume, p.symbol, float(lots[market_id] * Decimal(p.lot_size)))
            if liquidations[market_id]:
                m.inc_market(m.liquidations, p.symbol, liquidations[market_id])
