"""``appchaind bench load`` (issue 14): offered order flow on a localnet, measured from the
commit stream.

What runs, in order:

1. **A localnet.** A new one (N validators on free loopback ports, in a temporary
   directory, stopped at the end) or a running one (``--dir``) whose nodes it joins.
2. **Funding.** Fresh keys for ``accounts`` traders, each funded by its own faucet tx
   (localnets enable the faucet). Refusals the node calls retryable (a full mempool) are
   sent again; the run starts once every faucet tx is seen committed with code 0.
3. **Senders.** ``senders`` processes (multiprocessing, spawned) each own a slice of the
   accounts and an equal share of the rate. A sender signs its orders a little ahead in
   batches (nonce: a millisecond timestamp unique per account; expiry: ``expiry_blocks``
   past the latest height it saw, refreshed each second) and submits them with
   ``broadcast_tx`` mode ``sync``, round robin over the validators' RPC ports, at the
   scheduled times of an **open loop**: order ``j`` of a sender goes out at
   ``start + j / rate`` whatever the answers to the earlier ones, each on a task of its
   own. It records each accepted tx's hash with its submit time (wall clock), each
   refusal's code, and how late each submission was against its schedule (``sender lag``:
   the generator was the limit if that grows).
4. **Measurement.** This process follows the ``blocks`` stream of node 0 from before the
   funding to the end, recording the arrival time (wall clock) and result code of every tx
   hash. After the senders stop, it waits up to ``grace_s`` for every accepted tx to
   appear in a block, then joins the senders' records with the commits: submit→commit
   latency per order, txs accepted but never committed (loss), refusals by reason, blocks.

The order flow (issue 14): 60% limit orders resting near the oracle price (GTC, 0.02% to
0.5% from it on the passive side), 30% cancels (by client id) of the account's own
limit orders accepted at least a second earlier, 10% IOC orders 0.5% through the oracle
price (they cross the resting orders). The mix is configurable. A cancel slot of an
account with nothing old enough to cancel becomes a limit order, and a limit slot of an
account with ``MAX_RESTING`` orders out becomes a cancel; both are counted.

Rates and figures: ``offered_rate`` is orders submitted per second of the run;
``committed_rate`` is our txs seen committed per second in the steady part of the run
(blocks that arrived after its first ``WARMUP_S`` seconds, at most a quarter of it): a
chain that keeps up commits at the offered rate. Latencies run from the submit call to
the arrival of the block holding the tx. Block figures use the blocks that arrived
during the run: the mean interval is the run's length over their count; the max gap is
the longest time between two block arrivals that overlaps the run (a stall that outlasts
the run counts until the report). Each node's ``appchaind_mempool_size`` at the end tells
a backlog still draining from a loss. Loopback only: every address is 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import random
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import trio

from appchaind.chain import codec, types
from appchaind.chain.codes import Code, retryable
from appchaind.chain.crypto import PrivateKey
from appchaind.chain.units import to_units
from appchaind.client.library import Client, RpcError, open_client
from appchaind.exchange.txs import Faucet
from appchaind.localnet.homes import LocalnetNode, load_localnet
from appchaind.localnet.load_builder import LoadBuilder
from appchaind.localnet.load_report import LoadReport, longest_gap, percentile, prometheus_value
from appchaind.localnet.load_senders import (
    KINDS,
    OrderMix,
    SenderPlan,
    SenderRecord,
    code_name,
    sender_process,
)
from appchaind.localnet.processes import Localnet
from appchaind.rpc.views import QUOTE_UNIT
from config.genesis import load_genesis

__all__ = ["LoadError", "LoadOptions", "LoadReport", "OrderMix", "run_load", "default_senders"]

#: Quote units each account mints from the faucet.
FUNDING = "10000"
#: Orders expire this many blocks after the latest height their sender saw (at most the
#: chain's ``max_tx_lifetime_blocks`` less 5).
EXPIRY_BLOCKS = 300
#: Requests per second a sender puts on one RPC connection at most (half the default
#: ``[rpc] requests_per_second``); more connections per node above that.
RATE_PER_CONNECTION = 500.0
SETUP_DEADLINE_S = 120.0
#: The simulated oracle's walk on a temporary localnet, in ppm per second: the node's
#: default, not the demo localnets' lively 5,000 (under which most resting orders are
#: soon crossed by newer ones and the cancels find nothing to cancel).
ORACLE_STEP_PPM = 500
#: The committed rate is measured after this much of the run (at most a quarter of it),
#: once the first orders have had time to commit.
WARMUP_S = 2.0


class LoadError(Exception):
    """The load run could not be set up or run (the message says what failed)."""


def default_senders() -> int:
    """One sender process per core, at least 2 and at most 8."""
    return max(2, min(8, os.cpu_count() or 2))


@dataclass(frozen=True)
class LoadOptions:
    """What to offer: ``rate`` orders/s in total for ``duration_s`` seconds from
    ``accounts`` accounts through ``senders`` processes; ``grace_s``: how long to wait
    after the last submission for accepted txs to commit."""

    accounts: int = 400
    rate: float = 500.0
    duration_s: float = 10.0
    senders: int = field(default_factory=default_senders)
    mix: OrderMix = field(default_factory=OrderMix)
    grace_s: float = 10.0
    seed: int | None = None
    #: Run the localnet's builder during the load (:mod:`appchaind.localnet.load_builder`).
    builder: bool = False

    def check(self) -> None:
        if self.accounts < self.senders:
            raise ValueError(f"--accounts ({self.accounts}) must be at least --senders")
        if not 1 <= self.senders <= 64:
            raise ValueError(f"--senders must be from 1 to 64, got {self.senders}")
        if not 0 < self.rate <= 100_000:
            raise ValueError(f"--rate must be in (0, 100000] orders/s, got {self.rate}")
        if not 0 < self.duration_s <= 3_600:
            raise ValueError(f"--duration must be in (0, 3600] seconds, got {self.duration_s}")
        if not 0 <= self.grace_s <= 600:
            raise ValueError(f"--grace must be in [0, 600] seconds, got {self.grace_s}")


# ---------------------------------------------------------------------------- commits


class CommitFeed:
    """Follows a node's ``blocks`` stream: per tx hash (hex) its commit (arrival time in
    unix seconds, height, result code); per block (height, header time in ms, arrival
    time, txs)."""

    def __init__(self) -> None:
        self.commits: dict[str, tuple[float, int, int]] = {}
        self.blocks: list[tuple[int, int, float, int]] = []
        self.failure: str | None = None

    async def follow(self, client: Client) -> None:
        subscription = await client.subscribe("blocks")
        try:
            async for item in subscription:
                arrived = time.time()
                height = item["height"]
                self.blocks.append((height, item["time_ms"], arrived, len(item["tx_hashes"])))
                for tx_hash, code in zip(item["tx_hashes"], item["tx_codes"], strict=True):
                    self.commits[tx_hash] = (arrived, height, code)
        except RpcError as exc:
            self.failure = f"the blocks stream ended: {exc}"

    async def wait_committed(self, hashes: list[str], deadline: float) -> set[str]:
        """Waits until every one of ``hashes`` is committed or ``deadline`` (trio time);
        returns those still missing."""
        missing = {h for h in hashes if h not in self.commits}
        while missing and trio.current_time() < deadline:
            if self.failure is not None:
                raise LoadError(self.failure)
            await trio.sleep(0.1)
            missing = {h for h in missing if h not in self.commits}
        return missing


# ---------------------------------------------------------------------------- the run


def _rpc_address(node: LocalnetNode) -> str:
    return f"127.0.0.1:{node.rpc_port}"


class _Run:
    """One load run on running nodes: the commit feed, the funding, the senders, the
    report."""

    def __init__(
        self,
        options: LoadOptions,
        nodes: list[LocalnetNode],
        expiry_blocks: int,
        progress: Callable[[str], None],
        accounts: Path,
    ) -> None:
        self.options = options
        self.nodes = nodes
        self.accounts = accounts
        self.expiry_blocks = expiry_blocks
        self.progress = progress
        self.feed = CommitFeed()
        self.rng = random.Random(options.seed)

    async def main(self) -> LoadReport:
        addresses = [_rpc_address(n) for n in self.nodes]
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(open_client(a)) for a in addresses]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.feed.follow, clients[0])
                keys = [PrivateKey.generate() for _ in range(self.options.accounts)]
                self.progress(f"funding {len(keys)} accounts from the faucet")
                await self._fund(clients, keys)
                builder = None
                if self.options.builder:
                    builder = LoadBuilder(self.accounts, self.nodes)
                    self.progress(f"starting the builder (log {builder.log_path})")
                    stack.callback(builder.stop)
                    await builder.start(clients[0])
                report = await self._measure(addresses, keys)
                if builder is not None:
                    won, paid, fallbacks = await builder.figures(clients[0])
                    report.builder_blocks, report.builder_paid = won, paid
                    report.local_fallbacks = fallbacks
                    report.rejected_bids = await builder.rejected()
                    waits = await builder.waits()
                    report.auction_waits = waits.count
                    report.auction_wait_mean_ms = waits.mean_ms()
                    report.auction_wait_p50_ms = waits.quantile_ms(0.5)
                    report.auction_wait_p99_ms = waits.quantile_ms(0.99)
                nursery.cancel_scope.cancel()
        return report

    async def _fund(self, clients: list[Client], keys: list[PrivateKey]) -> None:
        """A faucet tx from each account, sent again while the node says it is busy, then
        waited for until each is committed with code 0."""
        status = await clients[0].status()
        chain_id, height = status["chain_id"], status["height"]
        amount = to_units(FUNDING, QUOTE_UNIT, "amount")
        nonce = int(time.time() * 1000)
        raws = [
            codec.encode(types.sign_tx(k, chain_id, nonce, height + self.expiry_blocks, Faucet(amount)))
            for k in keys
        ]  # fmt: skip
        waiting = list(range(len(raws)))
        deadline = trio.current_time() + SETUP_DEADLINE_S
        while waiting:
            busy: list[int] = []
            async with trio.open_nursery() as nursery:
                for c, client in enumerate(clients):
                    part = [(i, raws[i]) for i in waiting[c :: len(clients)]]
                    nursery.start_soon(_send_funding, client, part, busy)
            waiting = sorted(busy)
            if waiting:
                if trio.current_time() > deadline:
                    raise LoadError(f"{len(waiting)} faucet txs still refused as busy")
                await trio.sleep(0.3)
        hashes = [types.tx_hash(raw).hex() for raw in raws]
        missing = await self.feed.wait_committed(hashes, deadline)
        if missing:
            raise LoadError(f"{len(missing)} of {len(hashes)} faucet txs were not committed")
        failed = [h for h in hashes if self.feed.commits[h][2] != Code.OK]
        if failed:
            code = self.feed.commits[failed[0]][2]
            raise LoadError(f"{len(failed)} faucet txs failed in their block ({code_name(code)})")

    def _plans(self, addresses: list[str], keys: list[PrivateKey]) -> list[SenderPlan]:
        o = self.options
        share = o.rate / o.senders
        per_node = max(1, math.ceil(share / len(addresses) / RATE_PER_CONNECTION))
        return [
            SenderPlan(
                index=k,
                seeds=tuple(key.seed for key in keys[k :: o.senders]),
                rpc_addresses=tuple(addresses),
                connections_per_node=per_node,
                rate=share,
                offset_s=k / o.rate,
                duration_s=o.duration_s,
                mix=o.mix,
                seed=self.rng.randrange(1 << 32),
                expiry_blocks=self.expiry_blocks,
            )
            for k in range(o.senders)
        ]

    async def _measure(self, addresses: list[str], keys: list[PrivateKey]) -> LoadReport:
        o = self.options
        context = multiprocessing.get_context("spawn")
        processes: list[multiprocessing.process.BaseProcess] = []
        pipes: list[Connection] = []
        records: list[SenderRecord] = []
        try:
            for plan in self._plans(addresses, keys):
                ours, theirs = context.Pipe()
                process = context.Process(
                    target=sender_process, args=(plan, theirs), name=f"load-sender-{plan.index}"
                )
                process.start()
                theirs.close()
                processes.append(process)
                pipes.append(ours)
            for pipe in pipes:
                message = await _receive(pipe, SETUP_DEADLINE_S)
                if message != "ready":
                    raise LoadError(str(message))
            start = time.time() + 0.5
            end = start + o.duration_s
            self.progress(f"offering {o.rate:g} orders/s for {o.duration_s:g} s")
            for pipe in pipes:
                pipe.send(start)
            for pipe in pipes:
                message = await _receive(pipe, o.duration_s + SETUP_DEADLINE_S)
                if not isinstance(message, SenderRecord):
                    raise LoadError(str(message))
                records.append(message)
        finally:
            # Reported senders exit by themselves; after a failure, nobody waits for them.
            for child in processes:
                child.join(timeout=5 if len(records) == len(processes) else 0)
                if child.is_alive():
                    child.kill()
                    child.join()
        accepted = [a for r in records for a in r.accepted]
        last_sent = max((r.last_sent for r in records), default=end)
        grace_deadline = trio.current_time() + max(0.0, last_sent + o.grace_s - time.time())
        hashes = [h for h, _t, _k in accepted]
        missing = await self.feed.wait_committed(hashes, grace_deadline)
        # The mempools first, then the commits again: a tx that left a mempool by a commit
        # in between is seen in its block, not counted as lost (and the mempools are read
        # again after such a block).
        mempools = await trio.to_thread.run_sync(self._mempool_sizes)
        if missing:
            before = len(missing)
            missing = await self.feed.wait_committed(sorted(missing), trio.current_time() + 1)
            if len(missing) < before:
                mempools = await trio.to_thread.run_sync(self._mempool_sizes)
        if missing:
            self.progress(f"{len(missing)} accepted txs not committed after {o.grace_s:g} s")
        report = self._report(records, accepted, len(missing), start, end)
        report.mempools_at_end = mempools
        report.not_committed_sample = sorted(missing)[:5]
        return report

    def _mempool_sizes(self) -> list[int | None]:
        """Each node's ``appchaind_mempool_size`` (None where /metrics did not answer)."""
        sizes: list[int | None] = []
        for node in self.nodes:
            url = f"http://127.0.0.1:{node.http_port}/metrics"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    text = response.read().decode()
            except (OSError, ValueError):
                sizes.append(None)
                continue
            sizes.append(prometheus_value(text, "appchaind_mempool_size"))
        return sizes

    def _report(
        self,
        records: list[SenderRecord],
        accepted: list[tuple[str, float, int]],
        not_committed: int,
        start: float,
        end: float,
    ) -> LoadReport:
        o = self.options
        commits = self.feed.commits
        latencies: list[float] = []
        failed: Counter[str] = Counter()
        in_run = steady = 0
        warm = start + min(WARMUP_S, o.duration_s / 4)
        for tx_hash, sent, _kind in accepted:
            commit = commits.get(tx_hash)
            if commit is None:
                continue
            arrived, _height, code = commit
            latencies.append((arrived - sent) * 1000)
            in_run += arrived <= end
            steady += warm <= arrived <= end
            if code != Code.OK:
                failed[code_name(code)] += 1
        latencies.sort()
        refused: Counter[str] = Counter()
        kinds = [0, 0, 0]
        for r in records:
            refused.update(r.refused)
            kinds = [a + b for a, b in zip(kinds, r.kinds, strict=True)]
        lags = sorted(x for r in records for x in r.lag_ms)
        answers = sorted(x for r in records for x in r.answer_ms)
        submitted = sum(kinds)
        blocks = self.feed.blocks
        during = [i for i, b in enumerate(blocks) if start <= b[2] <= end]
        return LoadReport(
            validators=len(self.nodes),
            accounts=o.accounts,
            senders=o.senders,
            rate=o.rate,
            duration_s=o.duration_s,
            mix=str(o.mix),
            submitted=submitted,
            accepted=len(accepted),
            committed=len(latencies),
            committed_in_run=in_run,
            not_committed=not_committed,
            offered_rate=submitted / o.duration_s,
            committed_rate=steady / (end - warm),
            p50_ms=percentile(latencies, 0.50),
            p90_ms=percentile(latencies, 0.90),
            p99_ms=percentile(latencies, 0.99),
            max_ms=latencies[-1] if latencies else None,
            rejected=dict(sorted(refused.items())),
            failed_in_block=dict(sorted(failed.items())),
            kinds=dict(zip(KINDS, kinds, strict=True)),
            cancels_as_limits=sum(r.cancels_as_limits for r in records),
            limits_as_cancels=sum(r.limits_as_cancels for r in records),
            blocks=len(during),
            mean_block_interval_ms=o.duration_s * 1000 / len(during) if during else None,
            max_block_gap_ms=longest_gap([b[2] for b in blocks], start, end, time.time()) * 1000,
            txs_per_block=(sum(blocks[i][3] for i in during) / len(during) if during else None),
            first_height=blocks[during[0]][0] if during else None,
            last_height=blocks[during[-1]][0] if during else None,
            sender_lag_p99_ms=percentile(lags, 0.99),
            sender_lag_max_ms=lags[-1] if lags else None,
            answer_p50_ms=percentile(answers, 0.50),
            answer_p99_ms=percentile(answers, 0.99),
            sender_cpu_us_per_order=(
                sum(r.cpu_s for r in records) * 1e6 / submitted if submitted else None
            ),
            sender_cpu_share=max(r.cpu_s for r in records) / o.duration_s if records else None,
        )


