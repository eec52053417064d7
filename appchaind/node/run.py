"""Running nodes from the command line: ``appchaind start`` and ``appchaind localnet start``."""

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

import trio

from appchaind.errors import StartupError
from appchaind.localnet import load_localnet
from appchaind.logs import configure_logging
from config.node_config import load_config

__all__ = ["start_node", "start_localnet"]


def start_node(home: Path) -> None:
    """Runs the node at ``home`` until SIGINT or SIGTERM; then stops it cleanly."""
    config = load_config(home)
    configure_logging(config.logging.level, config.logging.format)
    from appchaind.node.node import Node

    node = Node(home)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.run)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    try:
        trio.run(main)
    except BaseExceptionGroup as group:
        matched, rest = group.split(StartupError)
        if matched is None or rest is not None:
            raise
        raise _first_leaf(matched) from None


def _first_leaf(group: BaseExceptionGroup[StartupError]) -> StartupError:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _get_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as response:
        return json.loads(response.read())


def start_localnet(directory: Path, *, duration_s: float | None = None) -> int:
    """Starts every node of the localnet as its own process and prints one status line per
    second until Ctrl-C (or ``duration_s``); then stops them all."""
    nodes = load_localnet(directory)
    processes: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    for node in nodes:
        log_path = node.home / "node.log"
        log_file = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        proc = subprocess.Popen(
            [sys.executable, "-m", "appchaind.cli", "start", "--home", str(node.home)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append((node.name, proc, log_path))
    print(f"started {len(nodes)} validators; logs in {directory}/node*/node.log")
    for node in nodes:
        print(
            f"  {node.name}: status http://127.0.0.1:{node.http_port}/status  "
            f"metrics http://127.0.0.1:{node.http_port}/metrics  rpc 127.0.0.1:{node.rpc_port}"
        )
    print("Ctrl-C stops them all.", flush=True)
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
            dead = [(name, p.returncode, log) for name, p, log in processes if p.poll() is not None]
            for name, code, log in dead:
                print(f"{name} exited with status {code}; see {log}", flush=True)
                exit_code = 1
            if dead:
                break
            print(_status_line(nodes, last_holder := [last]), flush=True)
            last = last_holder[0]
    finally:
        for _name, proc, _log in processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _name, proc, _log in processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        print("stopped all nodes")
    return exit_code


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
