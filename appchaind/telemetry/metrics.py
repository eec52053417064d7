"""Prometheus metrics with CometBFT's names under the ``appchaind_`` namespace.

Each node has its own registry (several nodes can run in one test process).
Values are set from the components' ``statistics()`` records at scrape time or
when an event happens (a commit); metrics never reach into internals.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["NodeMetrics"]

NS = "appchaind"


class NodeMetrics:
    def __init__(self, chain_id: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        labels = ["chain_id"]
        self._chain = chain_id
        #: (id of a metric, market or None) -> its child labelled with this chain.
        self._children: dict[tuple[int, str | None], Any] = {}
        self.chain_id = chain_id

        # Every metric labelled by the chain alone is exposed from the start (a counter at
        # 0): a series that appeared only once something happened left dashboard panels
        # blank and rate() alerts without data on a healthy node.
        def gauge(subsystem: str, name: str, doc: str) -> Gauge:
            metric = Gauge(name, doc, labels, namespace=NS, subsystem=subsystem, registry=r)
            metric.labels(chain_id=chain_id)
            return metric

        def counter(subsystem: str, name: str, doc: str) -> Counter:
            metric = Counter(name, doc, labels, namespace=NS, subsystem=subsystem, registry=r)
            metric.labels(chain_id=chain_id)
            return metric

        def histogram(subsystem: str, name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            metric = Histogram(
                name, doc, labels, namespace=NS, subsystem=subsystem, registry=r, buckets=buckets
            )
            metric.labels(chain_id=chain_id)
            return metric

        # consensus
        self.height = gauge("consensus", "height", "Height of the latest committed block.")
        self.rounds = gauge("consensus", "rounds", "Round in which the latest block was committed.")
        self.validators = gauge("consensus", "validators", "Number of validators.")
        self.validators_power = gauge("consensus", "validators_power", "Total voting power.")
        self.missing_validators = gauge(
            "consensus", "missing_validators", "Validators that did not sign the last commit."
        )
        self.byzantine_validators = gauge(
            "consensus", "byzantine_validators", "Validators with evidence in the last block."
        )
        self.num_txs = gauge("consensus", "num_txs", "Transactions in the latest block.")
        self.total_txs = counter("consensus", "total_txs", "Transactions committed since start.")
        self.block_size_bytes = gauge(
            "consensus", "block_size_bytes", "Bytes of the latest block's txs."
        )
        self.latest_block_height = gauge(
            "consensus", "latest_block_height", "Latest block height known to this node."
        )
        self.block_interval = histogram(
            "consensus",
            "block_interval_seconds",
            "Time between this and the previous block (BFT time).",
            (0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30),
        )
        self.fast_syncing = gauge("consensus", "fast_syncing", "1 while block sync is catching up.")
        self.double_sign_refused = counter(
            "consensus", "double_sign_refused", "Signatures refused by the double-sign guard."
        )
        # mempool
        self.mempool_size = gauge("mempool", "size", "Transactions in the mempool.")
        self.mempool_size_bytes = gauge(
            "mempool", "size_bytes", "Bytes of transactions in the mempool."
        )
        self.mempool_failed_txs = counter(
            "mempool", "failed_txs", "Transactions refused by the mempool."
        )
        self.mempool_recheck_times = counter("mempool", "recheck_times", "Transactions re-checked.")
        self.mempool_evicted_txs = counter("mempool", "evicted_txs", "Transactions evicted.")
        self.mempool_gossip_dropped_txs = counter(
            "mempool",
            "gossip_dropped_txs",
            "Transactions gossiped by peers and dropped unread because admission was busy.",
        )
        self.mempool_busy_txs = counter(
            "mempool", "busy_txs", "Transactions refused because the node was busy (code BUSY)."
        )
        self.mempool_backlog_limit = gauge(
            "mempool",
            "backlog_limit",
            "Transactions waiting beyond which new ones are refused as busy (a few blocks' worth).",
        )
        self.block_budget_txs = gauge(
            "consensus",
            "block_budget_txs",
            "Transactions this node puts in a proposal at most now.",
        )
        # p2p
        self.p2p_peers = gauge("p2p", "peers", "Connected peers.")
        self.p2p_receive_bytes = counter("p2p", "peer_receive_bytes", "Bytes received from peers.")
        self.p2p_send_bytes = counter("p2p", "peer_send_bytes", "Bytes sent to peers.")
        self.p2p_dropped = counter("p2p", "peers_dropped", "Peers disconnected for any reason.")
        # block sync
        self.blocksync_syncing = gauge("blocksync", "syncing", "1 while block sync is active.")
        self.blocksync_blocks = counter(
            "blocksync", "blocks_applied", "Blocks applied by block sync."
        )
        # state
        self.block_processing = histogram(
            "state",
            "block_processing_time",
            "Time to finalize and commit a block, in seconds.",
            (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.gc_pause = histogram(
            "state",
            "gc_pause_seconds",
            "Garbage collections the node ran after commits (young ones every commit, a full "
            "one every few thousand), in seconds.",
            (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.disk_free_bytes = gauge(
            "state",
            "disk_free_bytes",
            "Bytes free (to this user) on the data directory's filesystem.",
        )
        self.disk_total_bytes = gauge(
            "state", "disk_total_bytes", "Size in bytes of the data directory's filesystem."
        )

        # exchange (set after each commit from the application's state and events)
        market_labels = ["chain_id", "market"]

        def market_gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, market_labels, namespace=NS, subsystem="exchange", registry=r)

        def market_counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, market_labels, namespace=NS, subsystem="exchange", registry=r)

        self.oracle_price = market_gauge("oracle_price", "Oracle price (decimal quote units).")
        self.mid_price = market_gauge(
            "mid_price", "Mid of the best bid and ask (0 when one-sided)."
        )
        self.open_interest = market_gauge("open_interest", "Open interest (base units, longs).")
        self.funding_rate = market_gauge(
            "funding_rate", "Last funding rate (fraction per interval)."
        )
        self.resting_orders = market_gauge("resting_orders", "Orders resting in the book.")
        self.fills = market_counter("fills", "Fills since start.")
        self.volume = market_counter("volume", "Traded size since start (base units).")
        self.liquidations = market_counter(
            "liquidations", "Liquidation steps (book, insurance, adl) since start."
        )
        self.insurance_fund = gauge(
            "exchange", "insurance_fund", "Insurance fund balance (quote units)."
        )
        self.accounts = gauge("exchange", "accounts", "Accounts in the state.")
        # staking (issue 17)
        self.staking_validators = gauge(
            "staking", "validators", "Validators in the set the stake chose (power above 0)."
        )
        self.staking_registered = gauge(
            "staking",
            "registered_validators",
            "Validators in the staking state, in the set or not.",
        )
        self.staking_bonded = gauge(
            "staking", "bonded", "Stake bonded to validators (quote units)."
        )
        self.staking_unbonding = gauge(
            "staking", "unbonding", "Undelegated stake not yet released (quote units)."
        )
        self.staking_jailed = gauge(
            "staking", "jailed", "Validators jailed for downtime or tombstoned."
        )
        self.staking_tombstoned = gauge(
            "staking", "tombstoned", "Validators tombstoned for duplicate votes (for good)."
        )
        self.staking_rewards_unpaid = gauge(
            "staking",
            "rewards_unpaid",
            "Rewards (fees and proposers' bid shares) handed to validators and not yet "
            "collected by their operators and delegators (quote units).",
        )
        self.staking_slashed = counter(
            "staking",
            "slashed",
            "Stake slashed from validators (quote units; the chain's "
            "total, counted from this node's start).",
        )
        self.staking_missed_blocks = Gauge(
            "missed_blocks",
            "Blocks of the downtime window each validator missed (only those that missed any).",
            ["chain_id", "operator"], namespace=NS, subsystem="staking", registry=r,
        )  # fmt: skip
        self.staking_power = Gauge(
            "validator_power",
            "Voting power the application gave consensus for each validator (0: outside the "
            "set; in effect two heights after the block).",
            ["chain_id", "operator"], namespace=NS, subsystem="staking", registry=r,
        )  # fmt: skip
        # rpc
        self.rpc_connections = gauge("rpc", "connections", "Open RPC connections.")
        self.rpc_broadcast_seconds = histogram(
            "rpc",
            "broadcast_tx_seconds",
            "From a broadcast_tx request read off the RPC socket to its answer queued "
            "(mode sync: the admission verdict).",
            (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.rpc_subscriptions = gauge("rpc", "subscriptions", "Active RPC subscriptions.")
        self.rpc_dropped_subscribers = counter(
            "rpc", "dropped_subscribers", "Subscribers dropped as too slow."
        )

        # connections: failures contained by appchaind.containment, per port and reason
        self.connections_failed = Counter(
            "failed",
            "Connections (and tasks for one outside party) ended by a contained failure.",
            ["chain_id", "port", "reason"],
            namespace=NS,
            subsystem="connections",
            registry=r,
        )

        # proposer-builder separation
        def labelled(name: str, doc: str, label: str) -> Counter:
            return Counter(
                name, doc, ["chain_id", label], namespace=NS, subsystem="pbs", registry=r
            )

        self.pbs_bids = labelled(
            "bids", "Builder bids kept for our blocks, per builder.", "builder"
        )
        self.pbs_refused_bids = labelled(
            "refused_bids", "Builder bids refused on arrival (not for us, not now, ...).", "reason"
        )
        self.pbs_rejected_bids = labelled(
            "rejected_bids", "Bids that did not hold when we proposed (best first).", "reason"
        )
        self.pbs_local_fallback = labelled(
            "local_fallback", "Our turns to propose that used our own block.", "reason"
        )
        self.pbs_rejected_proposals = labelled(
            "rejected_proposals", "Others' proposals we rejected (prevote nil).", "reason"
        )
        self.pbs_forced_inclusions = counter(
            "pbs",
            "forced_inclusions",
            "Txs of inclusion lists that no block carried, executed at the end of a block.",
        )
        self.pbs_winning_bid_value = gauge(
            "pbs", "winning_bid_value", "Value of our last winning bid (quote units)."
        )
        self.pbs_auction_wait_seconds = histogram(
            "pbs", "auction_wait_seconds", "How long our turn waited for bids.",
            (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1),
        )  # fmt: skip
        self.pbs_bid_arrival_seconds = histogram(
            "pbs", "bid_arrival_seconds", "When bids arrive, from the start of the height.",
            (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
        )  # fmt: skip

    def connection_failed(self, port: str, reason: str) -> None:
        """Counts one failure contained on ``port`` (a ``ConnectionGuard`` hook)."""
        self.connections_failed.labels(chain_id=self._chain, port=port, reason=reason).inc()

    # The labelled children are looked up once: prometheus-client's labels() takes a lock
    # and builds the label tuple on every call (4% of a synced block's cost, a dozen
    # calls per block).
    def _child(self, metric: Any, market: str | None = None) -> Any:
        key = (id(metric), market)
        child = self._children.get(key)
        if child is None:
            if market is None:
                child = metric.labels(chain_id=self._chain)
            else:
                child = metric.labels(chain_id=self._chain, market=market)
            self._children[key] = child
        return child

    def set_market(self, metric: Gauge, market: str, value: float) -> None:
        self._child(metric, market).set(value)

    def inc_market(self, metric: Counter, market: str, amount: float = 1) -> None:
        self._child(metric, market).inc(amount)

    def labels(self, metric: Gauge | Counter | Histogram) -> Gauge | Counter | Histogram:
        child: Gauge | Counter | Histogram = self._child(metric)
        return child

    def set(self, metric: Gauge, value: float) -> None:
        self._child(metric).set(value)

    def inc(self, metric: Counter, amount: float = 1) -> None:
        self._child(metric).inc(amount)

    def observe(self, metric: Histogram, value: float) -> None:
        self._child(metric).observe(value)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        out: bytes = generate_latest(self.registry)
        return out
