"""A process manager for a localnet's nodes: start, kill, stop, wait for heights, read
status and metrics, submit txs. ``appchaind localnet start``, the multi-process tests and
the benchmarks all drive nodes through :class:`Localnet`.

A new localnet (:class:`Localnet`) takes free loopback ports; an existing one is opened
with :meth:`Localnet.open`. Every process started is stopped by :meth:`Localnet.close`
(or :meth:`Localnet.stop_all`). Waits are bounded by generous deadlines (liveness
bounds, not timing claims).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from appchaind.chain import codec, types
from appchaind.chain.crypto import PrivateKey
from appchaind.exchange.txs import Faucet
from appchaind.home import init_home
from appchaind.localnet.homes import PORT_STRIDE, LocalnetNode, init_localnet, load_localnet
from appchaind.localnet.netns import Hosts

DEADLINE_S = 120.0


def _ports_free(ports: list[int]) -> bool:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_base_port(nodes: int, ports_per_node: int = 4) -> int:
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        base = rng.randrange(20000, 32000, 10)  # below the kernel's ephemeral port range
        ports = [base + PORT_STRIDE * i + k for i in range(nodes) for k in range(ports_per_node)]
        if _ports_free(ports):
            return base
    raise RuntimeError("no free port range found on 127.0.0.1")


class Localnet:
    """The nodes of a localnet in ``directory`` and their processes (logs in each home's
    ``node.log``). ``Localnet(directory)`` creates a new one on free ports (with
    ``config_overrides``, {section: {key: value}}, in every node's config.toml; with
    ``proxy_peers`` each validator dials the others through proxy ports, see
    :func:`~appchaind.localnet.homes.proxy_port`, which the caller serves)."""

    def __init__(
        self,
        directory: Path,
        validators: int = 4,
        spare_nodes: int = 2,
        *,
        chain_id: str = "test-net",
        nodes: list[LocalnetNode] | None = None,
        config_overrides: dict[str, dict[str, Any]] | None = None,
        hosts: Hosts | None = None,
        proxy_peers: bool = False,
    ) -> None:
        self.dir = directory
        if nodes is None:
            self.base_port = free_base_port(
                validators + spare_nodes, PORT_STRIDE if proxy_peers else 4
            )
            nodes = init_localnet(
                directory, validators, base_port=self.base_port, chain_id=chain_id,
                config_overrides=config_overrides,
                hosts=None if hosts is None else [hosts.host(i) for i in range(validators)],
                proxy_peers=proxy_peers,
            )  # fmt: skip
        else:
            self.base_port = nodes[0].p2p_port
        self.nodes = nodes
        self.homes = [n.home for n in self.nodes]
        self.http_ports = [n.http_port for n in self.nodes]
        self.hosts = [n.host for n in self.nodes]
        #: The network hosts the nodes run on (None: all on loopback).
        self.network = hosts
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.chain_id = chain_id

    @classmethod
    def open(cls, directory: Path) -> Localnet:
        """An existing localnet (made by ``appchaind localnet init``)."""
        nodes = load_localnet(directory)
        genesis = json.loads((nodes[0].home / "genesis.json").read_text())
        return cls(directory, chain_id=genesis["chain_id"], nodes=nodes)

    # ------------------------------------------------------------------ processes

    def start(
        self, i: int, *, own_session: bool = False, env: dict[str, str] | None = None
    ) -> None:
        """Starts node ``i`` (``own_session``: in a session of its own, so a terminal's
        Ctrl-C reaches only the manager, which then stops the nodes; ``env``: variables
        added to this process's environment for it, e.g. a test-only mode)."""
        log = open(self.homes[i] / "node.log", "ab")  # noqa: SIM115 - the child's for its life
        prefix = [] if self.network is None or i >= self.network.n else self.network.prefix(i)
        self.procs[i] = subprocess.Popen(
            [*prefix, sys.executable, "-m", "appchaind.cli", "start", "--home", str(self.homes[i])],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=own_session,
            env=None if env is None else {**os.environ, **env},
        )
        log.close()

    def start_all(self, *, own_session: bool = False) -> None:
        for i in range(len(self.homes)):
            self.start(i, own_session=own_session)

    def stop_all(self, timeout_s: float = 10.0) -> None:
        """SIGTERM to every node, then SIGKILL to those still running after ``timeout_s``."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for i in list(self.procs):
            proc = self.procs.pop(i)
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def kill(self, i: int) -> None:
        """SIGKILL: no clean shutdown."""
        proc = self.procs.pop(i)
        proc.kill()
        proc.wait()

    def stop(self, i: int) -> None:
        proc = self.procs.pop(i)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"node {i} did not stop on SIGTERM") from None

    def close(self) -> None:
        for i in list(self.procs):
            proc = self.procs.pop(i)
            proc.kill()
            proc.wait()

    def add_full_node(self, home: Path | None = None, *, validator: bool = False) -> int:
        """A node outside the validator set with empty data, peering with every validator;
        its home is ``home`` (default: ``full<i>`` in the localnet's directory).
        ``validator``: it signs with its validator key once that key is in the set (a
        CreateValidator tx puts it there)."""
        i = len(self.homes)
        p = self.base_port + PORT_STRIDE * i
        genesis_doc = json.loads((self.homes[0] / "genesis.json").read_text())
        home = self.dir / f"full{i}" if home is None else home
        peers = [f"{n.node_id}@{n.host}:{n.p2p_port}" for n in self.nodes]
        init_home(
            home,
            moniker=f"full{i}",
            chain_id=self.chain_id,
            genesis_time=genesis_doc["genesis_time"],
            genesis_doc=genesis_doc,
            config_overrides={
                "node": {"validator": validator},
                "p2p": {"listen_address": f"127.0.0.1:{p}", "persistent_peers": peers},
                "rpc": {"listen_address": f"127.0.0.1:{p + 1}"},
                "http": {"listen_address": f"127.0.0.1:{p + 2}"},
                "pbs": {"listen_address": f"127.0.0.1:{p + 3}"},
            },
        )
        self.homes.append(home)
        self.http_ports.append(p + 2)
        self.hosts.append("127.0.0.1")
        return i

    def own_votes_in_wal(self, i: int) -> list[types.Vote]:
        """The votes node ``i``'s validator signed, as recorded in its consensus WAL."""
        import shutil
        import tempfile

        from appchaind.consensus.wal import WAL
        from appchaind.node.messages import CONSENSUS_MESSAGES, VoteMessage, decode_message

        address = PrivateKey.load(self.homes[i] / "validator_key.json").address
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "cs.wal"
            shutil.copy(self.homes[i] / "data" / "cs.wal", copy)
            wal = WAL(copy)
            records = list(wal.replay())
            wal.close()
        votes = []
        for record in records:
            message = decode_message(CONSENSUS_MESSAGES, record, 1 << 24)
            if isinstance(message, VoteMessage) and message.vote.validator == address:
                votes.append(message.vote)
        return votes

    # ------------------------------------------------------------------ HTTP

    def get(self, i: int, path: str) -> Any:
        with urllib.request.urlopen(
            f"http://{self.hosts[i]}:{self.http_ports[i]}{path}", timeout=5
        ) as r:
            return json.loads(r.read())

    def get_text(self, i: int, path: str) -> str:
        with urllib.request.urlopen(
            f"http://{self.hosts[i]}:{self.http_ports[i]}{path}", timeout=5
        ) as r:
            return r.read().decode()

    def status(self, i: int) -> dict[str, Any] | None:
        try:
            return self.get(i, "/status")
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def height(self, i: int) -> int:
        s = self.status(i)
        return -1 if s is None else s["height"]

    def wait_until(self, predicate: Any, what: str, deadline_s: float = DEADLINE_S) -> None:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if predicate():
                return
            time.sleep(0.1)
        logs = {
            h.name: (h / "node.log").read_text()[-2000:]
            for h in self.homes
            if (h / "node.log").exists()
        }
        raise AssertionError(
            f"gave up waiting for {what}; heights {[self.height(i) for i in range(len(self.homes))]}\n{logs}"
        )

    def wait_height(self, nodes: list[int], height: int) -> None:
        self.wait_until(
            lambda: all(self.height(i) >= height for i in nodes),
            f"nodes {nodes} at height {height}",
        )

    def submit(self, i: int, raw: bytes) -> dict[str, Any]:
        body = json.dumps({"tx": raw.hex()}).encode()
        request = urllib.request.Request(
            f"http://{self.hosts[i]}:{self.http_ports[i]}/tx", data=body, method="POST",
            headers={"content-type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())

    def faucet_tx(self, key: PrivateKey, amount: int) -> bytes:
        """A signed exchange faucet tx (the localnet genesis enables the faucet)."""
        return self.tx(key, Faucet(amount))

    def tx(self, key: PrivateKey, body: object) -> bytes:
        """A signed tx of ``body``; the nonce is the current time in ms, unique per call."""
        self._nonce = max(getattr(self, "_nonce", 0) + 1, int(time.time() * 1000))
        expiry = max(self.height(0), 0) + 500
        return codec.encode(types.sign_tx(key, self.chain_id, self._nonce, expiry, body))

    def commit_tx(self, i: int, raw: bytes) -> dict[str, Any]:
        """Submit ``raw`` to node ``i`` and wait until it is committed: its ``/tx`` record
        (height, code, log, events)."""
        answer = self.submit(i, raw)
        if answer.get("code") != 0:
            raise AssertionError(f"node {i} refused the tx: {answer}")
        found: dict[str, Any] = {}

        def committed() -> bool:
            try:
                found.update(self.get(i, f"/tx/{answer['tx_hash']}"))
            except (urllib.error.URLError, OSError, ValueError):
                return False
            return True

        self.wait_until(committed, f"tx {answer['tx_hash']} committed")
        return found