async def _send_funding(client: Client, txs: list[tuple[int, bytes]], busy: list[int]) -> None:
    """Sends faucet txs ``(index, raw)``; appends to ``busy`` the index of each the node
    refused as busy (retryable)."""
    for i, raw in txs:
        answer = await client.request("broadcast_tx", {"tx": raw, "mode": "sync"})
        code = answer["code"]
        if retryable(code):
            busy.append(i)
        elif code not in (Code.OK, Code.ALREADY_KNOWN):
            raise LoadError(f"a faucet tx was refused: {code_name(code)}: {answer['log']}")


async def _receive(pipe: Connection, timeout_s: float) -> object:
    """The next message from a sender process (an error message if it died or timed out)."""
    deadline = trio.current_time() + timeout_s
    while trio.current_time() < deadline:
        try:
            if await trio.to_thread.run_sync(pipe.poll, 0.2):
                return pipe.recv()
        except (EOFError, OSError):
            return "a sender process exited without reporting"
    return f"no word from a sender process in {timeout_s:g} s"


def run_load(
    options: LoadOptions,
    *,
    directory: Path | None = None,
    validators: int = 4,
    config_overrides: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> LoadReport:
    """Runs the load on the running localnet in ``directory``, or on a new temporary one
    of ``validators`` nodes (with ``config_overrides`` in their config.toml) that is
    stopped at the end. Raises :class:`LoadError` if it cannot be set up or run.

    The senders are spawned processes, which import the caller's main module again: a
    script calling this must do so under ``if __name__ == "__main__":``."""
    options.check()
    if directory is not None:
        if config_overrides:
            raise ValueError("node config overrides apply only to a new localnet, not --dir")
        nodes = load_localnet(directory)
        return _run(options, nodes, progress, directory / "accounts")
    if not 1 <= validators <= 16:
        raise ValueError(f"--validators must be from 1 to 16, got {validators}")
    overrides: dict[str, dict[str, Any]] = {"oracle": {"simulated_step_ppm": ORACLE_STEP_PPM}}
    for section, keys in (config_overrides or {}).items():
        overrides.setdefault(section, {}).update(keys)
    with tempfile.TemporaryDirectory(prefix="appchaind-load-") as tmp:
        net = Localnet(
            Path(tmp) / "net", validators, spare_nodes=0, chain_id="load-net",
            config_overrides=overrides,
        )  # fmt: skip
        try:
            progress(f"starting a {validators}-validator localnet in {tmp}")
            net.start_all(own_session=True)
            try:
                net.wait_height(list(range(validators)), 2)
            except AssertionError as exc:
                raise LoadError(f"the localnet did not start: {exc}") from None
            return _run(options, net.nodes, progress, net.dir / "accounts")
        finally:
            net.stop_all()


def _run(
    options: LoadOptions,
    nodes: list[LocalnetNode],
    progress: Callable[[str], None],
    accounts: Path,
) -> LoadReport:
    genesis = load_genesis(nodes[0].home / "genesis.json")
    expiry_blocks = min(EXPIRY_BLOCKS, genesis.params.max_tx_lifetime_blocks - 5)
    run = _Run(options, nodes, expiry_blocks, progress, accounts)
    try:
        return trio.run(run.main)
    except (LoadError, RpcError, BaseExceptionGroup) as exc:
        cause = _first_cause(exc)
        if isinstance(cause, LoadError):
            raise cause from None
        if isinstance(cause, RpcError):
            raise LoadError(f"RPC: {cause}") from None
        raise


def _first_cause(exc: BaseException) -> BaseException:
    """The first leaf exception of (possibly nested) exception groups, preferring a
    :class:`LoadError` or :class:`RpcError` over the cancellations that follow it."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = [_first_cause(inner) for inner in exc.exceptions]
    for leaf in leaves:
        if isinstance(leaf, LoadError | RpcError):
            return leaf
    return leaves[0]
