"""The node's oracle price sources from config: a stale operator file reports nothing."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from appchaind.chain.crypto import PrivateKey
from appchaind.exchange.startup import price_source_from_config
from appchaind.home import demo_genesis
from config.genesis import parse_genesis
from config.node_config import NodeConfig, default_values

KEY = PrivateKey(b"\x07" * 32)


def config(home: Path, **oracle: object) -> NodeConfig:
    values = default_values()
    values["oracle"].update(oracle)
    return NodeConfig(home, values)


def test_file_source_reports_fresh_prices_and_nothing_when_stale(tmp_path: Path) -> None:
    genesis = parse_genesis(demo_genesis("c", [("v", KEY, 1)], [], "2026-11-26T00:00:00Z"))
    (tmp_path / "oracle_prices.json").write_text(json.dumps({"BTC-PERP": "65000.1"}))
    source = price_source_from_config(
        config(tmp_path, source="file", max_staleness_ms=5_000), genesis, KEY.address
    )
    assert source.prices() == {0: 650_001}
    old = time.time() - 60
    os.utime(tmp_path / "oracle_prices.json", (old, old))
    assert source.prices() == {}


def test_simulated_source_uses_the_configured_step(tmp_path: Path) -> None:
    genesis = parse_genesis(demo_genesis("c", [("v", KEY, 1)], [], "2026-11-26T00:00:00Z"))
    calm = price_source_from_config(
        config(tmp_path, simulated_step_ppm=0, simulated_noise_ppm=0), genesis, KEY.address
    )
    prices = calm.prices()
    assert prices == {m.market_id: m.initial_oracle_price for m in genesis.markets}
