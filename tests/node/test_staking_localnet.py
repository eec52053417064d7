"""Proof of stake on a running localnet (issue 17), each node a process of its own:

- a full node whose operator bonds stake with a CreateValidator tx (sent with the CLI's
  ``tx staking create-validator``) joins the validator set two heights after the tx's
  block and signs the chain's commits from then on, and earns a share of a trade's fees,
  which its operator collects with ``tx staking withdraw-rewards``;
- a genesis validator whose operator undelegates its whole self-bond leaves the set two
  heights later and signs no commit after that, while its node follows the chain, and a
  new node syncs from genesis through the change;

and through both changes the chain keeps committing, every node on the same blocks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from appchaind.chain.crypto import PrivateKey
from appchaind.exchange.txs import Undelegate
from appchaind.localnet.processes import Localnet
from tests.node.test_localnet import blocks_agree

pytestmark = pytest.mark.slow

QUOTE = 1_000_000
#: The localnet's genesis validators have power 10: the default power unit is one quote
#: unit, so each is backed by a self-bond of 10 quote.
GENESIS_POWER = 10


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Localnet]:
    localnet = Localnet(tmp_path / "net")
    try:
        yield localnet
    finally:
        localnet.close()


def _validators(net: Localnet, i: int) -> dict[str, int]:
    """Node ``i``'s validator set of the next height: address -> power."""
    return {v["address"]: v["voting_power"] for v in net.get(i, "/validators")["validators"]}


def _power(net: Localnet, i: int) -> int:
    """Node ``i``'s own voting power, as its /status says (0: not a validator)."""
    status = net.status(i)
    assert status is not None
    return 0 if status["validator"] is None else status["validator"]["voting_power"]


