"""``make soak`` / ``appchaind bench soak``: a fault campaign on a localnet under load.

A 4-validator localnet on loopback takes faults drawn from a seed — ``kill -9`` and a
restart, or a SIGSTOP pause and SIGCONT, of one validator at a time (the other three
keep more than 2/3 of the power, so the chain must keep committing) — while a load
thread trades (orders and faucet txs) round robin on the live nodes and follows which the
RPC reports committed. When the time is up the faults stop, and the campaign checks:

- every tx the RPC reported committed is in the final chain, on every node (lost: L);
- every node has the same block at every height, so the same app hashes (divergences: D);
- no validator signed two different votes for one height, round and step: no duplicate-
  vote evidence in any block (double-signs: X);
- progress resumes once the faults stop (the time until every node is two blocks past the
  highest height seen when they stopped: the recovery);
- once the nodes are stopped, each one's stored exchange state opens and its conservation
  equation holds (balances, insurance fund, fees, withdrawals and bonds against genesis
  and faucet; a node that does not counts as a divergence, listed as -1 - its index).

The load (:class:`_Load`) is orders that rest and orders that fill against them, from
accounts the faucet funds, and faucet txs: each one a state change acknowledged by the
RPC, so the conservation check covers positions, margin and fees moved by trades.

It prints one line: ``soak: campaigns C, faults F (by kind ...), txs submitted S committed
M, lost L, divergences D, double-signs X, longest recovery R s`` and fails (exit 1) if L, D
or X is not 0, printing the seed and the command that replays it.

Where this machine allows it (root, ``ip`` and ``tc``), each validator runs on a network
host of its own (:mod:`appchaind.localnet.netns`: a Linux network namespace linked to a
bridge) and the faults include the network's: one validator isolated, a 2-2 split (no
side has 2/3 of the power: the chain stops until it heals), a flapping link, a bandwidth
limit. Elsewhere the validators share loopback and only the process faults apply (the
first progress line says which).

On either, every validator dials its peers through a fault-injecting TCP proxy of its own
(:mod:`appchaind.localnet.proxy`, a process on the validator's host: netem is not
available here), which adds the faults ``delay`` (all of one validator's links, both
ways, slowed by a fixed delay and a jitter) and ``loss`` (its links stall as lost
segments would, and now and then are cut).

Three more kinds: ``skew`` restarts one validator with its clock off by up to a minute
either way (:mod:`appchaind.node.clock`; block times are BFT time, so no block's time
may follow it: a block dated more than :data:`CLOCK_TOLERANCE_MS` ahead of this
machine's clock counts as a divergence, listed as -100 - its height); ``pair`` takes two
validators down at once (one killed, one paused: the other two hold no 2/3, so the chain
stops until they return); and, as root, ``disk`` fills the small filesystem each
validator's data directory is given (a tmpfs) until writes fail with ENOSPC, then frees
it and restarts the validator if it stopped (it must stop before signing or
acknowledging anything it could not store, with a message that says the disk is full).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from appchaind.chain import codec, types
from appchaind.chain.crypto import PrivateKey
from appchaind.chain.units import to_units
from appchaind.client.library import SIDES, TIME_IN_FORCE
from appchaind.exchange.txs import Faucet, OrderType, PlaceOrder
from appchaind.localnet import netns
from appchaind.localnet.homes import proxy_port
from appchaind.localnet.load import FUNDING
from appchaind.localnet.processes import Localnet
from appchaind.localnet.proxy import NO_FAULTS, Faults, ProxyProcess
from appchaind.node import clock
from appchaind.rpc.views import QUOTE_UNIT

__all__ = ["SoakReport", "run_soak"]

VALIDATORS = 4
#: Seconds a fault lasts, and the healthy time between two faults (uniform ranges).
FAULT_S = (1.0, 4.0)
HEALTHY_S = (1.0, 3.0)
#: Seconds between two submissions of the load thread.
SUBMIT_EVERY_S = 0.05
#: Seconds the chain gets to resume after the faults stop, and txs to show up.
RECOVERY_DEADLINE_S = 60.0
#: The clock-skew fault's offsets: up to this many milliseconds either way.
MAX_SKEW_MS = 60_000
#: How far ahead of this machine's clock a block's time may be (the vote times of a
#: commit are taken before it, and the check comes after).
CLOCK_TOLERANCE_MS = 2_000
#: The size of each validator's data filesystem where the disk faults run (a tmpfs).
DATA_FS_MB = 1024


@dataclass
class SoakReport:
    seed: int
    seconds: float
    campaigns: int = 1
    faults: Counter[str] = field(default_factory=Counter)
    submitted: int = 0
    committed: int = 0
    lost: list[str] = field(default_factory=list)
    divergences: list[int] = field(default_factory=list)
    double_signs: int = 0
    recovery_s: float = 0.0
    heights: int = 0
    #: Where the validators ran: separate network hosts, or loopback (and why).
    hosts: str = ""
    #: The fault kinds drawn from (None: every kind the hosts allow).
    kinds: tuple[str, ...] | None = None
    #: Whether each validator's data was on a small filesystem of its own (disk faults).
    disks: bool = False
    #: Disk faults after which the validator had stopped (and was started again).
    disk_stops: int = 0
    #: The most any block's time was ahead of this machine's clock at the check.
    most_ahead_ms: int = -(1 << 62)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.divergences and not self.double_signs

    def line(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.faults.items())) or "none"
        return (
            f"soak: campaigns {self.campaigns}, faults {sum(self.faults.values())} "
            f"(by kind {kinds}), txs submitted {self.submitted} committed {self.committed}, "
            f"lost {len(self.lost)}, divergences {len(self.divergences)}, double-signs "
            f"{self.double_signs}, longest recovery {self.recovery_s:.1f} s"
        )

    def replay(self) -> str:
        where = " --hosts loopback" if self.hosts.startswith("loopback") else ""
        where += f" --faults {','.join(self.kinds)}" if self.kinds else ""
        return f"appchaind bench soak --seconds {self.seconds:g} --seed {self.seed}{where}"


class _Load:
    """Trades on the live nodes and polls which of its txs the RPC reports committed.

    Eight accounts fund themselves from the faucet, then send, round robin to the live
    nodes, a mix of good-till-cancelled limit orders near the oracle price (they rest,
    and are later crossed), immediate-or-cancel orders through it (they fill against
    the resting ones, moving positions, margin and fees), and small faucet txs."""

    def __init__(self, net: Localnet, live: list[bool], seed: int) -> None:
        self.net = net
        self.live = live
        self.rng = random.Random(seed)
        self.keys = [PrivateKey.generate() for _ in range(8)]
        self.accepted: list[str] = []
        self.committed: set[str] = set()
        self.orders = 0
        #: Turns the load thread failed (not a node refusing a tx), and the last error.
        self.errors = 0
        self.last_error = ""
        self.stop = threading.Event()
        self._nonce = int(time.time() * 1000)
        self._client_id = 0
        #: (market id, oracle price in ticks) of each market, refreshed as the load runs.
        self._markets: list[tuple[int, int]] = []

    def run(self) -> None:
        turn = 0
        while not self.stop.is_set():
            turn += 1
            node = turn % VALIDATORS
            try:
                if self.live[node]:
                    self._submit(node, self.keys[turn % len(self.keys)], turn)
                if turn % 20 == 0:
                    self._poll()
                    self._refresh(node)
            except Exception as exc:  # noqa: BLE001 - the load goes on; the report says it
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
            self.stop.wait(SUBMIT_EVERY_S)

    def _refresh(self, node: int) -> None:
        try:
            markets = self.net.get(node, "/markets")["markets"]
        except OSError:
            return
        self._markets = [
            (m["market_id"], int(Decimal(m["oracle_price"]) / Decimal(m["tick_size"])))
            for m in markets
        ]

    def _body(self, turn: int) -> object:
        """The first turns fund every account; then two orders for each faucet tx."""
        if turn <= len(self.keys) * 2:  # twice: a funding tx may land on a dying node
            return Faucet(to_units(FUNDING, QUOTE_UNIT, "amount"))
        if turn % 3 == 0 or not self._markets:
            return Faucet(1)
        rng = self.rng
        market_id, oracle = rng.choice(self._markets)
        side = rng.randrange(2)
        sign = -1 if side == SIDES["buy"] else 1
        self._client_id += 1
        self.orders += 1
        if rng.randrange(2):
            price = oracle + sign * max(1, oracle * rng.randint(200, 3_000) // 1_000_000)
            size, tif = rng.randint(1, 10), TIME_IN_FORCE["gtc"]
        else:
            price = oracle - sign * max(1, oracle * 5_000 // 1_000_000)
            size, tif = rng.randint(1, 5), TIME_IN_FORCE["ioc"]
        return PlaceOrder(
            market_id, side, int(OrderType.LIMIT), tif, price, size, 0, False,
            self._client_id % (1 << 32), 0,
        )  # fmt: skip

    def _submit(self, node: int, key: PrivateKey, turn: int) -> None:
        self._nonce = max(self._nonce + 1, int(time.time() * 1000))
        body = self._body(turn)
        try:
            height = max(self.net.height(node), 0)
            raw = codec.encode(
                types.sign_tx(key, self.net.chain_id, self._nonce, height + 200, body)
            )
            answer = self.net.submit(node, raw)
        except OSError:
            return  # the node went down under us: not accepted
        if answer.get("code") == 0:
            self.accepted.append(answer["tx_hash"])

    def _poll(self) -> None:
        """Asks a live node about the txs not yet seen committed."""
        node = next((i for i, up in enumerate(self.live) if up), None)
        if node is None:
            return
        for h in [h for h in self.accepted[-400:] if h not in self.committed]:
            try:
                if _committed_on(self.net, node, h):
                    self.committed.add(h)
            except OSError:
                return  # the node went down under us


#: Faults on the processes, on the peers' proxies, and (on separate network hosts) on the
#: network.
PROCESS_FAULTS = ("kill", "pause", "skew", "pair")
PROXY_FAULTS = ("delay", "loss")
NETWORK_FAULTS = ("isolate", "split", "flap", "bandwidth")
DISK_FAULTS = ("disk",)
KINDS = PROCESS_FAULTS + PROXY_FAULTS + NETWORK_FAULTS + DISK_FAULTS


def disks_available() -> str | None:
    """None where the disk faults can run (root, to mount a tmpfs per validator), else why
    not."""
    if os.geteuid() != 0:
        return "mounting a small filesystem per validator needs root"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "mount and umount are not installed"
    return None


class _Disks:
    """A small filesystem (tmpfs) as each validator's data directory, mounted before the
    nodes start; :meth:`fill` takes every free byte of one, :meth:`free` gives them back."""

    def __init__(self, net: Localnet, size_mb: int = DATA_FS_MB) -> None:
        self.dirs: list[Path] = []
        try:
            for home in net.homes[:VALIDATORS]:
                data = home / "data"
                data.mkdir(exist_ok=True)
                subprocess.run(
                    ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs",
                     str(data)], check=True, capture_output=True,
                )  # fmt: skip
                self.dirs.append(data)
        except (OSError, subprocess.CalledProcessError) as exc:
            self.close()
            raise RuntimeError(f"cannot mount a tmpfs for a validator's data: {exc}") from None

    def fill(self, i: int) -> None:
        st = os.statvfs(self.dirs[i])
        fd = os.open(self.dirs[i] / "soak-fill", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.posix_fallocate(fd, 0, max(st.f_bavail * st.f_frsize - (1 << 20), 1))
            while True:  # the last megabyte, to the last block
                os.write(fd, bytes(4096))
        except OSError:
            pass  # full
        finally:
            os.close(fd)

    def free(self, i: int) -> None:
        (self.dirs[i] / "soak-fill").unlink(missing_ok=True)

    def close(self) -> None:
        for data in self.dirs:
            subprocess.run(["umount", "-l", str(data)], capture_output=True)
        self.dirs = []


class _Proxies:
    """One proxy process per validator, on its host, with a link to each other validator
    (node i dials node j at :func:`~appchaind.localnet.homes.proxy_port`)."""

    def __init__(self, net: Localnet, seed: int, log_dir: Path) -> None:
        self.procs: list[ProxyProcess] = []
        self.peers: list[list[int]] = []
        try:
            for i in range(VALIDATORS):
                others = [j for j in range(VALIDATORS) if j != i]
                links = [(proxy_port(net.base_port, i, j), net.hosts[j], net.nodes[j].p2p_port)
                         for j in others]  # fmt: skip
                hosts = net.network
                with open(log_dir / f"proxy{i}.log", "ab") as log:
                    self.procs.append(ProxyProcess(
                        links, prefix=None if hosts is None else hosts.prefix(i),
                        seed=seed * 10 + i, log=log,
                    ))  # fmt: skip
                self.peers.append(others)
        except BaseException:
            self.close()
            raise

    def set(self, i: int, faults: Faults) -> None:
        """``faults`` on every link of validator ``i``: its own to each peer, and each
        peer's to it (the connection kept may be either one)."""
        self.procs[i].set(faults)
        for j, peers in enumerate(self.peers):
            if j != i:
                self.procs[j].set(faults, link=peers.index(i))

    def summary(self) -> str:
        """What the proxies did: chunks forwarded, delayed (held by a delay or a stall),
        stalled and cut, over every link."""
        stats = [s for proc in self.procs for s in proc.stats()]
        figures = {
            name: sum(getattr(s, name) for s in stats)
            for name in ("connections", "chunks", "delayed", "stalls", "cuts")
        }
        return "soak: proxies: " + ", ".join(f"{k} {v}" for k, v in figures.items())

    def close(self) -> None:
        for proc in self.procs:
            proc.close()


