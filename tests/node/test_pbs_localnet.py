"""Proposer-builder separation on a 4-validator localnet with one builder process
(issue 15): most blocks are builder-built, each winning bid is paid exactly once (from
the builder's bond, checked from balances), and the proposers' and the insurance fund's
income matches the bids (a proposer's share is its validator's reward, issue 17)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
import trio

from appchaind.chain import codec, types
from appchaind.chain.crypto import PrivateKey
from appchaind.client.library import open_client
from appchaind.exchange.txs import BuilderBid
from appchaind.home import HomePaths
from appchaind.localnet.processes import Localnet
from appchaind.rpc.views import quote

pytestmark = pytest.mark.slow

BOND = 1000 * 10**6
PROPOSER_PPM = 500_000  # the genesis default of builder_bid_proposer_ppm
BLOCKS = 12


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    localnet = Localnet(tmp_path_factory.mktemp("pbs") / "net", spare_nodes=0)
    localnet.start_all()
    try:
        localnet.wait_height([0, 1, 2, 3], 2)
        yield localnet
    finally:
        localnet.close()


def _register(net: Localnet, key: PrivateKey) -> None:
    async def main() -> None:
        async with open_client(f"127.0.0.1:{net.nodes[0].rpc_port}") as client:
            result = await client.register_builder(key, "test-builder", quote(BOND))
            assert result.ok, result.log

    trio.run(main)


def _builders(net: Localnet) -> dict[str, dict[str, object]]:
    async def main() -> dict[str, dict[str, object]]:
        async with open_client(f"127.0.0.1:{net.nodes[1].rpc_port}") as client:
            return {b["address"]: b for b in (await client.builders())["builders"]}

    return trio.run(main)


def _delegations(net: Localnet, address: str) -> dict[str, object]:
    async def main() -> dict[str, object]:
        async with open_client(f"127.0.0.1:{net.nodes[1].rpc_port}") as client:
            return dict(await client.request("delegations", {"address": address}))

    return trio.run(main)


def _first_tx(block: dict[str, object]) -> types.Tx | None:
    txs = block["txs"]
    assert isinstance(txs, list)
    return codec.decode(types.Tx, bytes.fromhex(txs[0])) if txs else None


def test_most_blocks_are_builder_built_and_each_bid_is_paid_once(net: Localnet) -> None:
    key_file = net.dir / "accounts" / "builder.json"
    key = PrivateKey.load(key_file)
    _register(net, key)
    log = open(net.dir / "builder.log", "wb")  # noqa: SIM115 - the child's for its life
    builder = subprocess.Popen(
        [sys.executable, "-m", "appchaind.cli", "builder", "--home", str(net.homes[0]),
         "--key", str(key_file), "--seconds", "120"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    try:
        start = net.height(0) + 2  # the builder has joined and followed one block by then
        traders = [PrivateKey.load(net.dir / "accounts" / f"trader{i}.json") for i in range(4)]
        submitted = []
        while net.height(0) < start + BLOCKS:
            for i, trader in enumerate(traders):
                answer = net.submit(i, net.faucet_tx(trader, 1_000_000))
                assert answer["code"] == 0, answer
                submitted.append(answer["tx_hash"])
            time.sleep(0.3)
        net.wait_height([0, 1, 2, 3], start + BLOCKS)
    finally:
        builder.terminate()
        builder.wait(10)
    final = net.height(0) + 2  # the builder may win a block while it stops
    net.wait_height([0], final)
    shares: dict[str, int] = {}
    values = []
    built_in_window = 0
    for height in range(1, final + 1):
        block = net.get(0, f"/block/{height}")
        first = _first_tx(block)
        if first is None or not isinstance(first.body, BuilderBid):
            continue
        built_in_window += start <= height < start + BLOCKS
        bid = first.body
        assert bid.height == height and first.sender == key.public_key
        assert bid.proposer.hex() == block["header"]["proposer"]
        values.append(bid.value)
        share = bid.value * PROPOSER_PPM // 1_000_000
        shares[bid.proposer.hex()] = shares.get(bid.proposer.hex(), 0) + share
        events = net.get(0, f"/tx/{block['tx_hashes'][0]}")["events"]
        (paid,) = [e for e in events if e["kind"] == "bid_paid"]
        assert (paid["amount"], paid["to_proposer"]) == (quote(bid.value), quote(share))
        assert paid["to_insurance_fund"] == quote(bid.value - share)
    assert built_in_window > BLOCKS // 2, (
        built_in_window,
        (net.dir / "builder.log").read_text()[-3000:],
    )
    # Paid exactly once: the builder's record and bond match the bids, and every
    # proposer's shares are its validator's rewards (with its part of the trading fees;
    # the genesis validators charge no commission and hold all their own shares), waiting
    # in the fee pool: its operator's account holds nothing.
    record = _builders(net)[key.address.hex()]
    assert (record["paid"], record["bids_won"]) == (quote(sum(values)), len(values))
    assert record["bond"] == quote(BOND - sum(values))
    for home in net.homes:
        address = PrivateKey.load(HomePaths(home).validator_key).address.hex()
        if address in shares:
            doc = _delegations(net, address)
            delegations = doc["delegations"]
            assert isinstance(delegations, list) and len(delegations) == 1
            rewards = Decimal(delegations[0]["rewards"]) + Decimal(str(doc["commission"]))
            assert rewards >= Decimal(quote(shares[address])), (address, doc)
    assert all(net.get(0, f"/tx/{h}")["code"] == 0 for h in submitted)
