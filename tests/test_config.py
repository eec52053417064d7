"""config.toml: defaults, rendering, and one-line errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.node_config import SCHEMA, ConfigError, load_config, render_default_config


def write(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)
    return home


def test_rendered_default_config_loads_back_with_every_key(tmp_path: Path) -> None:
    home = write(tmp_path, render_default_config())
    config = load_config(home)
    for section, keys in SCHEMA.items():
        for key in keys:
            assert getattr(getattr(config, section), key.name) == key.default
    text = (home / "config.toml").read_text()
    for keys in SCHEMA.values():
        for key in keys:
            assert f"# {key.doc}" in text


def test_empty_config_means_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.consensus.timeout_commit_ms == 100


def test_overrides_are_validated() -> None:
    with pytest.raises(ConfigError, match="consensus.timeout_commit_ms"):
        render_default_config(consensus={"timeout_commit_ms": -1})


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[nodes]\nmoniker = 'x'\n", "unknown section [nodes]"),
        ("[node]\nmonikr = 'x'\n", "unknown key node.monikr"),
        (
            "[consensus]\ntimeout_propose_ms = 'fast'\n",
            'consensus.timeout_propose_ms = "fast": not an integer; allowed: an integer from 1 to 600000',
        ),
        (
            "[consensus]\ntimeout_propose_ms = 0\n",
            "consensus.timeout_propose_ms = 0: out of range; allowed: an integer from 1 to 600000",
        ),
        (
            "[consensus]\ntimeout_commit_ms = 1.5\n",
            "consensus.timeout_commit_ms = 1.5: not an integer",
        ),
        (
            "[mempool]\nrecheck = 'yes'\n",
            'mempool.recheck = "yes": not a boolean; allowed: true or false',
        ),
        (
            "[p2p]\nlisten_address = 'localhost'\n",
            'p2p.listen_address = "localhost": expected "host:port"',
        ),
        (
            "[p2p]\nlisten_address = '127.0.0.1:99999'\n",
            "the port must be an integer from 0 to 65535",
        ),
        (
            "[p2p]\npersistent_peers = ['abc@127.0.0.1:1']\n",
            "the node id must be 40 lowercase hex characters",
        ),
        ("[p2p]\npersistent_peers = '127.0.0.1:1'\n", "p2p.persistent_peers"),
        (
            "[logging]\nlevel = 'loud'\n",
            'logging.level = "loud": not an allowed value; allowed: one of "debug", "info", "warning", "error"',
        ),
        ("[oracle]\nsource = 'chainlink'\n", "oracle.source"),
        (
            "[p2p]\ndial_backoff_min_ms = 5000\ndial_backoff_max_ms = 100\n",
            "larger than p2p.dial_backoff_max_ms",
        ),
        ("[mempool]\nmax_txs = 0\n", "mempool.max_txs = 0: out of range"),
        (
            "[pbs]\nbid_deadline_ms = 500\n",
            "pbs.bid_deadline_ms = 500 must be less than half of consensus.timeout_propose_ms = 1000",
        ),
        ("[node\n", "not valid TOML"),
        ("node = 5\n", "node must be a [node] table"),
    ],
)
def test_bad_config_gives_one_line_error_naming_the_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    home = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(home)
    message = str(err.value)
    assert expected in message
    assert "\n" not in message
    assert str(home / "config.toml") in message


def test_missing_config_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="appchaind init --home"):
        load_config(tmp_path)
