"""genesis.json: parsing to integer units, the genesis hash, and errors that name the key."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from appchaind.chain.crypto import PrivateKey
from appchaind.home import demo_genesis
from config.genesis import load_genesis, parse_genesis
from config.node_config import ConfigError

VALIDATOR = PrivateKey(b"\x05" * 32)
TRADER = PrivateKey(b"\x06" * 32)


def good() -> dict[str, Any]:
    return demo_genesis(
        "test-chain", [("v0", VALIDATOR, 10)], [("t", TRADER.address, "1500.25")],
        "2026-11-26T00:00:00Z",
    )  # fmt: skip


def test_demo_genesis_parses_to_integer_units() -> None:
    genesis = parse_genesis(good())
    btc = genesis.market("BTC-PERP")
    assert btc is not None
    # tick 0.1 USD × lot 0.0001 BTC = 0.00001 USD = 10 micro-units
    assert btc.quantum == 10
    assert btc.initial_oracle_price == 650_000  # 65000 / 0.1
    assert genesis.accounts[0].balance == 1_500_250_000
    assert genesis.genesis_time_ms == 1_795_651_200_000
    assert genesis.validator_set()[0].power == 10


def test_genesis_hash_ignores_formatting_but_not_meaning(tmp_path: Path) -> None:
    doc = good()
    (tmp_path / "a.json").write_text(json.dumps(doc))
    (tmp_path / "b.json").write_text(json.dumps(doc, indent=4, sort_keys=True))
    assert load_genesis(tmp_path / "a.json").hash() == load_genesis(tmp_path / "b.json").hash()
    doc["accounts"][0]["balance"] = "1500.26"
    assert parse_genesis(doc).hash() != load_genesis(tmp_path / "a.json").hash()


def _mutate(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(good())
    target: Any = doc
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if value is _DELETE:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize(
    "path, value, expected",
    [
        ("chain_id", "bad chain!", 'chain_id = "bad chain!" may hold only'),
        ("chain_id", _DELETE, "chain_id is missing"),
        ("genesis_time", "yesterday", "genesis_time"),
        ("genesis_time", "2026-13-01T00:00:00Z", "not a valid date"),
        ("validators", [], "validators must be a non-empty list"),
        ("validators.0.power", 0, "validators[0].power = 0 is out of range"),
        ("validators.0.public_key", "abcd", "validators[0].public_key"),
        ("markets.0.tick_size", "0", "markets[0].tick_size"),
        ("markets.0.symbol", "btc", 'markets[0].symbol = "btc" must look like "BTC-PERP"'),
        ("markets.0.maintenance_margin_ppm", 60_000, "must be less than initial_margin_ppm"),
        (
            "markets.0.initial_oracle_price",
            "65000.05",
            "not a multiple of 0.1; the nearest valid values are 65000 and 65000.1",
        ),
        ("markets.0.taker_fee_ppm", -1, "markets[0].taker_fee_ppm = -1 is out of range"),
        ("markets.0.maker_fee_ppm", -600, "markets[0].maker_fee_ppm = -600 is out of range"),
        ("markets.0.lot_size", "0.0000001", "it must be a whole number"),
        ("markets.0.leverage", 20, "markets[0].leverage is not a known key"),
        ("markets.1.symbol", "BTC-PERP", 'markets[1].symbol = "BTC-PERP" is listed twice'),
        ("accounts.0.balance", "-5", "must not be negative"),
        ("accounts.0.balance", "1.0000001", "accounts[0].balance"),
        ("accounts.0.address", "xyz", "accounts[0].address"),
        ("params.max_block_txs", 0, "params.max_block_txs = 0 is out of range"),
        ("params.faucet_enabled", "yes", "params.faucet_enabled"),
        ("params.surprise", 1, "params.surprise is not a known key"),
        ("insurance_fund", 5, "insurance_fund"),
    ],
)
def test_bad_genesis_gives_one_line_error_naming_the_key(
    path: str, value: Any, expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_genesis(_mutate(path, value), "genesis.json")
    message = str(err.value)
    assert expected in message
    assert message.startswith("genesis.json: ")
    assert "\n" not in message


def test_duplicate_validator_and_account_are_refused() -> None:
    doc = good()
    doc["validators"].append(dict(doc["validators"][0]))
    with pytest.raises(ConfigError, match=r"validators\[1\].public_key appears twice"):
        parse_genesis(doc)
    doc = good()
    doc["accounts"].append(dict(doc["accounts"][0]))
    with pytest.raises(ConfigError, match=r"accounts\[1\].address appears twice"):
        parse_genesis(doc)


def test_unreadable_genesis_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_genesis(tmp_path / "genesis.json")
    (tmp_path / "genesis.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_genesis(tmp_path / "genesis.json")
