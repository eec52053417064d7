"""The appchaind command line, run as a user would run it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from appchaind.cli import build_parser
from config.genesis import load_genesis
from config.node_config import load_config


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "appchaind.cli", *args], capture_output=True, text=True
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def _all_command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(parser: object, prefix: list[str]) -> None:
        paths.append(prefix)
        for action in getattr(parser, "_actions", []):
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                for name, sub in choices.items():
                    walk(sub, [*prefix, name])

    walk(build_parser(), [])
    return paths


@pytest.mark.parametrize("path", _all_command_paths(), ids=lambda p: " ".join(p) or "appchaind")
def test_every_command_has_help(path: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*path, "--help"])
    assert exit_.value.code == 0


def test_version() -> None:
    assert run("version").stdout.startswith("appchaind ")


def test_init_twice_refuses_to_overwrite_keys(tmp_path: Path) -> None:
    home = tmp_path / "h"
    run("init", "--home", str(home), "--moniker", "alpha", "--chain-id", "my-chain")
    key_before = (home / "validator_key.json").read_text()
    second = run("init", "--home", str(home), ok=False)
    assert second.returncode == 1
    assert "refusing to overwrite keys" in second.stderr
    assert "--force" in second.stderr
    assert "Traceback" not in second.stderr
    assert (home / "validator_key.json").read_text() == key_before
    run("init", "--home", str(home), "--force")
    assert (home / "validator_key.json").read_text() != key_before
    assert load_config(home).node.moniker == "node"


def test_keys_add_show_list(tmp_path: Path) -> None:
    ring = str(tmp_path / "ring")
    added = json.loads(run("keys", "add", "alice", "--keyring-dir", ring, "--json").stdout)
    mode = stat.S_IMODE(os.stat(added["file"]).st_mode)
    assert mode == 0o600
    assert run("keys", "show", "alice", "--keyring-dir", ring).stdout.strip() == added["address"]
    assert run("keys", "show", "--key", added["file"]).stdout.strip() == added["address"]
    listed = json.loads(run("keys", "list", "--keyring-dir", ring, "--json").stdout)
    assert listed == [{"name": "alice", "address": added["address"]}]
    again = run("keys", "add", "alice", "--keyring-dir", ring, ok=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    missing = run("keys", "show", "--key", str(tmp_path / "nope.json"), ok=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_localnet_init_writes_four_valid_homes(tmp_path: Path) -> None:
    net = tmp_path / "x"
    run("localnet", "init", "--dir", str(net), "--validators", "4", "--base-port", "27000")
    genesis_hashes = set()
    node_ids = {}
    for i in range(4):
        home = net / f"node{i}"
        config = load_config(home)
        assert config.p2p.listen_address == f"127.0.0.1:{27000 + 10 * i}"
        assert config.rpc.listen_address == f"127.0.0.1:{27000 + 10 * i + 1}"
        assert config.http.listen_address == f"127.0.0.1:{27000 + 10 * i + 2}"
        assert len(config.p2p.persistent_peers) == 3
        # Four validators on this machine: each checks signatures on its own thread
        # unless the machine has a spare core for every node's threads.
        assert config.mempool.verify_threads == (0 if (os.cpu_count() or 1) <= 4 else 2)
        genesis_hashes.add(load_genesis(home / "genesis.json").hash())
        node_ids[i] = run("keys", "show", "--key", str(home / "node_key.json")).stdout.strip()
        checked = run("config", "check", "--home", str(home)).stdout
        assert "genesis hash" in checked
    assert len(genesis_hashes) == 1
    # Each node's peers are exactly the other three, by node id and port.
    for i in range(4):
        peers = load_config(net / f"node{i}").p2p.persistent_peers
        expected = {f"{node_ids[j]}@127.0.0.1:{27000 + 10 * j}" for j in range(4) if j != i}
        assert set(peers) == expected
    genesis = load_genesis(net / "node0" / "genesis.json")
    assert [m.symbol for m in genesis.markets] == ["BTC-PERP", "ETH-PERP"]
    assert len(genesis.validators) == 4
    account_files = sorted((net / "accounts").glob("*.json"))
    funded = {a.address.hex() for a in genesis.accounts if a.balance > 0}
    traders = [p for p in account_files if p.stem.startswith("trader")]
    assert len(traders) >= 4
    for path in account_files:
        assert run("keys", "show", "--key", str(path)).stdout.strip() in funded
    again = run("localnet", "init", "--dir", str(net), ok=False)
    assert again.returncode == 1 and "already holds a localnet" in again.stderr


def test_localnet_init_rejects_bad_arguments(tmp_path: Path) -> None:
    bad = run("localnet", "init", "--dir", str(tmp_path / "n"), "--validators", "0", ok=False)
    assert bad.returncode == 1 and "--validators" in bad.stderr
    bad = run("localnet", "init", "--dir", str(tmp_path / "n"), "--base-port", "65530", ok=False)
    assert bad.returncode == 1 and "--base-port" in bad.stderr


def test_config_check_reports_bad_config_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "h"
    run("init", "--home", str(home))
    config = home / "config.toml"
    config.write_text(
        config.read_text().replace("timeout_commit_ms = 100", "timeout_commit_ms = -3")
    )
    proc = run("config", "check", "--home", str(home), ok=False)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert "consensus.timeout_commit_ms = -3" in proc.stderr