def _cli(*args: str) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "appchaind.cli", *args, "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, f"appchaind {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return json.loads(proc.stdout)


def _trade(net: Localnet, node: str) -> None:
    """trader0 rests a sell at the BTC-PERP oracle price, trader1 takes it: one fill."""
    (btc,) = [m for m in _cli("query", "markets", "--node", node) if m["market"] == "BTC-PERP"]
    accounts = net.dir / "accounts"
    for name, side, tif in (("trader0", "sell", "gtc"), ("trader1", "buy", "ioc")):
        done = _cli("tx", "order", "place", "--market", "BTC-PERP", "--side", side, "--size",
                    btc["lot_size"], "--price", btc["oracle_price"], "--tif", tif, "--key",
                    str(accounts / f"{name}.json"), "--node", node)  # fmt: skip
        assert done["code"] == 0, done
    assert done["fills"], done


def _signers(net: Localnet, i: int, height: int) -> list[str]:
    return net.get(i, f"/block/{height}")["last_commit"]["signers"]


def test_a_full_node_becomes_a_validator_by_tx_and_signs(net: Localnet) -> None:
    """Through the CLI: ``tx staking create-validator --home`` (the full node's consensus
    key) signed by a funded account, then ``query validators`` and ``delegations``."""
    net.start_all()
    net.wait_height([0, 1, 2, 3], 3)
    full = net.add_full_node(validator=True)
    net.start(full)
    net.wait_until(lambda: net.height(full) >= net.height(0) - 1, "the full node at the tip")
    consensus_key = PrivateKey.load(net.homes[full] / "validator_key.json")
    address = consensus_key.address.hex()
    assert address not in _validators(net, 0)
    assert _power(net, full) == 0
    operator = net.dir / "accounts" / "alice.json"
    node = f"127.0.0.1:{net.nodes[0].rpc_port}"
    committed = _cli("tx", "staking", "create-validator", "--home", str(net.homes[full]),
                     "--moniker", "full4", "--details", "a localnet test", "--commission",
                     "0.05", "--amount", "10", "--key", str(operator), "--node", node)  # fmt: skip
    assert committed["code"] == 0, committed
    joined = committed["height"] + 2
    # The update of block H takes effect at H + 2 on every node.
    net.wait_height([0, 1, 2, 3, full], joined)
    for i in (0, full):
        assert _validators(net, i)[address] == 10
    assert _power(net, full) == 10
    doc = _cli("query", "validators", "--node", node)
    (row,) = [v for v in doc["validators"] if v["consensus_address"] == address]
    alice = PrivateKey.load(operator).address.hex()
    assert (row["operator"], row["moniker"], row["power"], row["stake"], row["commission"]) == (
        alice, "full4", 10, "10", "0.05",
    )  # fmt: skip
    assert doc["total_power"] == 50
    metrics = net.get_text(0, "/metrics")
    assert 'appchaind_staking_validators{chain_id="test-net"} 5.0' in metrics
    assert 'appchaind_staking_bonded{chain_id="test-net"} 50.0' in metrics
    assert f'appchaind_staking_validator_power{{chain_id="test-net",operator="{alice}"}} 10.0' in (
        metrics
    )
    stake = _cli("query", "delegations", "--key", str(operator), "--node", node)
    assert stake["delegations"] == [
        {"validator": alice, "moniker": "full4", "shares": 10 * QUOTE, "value": "10",
         "rewards": "0"}
    ]  # fmt: skip
    assert stake["commission"] == "0"
    # It signs: its address is among a later commit's signers. A commit holds the first
    # +2/3 of precommits its proposer saw, so a vote may be left out of a few in a row.
    first = joined + 1
    for height in range(first, first + 60):
        net.wait_height([0], height)
        if address in _signers(net, 0, height):
            break
    else:
        raise AssertionError(f"the new validator signed none of blocks {first}..{first + 59}")
    # A trade's fees are the stakers' rewards: alice's validator (10 of the 50 staked)
    # earns a fifth of them, 5% of that her commission, the rest her self-bond's; she
    # collects both with withdraw-rewards.
    _trade(net, node)
    net.wait_until(
        lambda: _cli("query", "delegations", "--key", str(operator), "--node", node)[
            "delegations"][0]["rewards"] != "0",
        "alice's rewards",
    )  # fmt: skip
    stake = _cli("query", "delegations", "--key", str(operator), "--node", node)
    owed = Decimal(stake["delegations"][0]["rewards"]) + Decimal(stake["commission"])
    assert Decimal(stake["commission"]) > 0
    unpaid = [
        line.split()[-1]
        for line in net.get_text(0, "/metrics").splitlines()
        if line.startswith("appchaind_staking_rewards_unpaid{")
    ]
    assert len(unpaid) == 1 and float(unpaid[0]) > 0, unpaid
    before = Decimal(_cli("query", "account", "--key", str(operator), "--node", node)["balance"])
    collected = _cli("tx", "staking", "withdraw-rewards", "--all", "--key", str(operator),
                     "--node", node)  # fmt: skip
    assert collected["code"] == 0, collected
    after = Decimal(_cli("query", "account", "--key", str(operator), "--node", node)["balance"])
    assert after - before >= owed  # what was owed, and what the blocks since added
    # The chain goes on with five validators, every node on the same blocks.
    target = net.height(0) + 5
    net.wait_height([0, 1, 2, 3, full], target)
    blocks_agree(net, [0, 3, full], target)


def test_a_validator_that_undelegates_fully_leaves_the_set(net: Localnet) -> None:
    net.start_all()
    net.wait_height([0, 1, 2, 3], 3)
    leaving = PrivateKey.load(net.homes[3] / "validator_key.json")
    address = leaving.address.hex()
    assert _validators(net, 0)[address] == GENESIS_POWER
    # A genesis validator's operator is its consensus key's address, which has no
    # account yet: the faucet opens one (any sender needs an account).
    assert net.commit_tx(0, net.faucet_tx(leaving, QUOTE))["code"] == 0
    undelegate = Undelegate(leaving.address, GENESIS_POWER * QUOTE)
    committed = net.commit_tx(1, net.tx(leaving, undelegate))
    assert committed["code"] == 0, committed
    (event,) = [e for e in committed["events"] if e["kind"] == "undelegated"]
    assert event["validator"] == address
    left = committed["height"] + 2
    net.wait_height([0, 1, 2, 3], left + 5)
    for i in range(4):
        assert address not in _validators(net, i)
    assert _power(net, 3) == 0
    # From height `left` on, the commits (carried by the next block) are the three others'.
    for height in range(left + 1, left + 6):
        signers = _signers(net, 0, height)
        assert address not in signers and len(signers) >= 3, (height, signers)
    # The chain goes on with three validators; the fourth node follows it. A new node
    # syncs from genesis through the change: it checks each commit against the set of its
    # height, which its own execution of the blocks derives.
    full = net.add_full_node()
    net.start(full)
    target = net.height(0) + 5
    net.wait_height([0, 1, 2, 3, full], target)
    blocks_agree(net, [0, 1, 2, 3, full], target)
    assert address not in _validators(net, full)
