"""A node's home directory: what lives where, and how a new one is made.

::

    HOME/config.toml          node configuration (every key documented)
    HOME/genesis.json         the chain's genesis
    HOME/node_key.json        the p2p identity; the node id is its address
    HOME/validator_key.json   the consensus signing key
    HOME/data/                LevelDB, consensus WAL, last-signed state
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appchaind.chain.crypto import KeyFileError, PrivateKey
from config.genesis import genesis_to_json
from config.node_config import render_default_config

__all__ = ["HomePaths", "init_home", "demo_genesis", "utc_now_rfc3339"]


def utc_now_rfc3339() -> str:
    """The current UTC time in genesis_time's format, e.g. "2026-11-26T00:00:00Z"."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class HomePaths:
    home: Path

    @property
    def config(self) -> Path:
        return self.home / "config.toml"

    @property
    def genesis(self) -> Path:
        return self.home / "genesis.json"

    @property
    def node_key(self) -> Path:
        return self.home / "node_key.json"

    @property
    def validator_key(self) -> Path:
        return self.home / "validator_key.json"

    @property
    def data(self) -> Path:
        return self.home / "data"


def demo_markets() -> list[dict[str, Any]]:
    """BTC-PERP and ETH-PERP with parameters in the range dYdX and Hyperliquid use."""
    return [
        {
            "symbol": "BTC-PERP", "tick_size": "0.1", "lot_size": "0.0001",
            "initial_margin_ppm": 50_000, "maintenance_margin_ppm": 30_000,
            "maker_fee_ppm": -100, "taker_fee_ppm": 500, "liquidation_fee_ppm": 10_000,
            "funding_interval_blocks": 600, "max_funding_rate_ppm": 1_000,
            "impact_notional": "10000", "price_band_ppm": 100_000, "max_oracle_move_ppm": 20_000,
            "initial_oracle_price": "65000",
        },
        {
            "symbol": "ETH-PERP", "tick_size": "0.01", "lot_size": "0.001",
            "initial_margin_ppm": 50_000, "maintenance_margin_ppm": 30_000,
            "maker_fee_ppm": -100, "taker_fee_ppm": 500, "liquidation_fee_ppm": 10_000,
            "funding_interval_blocks": 600, "max_funding_rate_ppm": 1_000,
            "impact_notional": "10000", "price_band_ppm": 100_000, "max_oracle_move_ppm": 20_000,
            "initial_oracle_price": "3500",
        },
    ]  # fmt: skip


def demo_genesis(
    chain_id: str,
    validators: list[tuple[str, PrivateKey, int]],
    accounts: list[tuple[str, bytes, str]],
    genesis_time: str,
    *,
    faucet: bool = True,
) -> dict[str, Any]:
    """A genesis document with the demo markets. ``validators`` are (name, key, power);
    ``accounts`` are (name, address, balance as a decimal quote amount)."""
    return {
        "chain_id": chain_id,
        "genesis_time": genesis_time,
        "validators": [
            {"name": name, "public_key": key.public_key.hex(), "power": power}
            for name, key, power in validators
        ],
        "params": {"faucet_enabled": faucet},
        "markets": demo_markets(),
        "accounts": [
            {"name": name, "address": address.hex(), "balance": balance}
            for name, address, balance in accounts
        ],
        "insurance_fund": "1000000",
    }


def init_home(
    home: Path,
    *,
    moniker: str,
    chain_id: str,
    genesis_time: str,
    force: bool = False,
    config_overrides: dict[str, dict[str, Any]] | None = None,
    genesis_doc: dict[str, Any] | None = None,
    node_key: PrivateKey | None = None,
    validator_key: PrivateKey | None = None,
) -> tuple[PrivateKey, PrivateKey]:
    """Creates a complete home: keys (never overwritten unless ``force``), config, genesis.

    Without ``genesis_doc``, the genesis makes this node the only validator of a
    single-node chain with the demo markets. Keys are generated unless given.
    Returns (node key, validator key).
    """
    paths = HomePaths(Path(home))
    if not force:
        for existing in (paths.node_key, paths.validator_key):
            if existing.exists():
                raise KeyFileError(
                    f"{existing} already exists; refusing to overwrite keys "
                    "(use --force to replace them, which changes this node's identity)"
                )
    paths.home.mkdir(parents=True, exist_ok=True)
    paths.data.mkdir(exist_ok=True)
    node_key = node_key or PrivateKey.generate()
    validator_key = validator_key or PrivateKey.generate()
    node_key.save(paths.node_key, overwrite=force)
    validator_key.save(paths.validator_key, overwrite=force)
    overrides = {"node": {"moniker": moniker}}
    for section, keys in (config_overrides or {}).items():
        overrides.setdefault(section, {}).update(keys)
    paths.config.write_text(render_default_config(**overrides))
    if genesis_doc is None:
        genesis_doc = demo_genesis(chain_id, [(moniker, validator_key, 10)], [], genesis_time)
    paths.genesis.write_text(genesis_to_json(genesis_doc))
    return node_key, validator_key
