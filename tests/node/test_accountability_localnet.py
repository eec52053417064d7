"""Accountability on a running localnet (issue 17), each node a process of its own:

- a validator in the test-only double-sign mode (:mod:`appchaind.node.double_sign`) is
  caught: the honest nodes commit its duplicate votes as evidence, its stake is slashed,
  it is tombstoned and leaves the set, the honest validators keep their stake and power,
  and the chain keeps committing;
- a validator stopped for longer than the downtime window (a small one in this test's
  genesis) is jailed and leaves the set; restarted, it sends ``tx staking unjail`` (the
  CLI) once its term is over and returns to the set, and signs again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appchaind.chain.crypto import PrivateKey
from appchaind.localnet.processes import Localnet
from appchaind.node.double_sign import TEST_DOUBLE_SIGN_ENV
from tests.node.test_localnet import blocks_agree
from tests.node.test_staking_localnet import GENESIS_POWER, QUOTE, _cli, _signers, _validators

pytestmark = pytest.mark.slow

HONEST = [0, 1, 2]


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Localnet]:
    localnet = Localnet(tmp_path / "net")
    try:
        yield localnet
    finally:
        localnet.close()


def _set_params(net: Localnet, params: dict[str, Any]) -> None:
    """The same genesis params in every node's genesis.json (before any node starts)."""
    for home in net.homes:
        path = home / "genesis.json"
        doc = json.loads(path.read_text())
        doc.setdefault("params", {}).update(params)
        path.write_text(json.dumps(doc, indent=1))


def _rows(net: Localnet) -> dict[str, dict[str, Any]]:
    """``query validators --json`` through node 0: consensus address -> row."""
    doc = _cli("query", "validators", "--node", f"127.0.0.1:{net.nodes[0].rpc_port}")
    return {row["consensus_address"]: row for row in doc["validators"]}


def _check_untouched(rows: dict[str, dict[str, Any]], addresses: list[str]) -> None:
    for address in addresses:
        row = rows[address]
        assert (row["power"], row["stake"], row["slashed"]) == (GENESIS_POWER, "10", "0"), row
        assert not row["jailed"] and not row["tombstoned"], row


def _address(net: Localnet, i: int) -> str:
    return PrivateKey.load(net.homes[i] / "validator_key.json").address.hex()


def test_a_validator_that_double_signs_is_caught_slashed_and_removed(net: Localnet) -> None:
    _set_params(net, {"slash_double_sign_ppm": 100_000})
    cheat = _address(net, 3)
    for i in HONEST:
        net.start(i)
    net.start(3, env={TEST_DOUBLE_SIGN_ENV: cheat})
    net.wait_height([0, 1, 2, 3], 2)
    assert _validators(net, 0)[cheat] == GENESIS_POWER
    # Its conflicting prevotes become evidence in a block; the application tombstones it,
    # and its power-0 update takes effect two heights later.
    net.wait_until(lambda: cheat not in _validators(net, 0), "the double-signer out of the set")
    top = net.height(0)
    evidence = [
        (height, e)
        for height in range(1, top + 1)
        for e in net.get(0, f"/block/{height}")["evidence"]
    ]
    assert evidence and {e["validator"] for _, e in evidence} == {cheat}, evidence
    rows = _rows(net)
    row = rows[cheat]
    assert (row["power"], row["stake"], row["slashed"]) == (0, "9", "1"), row
    assert row["tombstoned"] and row["jailed"], row
    honest = [_address(net, i) for i in HONEST]
    _check_untouched(rows, honest)
    assert {a: p for a, p in _validators(net, 0).items()} == dict.fromkeys(honest, GENESIS_POWER)
    metrics = net.get_text(0, "/metrics")
    assert 'appchaind_staking_tombstoned{chain_id="test-net"} 1.0' in metrics
    assert 'appchaind_staking_jailed{chain_id="test-net"} 1.0' in metrics
    assert 'appchaind_staking_slashed_total{chain_id="test-net"} 1.0' in metrics
    # The chain goes on with the three honest validators, every node on the same blocks.
    target = net.height(0) + 5
    net.wait_height(HONEST, target)
    blocks_agree(net, HONEST, target)
    # The set of height top + 1 (at the latest) lacks it: the commits from there on,
    # carried by the next blocks, are the honest validators'.
    for height in range(top + 2, target + 1):
        assert cheat not in _signers(net, 0, height)


def test_a_validator_stopped_past_the_downtime_window_is_jailed_and_returns_after_unjail(
    net: Localnet,
) -> None:
    # Jailed for missing more than 10 of the last 12 commits, for 5 blocks, slashed 1%.
    _set_params(
        net,
        {
            "downtime_window": 12,
            "downtime_max_missed": 10,
            "downtime_jail_blocks": 5,
            "slash_downtime_ppm": 10_000,
        },
    )
    net.start_all()
    net.wait_height([0, 1, 2, 3], 3)
    down = PrivateKey.load(net.homes[3] / "validator_key.json")
    address = down.address.hex()
    # The operator of a genesis validator is its consensus key's address: the faucet
    # opens its account (a sender needs one).
    assert net.commit_tx(0, net.faucet_tx(down, QUOTE))["code"] == 0
    net.stop(3)
    net.wait_until(lambda: address not in _validators(net, 0), "the stopped validator jailed")
    rows = _rows(net)
    row = rows[address]
    assert (row["power"], row["stake"], row["slashed"]) == (0, "9.9", "0.1"), row
    assert row["jailed"] and not row["tombstoned"] and row["jailed_until"] > 0, row
    _check_untouched(rows, [_address(net, i) for i in HONEST])
    assert 'appchaind_staking_jailed{chain_id="test-net"} 1.0' in net.get_text(0, "/metrics")
    # Restarted, it catches up; once its term is over its operator unjails it.
    net.start(3)
    net.wait_height([0, 3], row["jailed_until"])
    node = f"127.0.0.1:{net.nodes[0].rpc_port}"
    key = str(net.homes[3] / "validator_key.json")
    committed = _cli("tx", "staking", "unjail", "--key", key, "--node", node)
    assert committed["code"] == 0, committed
    back = committed["height"] + 2
    net.wait_height([0, 1, 2, 3], back)
    assert _validators(net, 0)[address] == 9  # 9.9 quote of stake
    row = _rows(net)[address]
    assert (row["power"], row["jailed"], row["jailed_until"]) == (9, False, 0), row
    # It signs again: its address is among a later commit's signers (a commit holds the
    # first +2/3 of precommits its proposer saw, so it may be left out of a few).
    for height in range(back + 1, back + 61):
        net.wait_height([0], height)
        if address in _signers(net, 0, height):
            break
    else:
        raise AssertionError(f"the unjailed validator signed none of {back + 1}..{back + 60}")
    target = net.height(0) + 3
    net.wait_height([0, 1, 2, 3], target)
    blocks_agree(net, [0, 1, 2, 3], target)
