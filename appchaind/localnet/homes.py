"""A local network of validators on loopback, for development and demos.

``localnet init --dir D --validators N --base-port P`` writes ``D/node0`` ...
``D/node{N-1}`` (complete homes whose persistent peers are the other nodes),
one shared genesis with the demo markets, and funded trader accounts whose
key files are in ``D/accounts/``. Node i listens on p2p ``P+10i``, RPC
``P+10i+1``, HTTP ``P+10i+2`` and builder bids ``P+10i+3``; with ``proxy_peers`` it
dials its peers through fault-injecting proxies on ``P+10i+4`` on (``bench soak``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appchaind.chain.crypto import PrivateKey
from appchaind.home import demo_genesis, init_home, utc_now_rfc3339

__all__ = ["LocalnetNode", "init_localnet", "load_localnet", "proxy_port", "DEMO_ACCOUNTS"]

DEFAULT_BASE_PORT = 26600
#: The simulated oracle's walk on local networks: up to 0.5% per second.
LOCALNET_ORACLE_STEP_PPM = 5_000
PORT_STRIDE = 10

#: (account name, balance in quote units) created by `localnet init`.
DEMO_ACCOUNTS = (
    ("trader0", "100000"),
    ("trader1", "100000"),
    ("trader2", "100000"),
    ("trader3", "100000"),
    ("maker", "5000000"),
    ("leveraged", "2000"),
    ("builder", "100000"),
    # Not used by the demo traders: the README's trading examples use these two.
    ("alice", "100000"),
    ("bob", "100000"),
)


@dataclass(frozen=True)
class LocalnetNode:
    name: str
    home: Path
    node_id: str
    p2p_port: int
    rpc_port: int
    http_port: int
    pbs_port: int
    #: The address the node listens on (its own network host, or loopback).
    host: str = "127.0.0.1"


def _ports(base_port: int, index: int) -> tuple[int, int, int, int]:
    p = base_port + PORT_STRIDE * index
    return p, p + 1, p + 2, p + 3


def proxy_port(base_port: int, i: int, j: int) -> int:
    """Where node ``i`` dials node ``j`` when its peers are proxied: a port of node i's
    range after its own four (so at most 7 validators), on 127.0.0.1 of node i's host."""
    slot = j if j < i else j - 1
    if not 0 <= slot < PORT_STRIDE - 4:
        raise ValueError(f"at most {PORT_STRIDE - 3} validators can dial through proxies")
    return base_port + PORT_STRIDE * i + 4 + slot


def verify_threads(validators: int) -> int:
    """[mempool] verify_threads for a localnet's nodes: 0 (checks on each node's own
    thread) when the validators are at least as many as the cores, since no node has a
    spare core for threads (the threads' GIL hand-offs cost more than the checks); else
    the default 2."""
    return 0 if validators >= (os.cpu_count() or 1) else 2


