"""A single-validator exchange node run in-process by the tests (the real Node, its
mempool, consensus driver and exchange), on loopback ports the OS picks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from appchaind.chain.crypto import PrivateKey
from appchaind.home import demo_genesis, init_home
from appchaind.node.node import Node


def exchange_node(
    tmp_path: Path,
    chain_id: str,
    validator: PrivateKey,
    accounts: list[tuple[str, bytes, str]],
    config_overrides: dict[str, dict[str, Any]] | None = None,
) -> Node:
    """The node of a one-validator chain (``validator``) whose genesis funds ``accounts``
    ((name, address, balance)); ``config_overrides`` join the test defaults (OS-picked
    p2p and RPC ports, no HTTP port)."""
    # A recent genesis: the simulated oracle walks from genesis time to now.
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    genesis = demo_genesis(chain_id, [("me", validator, 10)], accounts, start)
    overrides: dict[str, dict[str, Any]] = {
        "p2p": {"listen_address": "127.0.0.1:0"},
        "rpc": {"listen_address": "127.0.0.1:0"},
        "http": {"enabled": False},
    }
    for section, keys in (config_overrides or {}).items():
        overrides.setdefault(section, {}).update(keys)
    init_home(
        tmp_path / "home",
        moniker="me",
        chain_id=chain_id,
        genesis_time=start,
        genesis_doc=genesis,
        validator_key=validator,
        config_overrides=overrides,
    )
    return Node(tmp_path / "home")