def _fault(
    net: Localnet,
    rng: random.Random,
    live: list[bool],
    report: SoakReport,
    proxies: _Proxies,
    kinds: tuple[str, ...],
    disks: _Disks | None = None,
) -> None:
    """One fault of ``kinds``, held for a while, then healed: on one validator's process,
    on its proxied links (delayed, or lossy: stalls and cuts), or (on separate hosts) on
    the network: one validator isolated, a 2-2 split (no side has 2/3: the chain must
    stop, and resume once healed), one validator's link flapping, or its bandwidth cut
    to 256 kbit/s."""
    hosts = net.network
    i = rng.randrange(VALIDATORS)
    kind = rng.choice(kinds)
    report.faults[kind] += 1
    held = rng.uniform(*FAULT_S)
    if kind in PROXY_FAULTS:
        if kind == "delay":
            delay = rng.randrange(50, 400)
            faults = Faults(delay_ms=delay, jitter_ms=delay // 2)
        else:
            faults = Faults(stall=0.2, stall_ms=rng.randrange(200, 1000), cut=0.02)
        proxies.set(i, faults)
        time.sleep(held)
        proxies.set(i, NO_FAULTS)
        return
    if hosts is not None and kind in NETWORK_FAULTS:
        if kind == "isolate":
            hosts.isolate(i)
        elif kind == "split":
            order = list(range(VALIDATORS))
            rng.shuffle(order)
            hosts.partition([order[:2], order[2:]])
        elif kind == "bandwidth":
            hosts.limit(i, 256)
        else:
            live[i] = False
            for _ in range(3):
                hosts.link(i, False)
                time.sleep(held / 6)
                hosts.link(i, True)
                time.sleep(held / 6)
            live[i] = True
        if kind != "flap":
            time.sleep(held)
        hosts.heal()
        hosts.unlimit(i)
        return
    if kind == "disk":
        assert disks is not None
        live[i] = False
        disks.fill(i)
        time.sleep(held)
        disks.free(i)
        if net.procs[i].poll() is not None:
            report.disk_stops += 1
            net.kill(i)  # reaps the process that stopped itself
            net.start(i)
        live[i] = True
        return
    if kind == "skew":
        offset = rng.choice((-1, 1)) * rng.randrange(1_000, MAX_SKEW_MS)
        live[i] = False
        net.kill(i)
        net.start(i, env={clock.OFFSET_ENV: str(offset)})
        live[i] = True
        time.sleep(held)
        live[i] = False
        net.kill(i)
        net.start(i)
        live[i] = True
        return
    if kind == "pair":
        j = rng.choice([k for k in range(VALIDATORS) if k != i])
        pid = net.procs[j].pid
        live[i] = live[j] = False
        net.kill(i)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(held)
        os.kill(pid, signal.SIGCONT)
        net.start(i)
        live[i] = live[j] = True
        return
    if kind == "kill":
        live[i] = False
        net.kill(i)
        time.sleep(held)
        net.start(i)
        live[i] = True
    else:
        pid = net.procs[i].pid
        live[i] = False
        os.kill(pid, signal.SIGSTOP)
        time.sleep(held)
        os.kill(pid, signal.SIGCONT)
        live[i] = True


def run_soak(  # type: ignore[no-untyped-def]
    seconds: float,
    seed: int | None = None,
    progress=print,
    hosts: str = "auto",
    kinds: tuple[str, ...] | None = None,
) -> SoakReport:
    """One campaign of ``seconds`` of faults from ``seed`` (random if None), the
    validators on separate network hosts (``hosts="netns"``), on loopback
    (``"loopback"``), or the first where this machine allows it (``"auto"``); the faults
    drawn from ``kinds`` (default: every kind the hosts allow)."""
    seed = random.randrange(1 << 31) if seed is None else seed
    rng = random.Random(seed)
    report = SoakReport(seed, seconds, kinds=kinds)
    unknown = sorted(set(kinds or ()) - set(KINDS))
    if unknown:
        raise RuntimeError(f"unknown fault kind {unknown[0]!r}; kinds: {', '.join(KINDS)}")
    why_not = netns.available() if hosts != "loopback" else "loopback asked for"
    if hosts == "netns" and why_not is not None:
        raise RuntimeError(f"cannot put the validators on separate hosts: {why_not}")
    if why_not is not None and kinds and set(kinds) & set(NETWORK_FAULTS):
        raise RuntimeError(f"network faults need separate hosts: {why_not}")
    no_disks = disks_available()
    if no_disks is not None and kinds and set(kinds) & set(DISK_FAULTS):
        raise RuntimeError(f"disk faults cannot run here: {no_disks}")
    report.disks = no_disks is None
    network = None
    if why_not is None:
        network = netns.Hosts(VALIDATORS, name=f"acsk{os.getpid() % 10000}")
    report.hosts = "separate network hosts" if network is not None else f"loopback ({why_not})"
    try:
        _campaign(seconds, rng, report, network, progress)
    finally:
        if network is not None:
            network.close()
    return report


def _campaign(  # type: ignore[no-untyped-def]
    seconds: float, rng: random.Random, report: SoakReport, network: netns.Hosts | None, progress
) -> None:
    kinds = report.kinds or (
        PROCESS_FAULTS
        + PROXY_FAULTS
        + (NETWORK_FAULTS if network is not None else ())
        + (DISK_FAULTS if report.disks else ())
    )
    with tempfile.TemporaryDirectory(prefix="appchaind-soak-") as tmp:
        net = Localnet(
            Path(tmp) / "net", VALIDATORS, spare_nodes=0, chain_id="soak-net", hosts=network,
            proxy_peers=True,
        )  # fmt: skip
        progress(
            f"soak: seed {report.seed}, {seconds:g} s of faults on a {VALIDATORS}-validator "
            f"localnet ({report.hosts}), faults drawn from {', '.join(kinds)}, in {tmp}"
        )
        proxies = _Proxies(net, report.seed, Path(tmp))
        disks = None
        try:
            if set(kinds) & set(DISK_FAULTS):
                disks = _Disks(net)
            net.start_all()
            net.wait_height(list(range(VALIDATORS)), 2)
            live = [True] * VALIDATORS
            load = _Load(net, live, report.seed)
            thread = threading.Thread(target=load.run, name="soak-load", daemon=True)
            thread.start()
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                _fault(net, rng, live, report, proxies, kinds, disks)
                time.sleep(rng.uniform(*HEALTHY_S))
                progress(f"soak: {sum(report.faults.values())} faults, height {net.height(0)}, "
                         f"{len(load.accepted)} txs accepted ({load.orders} orders sent)"
                         + (f"; load errors {load.errors}, last: {load.last_error}"
                            if load.errors else ""))  # fmt: skip
            # Faults stop: the chain must move two blocks past every node's height.
            stopped = time.monotonic()
            top = max(net.height(i) for i in range(VALIDATORS))
            net.wait_until(
                lambda: all(net.height(i) >= top + 2 for i in range(VALIDATORS)),
                f"every node past height {top + 2} after the faults",
                RECOVERY_DEADLINE_S,
            )
            report.recovery_s = time.monotonic() - stopped
            progress(proxies.summary())
            load.stop.set()
            thread.join()
            load._poll()  # then every node must reach the blocks that poll saw
            last = max(net.height(i) for i in range(VALIDATORS))
            up = lambda: min(net.height(i) for i in range(VALIDATORS)) >= last  # noqa: E731
            net.wait_until(up, f"every node at height {last}", RECOVERY_DEADLINE_S)
            _check(net, load, report)
            progress(
                f"soak: the latest block time was {report.most_ahead_ms / 1000:.1f} s ahead of "
                f"this machine's clock at most (allowed {CLOCK_TOLERANCE_MS / 1000:g} s)"
                + (f"; a validator stopped itself at {report.disk_stops} of "
                   f"{report.faults['disk']} full disks" if report.faults["disk"] else "")
            )  # fmt: skip
            net.stop_all()
            _check_stores(net, report)
        finally:
            net.close()
            proxies.close()
            if disks is not None:
                disks.close()


def _check(net: Localnet, load: _Load, report: SoakReport) -> None:
    report.submitted = len(load.accepted)
    report.committed = len(load.committed)
    final = min(net.height(i) for i in range(VALIDATORS))
    report.heights = final
    now = int(time.time() * 1000)
    for h in range(1, final + 1):
        blocks = [net.get(i, f"/block/{h}") for i in range(VALIDATORS)]
        if len({b["hash"] for b in blocks}) != 1:
            report.divergences.append(h)
        report.double_signs += len(blocks[0]["evidence"])
        ahead = blocks[0]["header"]["time_ms"] - now
        report.most_ahead_ms = max(report.most_ahead_ms, ahead)
        if ahead > CLOCK_TOLERANCE_MS:
            report.divergences.append(-100 - h)
    for h in sorted(load.committed):
        if not all(_committed_on(net, i, h) for i in range(VALIDATORS)):
            report.lost.append(h)


def _check_stores(net: Localnet, report: SoakReport) -> None:
    """Each stopped node's exchange state opens from its store (the app hash it stored
    checked on the way) and conserves value; one that does not counts as a divergence."""
    from appchaind.exchange import ExchangeApp
    from appchaind.home import HomePaths
    from appchaind.store import Store
    from config.genesis import load_genesis

    for i, home in enumerate(net.homes):
        paths = HomePaths(home)
        with Store(paths.data, home_for_messages=home) as store:
            app = ExchangeApp(load_genesis(paths.genesis), store)
            if app.clearing.conservation_gap() != 0:
                report.divergences.append(-1 - i)


def _committed_on(net: Localnet, node: int, tx_hash: str) -> bool:
    """True when ``node``'s HTTP port finds ``tx_hash`` committed (404: not)."""
    try:
        found = net.get(node, f"/tx/{tx_hash}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise
    return isinstance(found, dict) and bool(found.get("height"))
