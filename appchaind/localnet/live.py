"""``appchaind localnet start`` (and ``make run``): every node of a localnet as its own
process, the demo traders and a block builder, and a live view printed each second until
Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from appchaind.localnet.processes import Localnet

__all__ = ["start_localnet"]


def _get_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as response:
        return json.loads(response.read())


def start_localnet(
    directory: Path, *, duration_s: float | None = None, traders: bool = False
) -> int:
    """Starts every node of the localnet as its own process and shows a live view each
    second until Ctrl-C (or ``duration_s``); then stops them all. With ``traders``, the
    demo traders (:mod:`appchaind.localnet.traders`) trade on it from this process."""
    net = Localnet.open(directory)
    nodes = net.nodes
    net.start_all(own_session=True)
    print(f"started {len(nodes)} validators; logs in {directory}/node*/node.log")
    for node in nodes:
        print(
            f"  {node.name}: status http://127.0.0.1:{node.http_port}/status  "
            f"metrics http://127.0.0.1:{node.http_port}/metrics  rpc 127.0.0.1:{node.rpc_port}"
        )
    print("Ctrl-C stops them all.", flush=True)
    demo = None
    builder: DemoBuilder | None = None
    if traders:
        from appchaind.localnet.traders import DemoTraders

        demo = DemoTraders(directory / "accounts", [f"127.0.0.1:{n.rpc_port}" for n in nodes])
        builder = DemoBuilder(directory, nodes)
    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    last: tuple[int, int, float] | None = None  # (height, total txs, when)
    exit_code = 0
    try:
        while not stop["now"]:
            time.sleep(1)
            if duration_s is not None and time.monotonic() - started > duration_s:
                break
            dead = [
                (nodes[i].name, p.returncode, nodes[i].home / "node.log")
                for i, p in net.procs.items()
                if p.poll() is not None
            ]
            for name, code, log in dead:
                print(f"{name} exited with status {code}; see {log}", flush=True)
                exit_code = 1
            if dead:
                break
            if demo is not None and not demo.started and last is not None:
                demo.start()  # once the nodes answer
                print("demo traders: a market maker, four takers, a leveraged trader", flush=True)
            if builder is not None and builder.process is None and last is not None:
                print(builder.start(), flush=True)
            view = _live_view(nodes, last_holder := [last], demo)
            if builder is not None and builder.process is not None:
                view += "\n" + builder.line()
            print(view, flush=True)
            last = last_holder[0]
    finally:
        if demo is not None and demo.started:
            demo.stop()
        if builder is not None:
            builder.stop()
        net.stop_all(timeout_s=10)
        print("stopped all nodes")
    return exit_code


class DemoBuilder:
    """The localnet's builder account registered (bond 1000) and ``appchaind builder``
    bidding for the validators' blocks, as a child process (log in DIR/builder.log)."""

    def __init__(self, directory: Path, nodes: list[Any]) -> None:
        self.directory = directory
        self.nodes = nodes
        self.key_file = directory / "accounts" / "builder.json"
        self.process: subprocess.Popen[bytes] | None = None
        self.first: tuple[int, int] | None = None  # (height, bids won) when it started

    def start(self) -> str:
        from appchaind.chain.crypto import PrivateKey
        from appchaind.client.library import SyncClient

        rpc = f"127.0.0.1:{self.nodes[0].rpc_port}"
        key = PrivateKey.load(self.key_file)
        result = SyncClient(rpc).register_builder(key, "demo-builder", "1000")
        log = open(self.directory / "builder.log", "ab")  # noqa: SIM115 - the child's
        self.process = subprocess.Popen(
            [sys.executable, "-m", "appchaind.cli", "builder", "--home",
             str(self.nodes[0].home), "--key", str(self.key_file)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        how = "registered" if result.ok else f"({result.log})"
        return f"demo builder {key.address.hex()[:12]} {how}, bidding; log {self.directory}/builder.log"

    def line(self) -> str:
        """Builder-built blocks since it started, and what its winning bids paid."""
        from appchaind.client.library import SyncClient

        try:
            doc = SyncClient(f"127.0.0.1:{self.nodes[0].rpc_port}").builders()
        except Exception:  # noqa: BLE001 - a view line, never a reason to stop
            return "         builder: -"
        mine = [b for b in doc["builders"] if b["name"] == "demo-builder"]
        if not mine:
            return "         builder: not registered"
        won, height = mine[0]["bids_won"], doc["height"]
        if self.first is None:
            self.first = (height, won)
        blocks = height - self.first[0]
        share = f"{100 * (won - self.first[1]) / blocks:.0f}%" if blocks else "-"
        return (
            f"         builder: built {share} of blocks since it started, bids won {won}, "
            f"paid {mine[0]['paid']}, bond {mine[0]['bond']}"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _live_view(
    nodes: list[Any], last_holder: list[tuple[int, int, float] | None], demo: Any
) -> str:
    """The status line, then one line per market and the demo traders' figures."""
    line = _status_line(nodes, last_holder)
    samples = _metrics(nodes[0].http_port)
    if not samples:
        return line
    lines = [line]
    latency = "-"
    if demo is not None:
        p50, p99 = demo.stats.percentile(0.5), demo.stats.percentile(0.99)
        if p50 is not None and p99 is not None:
            latency = f"p50 {1000 * p50:.0f} ms p99 {1000 * p99:.0f} ms"
    fund = samples.get(("appchaind_exchange_insurance_fund", ""), 0.0)
    liquidations = sum(v for (n, _m), v in samples.items() if n.endswith("liquidations_total"))
    lines.append(
        f"         submit->commit {latency}  liquidations {liquidations:.0f}  "
        f"insurance fund {fund:,.2f}"
    )
    markets = sorted({m for (_n, m) in samples if m})
    for market in markets:
        oracle = samples.get(("appchaind_exchange_oracle_price", market), 0.0)
        mid = samples.get(("appchaind_exchange_mid_price", market), 0.0)
        oi = samples.get(("appchaind_exchange_open_interest", market), 0.0)
        fills = samples.get(("appchaind_exchange_fills_total", market), 0.0)
        lines.append(
            f"         {market:9} oracle {oracle:>12,.2f}  mid {mid:>12,.2f}  "
            f"open interest {oi:>10.4f}  fills {fills:>7.0f}"
        )
    if demo is not None:
        s = demo.stats
        with s.lock:
            lines.append(
                f"         demo: orders {s.orders}  fills {s.fills}  rejected {s.rejected}  "
                f"leveraged opens {s.leveraged_opens}  errors {s.errors}"
                + (f" (last: {s.last_error[:80]})" if s.errors else "")
            )
    return "\n".join(lines)


def _metrics(port: int) -> dict[tuple[str, str], float]:
    """(metric name, market label or "") -> value, from a node's /metrics."""
    out: dict[tuple[str, str], float] = {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError, ValueError):
        return out
    for line in text.splitlines():
        if not line.startswith("appchaind_") or " " not in line:
            continue
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        market = ""
        if 'market="' in labels:
            market = labels.split('market="', 1)[1].split('"', 1)[0]
        try:
            out[(name, market)] = float(value)
        except ValueError:
            continue
    return out


def _status_line(nodes: list[Any], last_holder: list[tuple[int, int, float] | None]) -> str:
    statuses = []
    for node in nodes:
        try:
            statuses.append(_get_json(node.http_port, "/status"))
        except (urllib.error.URLError, OSError, ValueError):
            statuses.append(None)
    up = [s for s in statuses if s is not None]
    if not up:
        return "waiting for nodes to start..."
    height = max(s["height"] for s in up)
    rounds = max(s["consensus"]["round"] for s in up)
    peers = min(s["peers"] for s in up)
    total_txs = _total_txs(nodes[0].http_port)
    now = time.monotonic()
    last = last_holder[0]
    rate = interval = "-"
    if last is not None and height > last[0]:
        elapsed = now - last[2]
        interval = f"{1000 * elapsed / (height - last[0]):.0f} ms"
        rate = f"{(total_txs - last[1]) / elapsed:.0f}"
        last_holder[0] = (height, total_txs, now)
    elif last is None:
        last_holder[0] = (height, total_txs, now)
    stamp = time.strftime("%H:%M:%S")
    return (
        f"{stamp} height {height:>6}  block interval {interval:>7}  tx/s {rate:>6}  "
        f"nodes up {len(up)}/{len(nodes)}  peers(min) {peers}  round {rounds}"
    )


def _total_txs(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("appchaind_consensus_total_txs_total"):
                    return int(float(line.rsplit(" ", 1)[1]))
    except (urllib.error.URLError, OSError, ValueError):
        pass
    return 0