def init_localnet(
    directory: Path,
    validators: int,
    *,
    base_port: int = DEFAULT_BASE_PORT,
    chain_id: str = "appchain-local",
    force: bool = False,
    config_overrides: dict[str, dict[str, Any]] | None = None,
    hosts: list[str] | None = None,
    proxy_peers: bool = False,
) -> list[LocalnetNode]:
    """Writes the homes and accounts of an N-validator localnet under ``directory``;
    ``config_overrides`` ({section: {key: value}}) go into every node's config.toml;
    ``hosts``: each node's address (default: all on 127.0.0.1; separate network hosts
    are :mod:`appchaind.localnet.netns`'s); ``proxy_peers``: node i dials node j at
    127.0.0.1:``proxy_port(base_port, i, j)`` on its own host, where a proxy
    (:mod:`appchaind.localnet.proxy`) is to forward to node j."""
    hosts = hosts or ["127.0.0.1"] * validators
    if len(hosts) != validators:
        raise ValueError(f"{len(hosts)} hosts for {validators} validators")
    if not 1 <= validators <= 100:
        raise ValueError(f"--validators must be from 1 to 100, got {validators}")
    if not 1024 <= base_port <= 65535 - PORT_STRIDE * validators:
        raise ValueError(
            f"--base-port {base_port} leaves no room for {validators} nodes "
            f"({PORT_STRIDE} ports each) below 65536; pick 1024 to {65535 - PORT_STRIDE * validators}"
        )
    directory = Path(directory)
    if (directory / "node0").exists() and not force:
        raise FileExistsError(
            f"{directory} already holds a localnet; use --force to replace it, or another --dir"
        )
    node_keys = [PrivateKey.generate() for _ in range(validators)]
    validator_keys = [PrivateKey.generate() for _ in range(validators)]
    account_keys = [(name, PrivateKey.generate(), balance) for name, balance in DEMO_ACCOUNTS]

    genesis_doc = demo_genesis(
        chain_id,
        [(f"node{i}", key, 10) for i, key in enumerate(validator_keys)],
        [(name, key.address, balance) for name, key, balance in account_keys],
        utc_now_rfc3339(),
    )
    nodes = []
    for i in range(validators):
        p2p, rpc, http, pbs = _ports(base_port, i)
        peers = [
            f"{node_keys[j].address.hex()}@127.0.0.1:{proxy_port(base_port, i, j)}"
            if proxy_peers
            else f"{node_keys[j].address.hex()}@{hosts[j]}:{_ports(base_port, j)[0]}"
            for j in range(validators)
            if j != i
        ]
        home = directory / f"node{i}"
        overrides: dict[str, dict[str, Any]] = {
            "p2p": {"listen_address": f"{hosts[i]}:{p2p}", "persistent_peers": peers},
            "rpc": {"listen_address": f"{hosts[i]}:{rpc}"},
            "http": {"listen_address": f"{hosts[i]}:{http}"},
            "pbs": {"listen_address": f"{hosts[i]}:{pbs}"},
            # A lively simulated market, so the demo's leveraged trader can be liquidated.
            "oracle": {"simulated_step_ppm": LOCALNET_ORACLE_STEP_PPM},
            "mempool": {"verify_threads": verify_threads(validators)},
        }
        for section, keys in (config_overrides or {}).items():
            overrides.setdefault(section, {}).update(keys)
        init_home(
            home,
            moniker=f"node{i}",
            chain_id=chain_id,
            genesis_time=genesis_doc["genesis_time"],
            force=True,
            genesis_doc=genesis_doc,
            node_key=node_keys[i],
            validator_key=validator_keys[i],
            config_overrides=overrides,
        )
        nodes.append(
            LocalnetNode(
                f"node{i}", home, node_keys[i].address.hex(), p2p, rpc, http, pbs, hosts[i]
            )
        )
    accounts_dir = directory / "accounts"
    for name, key, _balance in account_keys:
        key.save(accounts_dir / f"{name}.json", overwrite=True)
    manifest = {
        "chain_id": chain_id,
        "base_port": base_port,
        "nodes": [
            {
                "name": n.name, "home": n.name, "node_id": n.node_id, "p2p_port": n.p2p_port,
                "rpc_port": n.rpc_port, "http_port": n.http_port, "pbs_port": n.pbs_port,
                "host": n.host,
            }
            for n in nodes
        ],
        "accounts": {name: f"accounts/{name}.json" for name, _key, _b in account_keys},
    }  # fmt: skip
    (directory / "localnet.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return nodes


def load_localnet(directory: Path) -> list[LocalnetNode]:
    """The nodes of a localnet written by :func:`init_localnet`."""
    directory = Path(directory)
    manifest_path = directory / "localnet.json"
    if not manifest_path.exists():
        raise FileNotFoundError(
            f"{directory} is not a localnet (no localnet.json); "
            f"create one with `appchaind localnet init --dir {directory}`"
        )
    manifest = json.loads(manifest_path.read_text())
    return [
        LocalnetNode(
            n["name"],
            directory / n["home"],
            n["node_id"],
            n["p2p_port"],
            n["rpc_port"],
            n["http_port"],
            n["pbs_port"],
            n.get("host", "127.0.0.1"),
        )  # fmt: skip
        for n in manifest["nodes"]
    ]
