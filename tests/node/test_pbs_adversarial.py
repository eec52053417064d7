"""Builders that misbehave, on a 4-validator localnet (issue 15). Each adversary is the
real builder (appchaind.builder.Builder: a p2p peer of the validators, following node 0)
with its bids made wrong one way; traders keep sending txs meanwhile. In each case: no
height takes more than one extra round, every trader's tx commits, nothing is paid that
should not be (the builder's record and bond match the bids in the chain, checked from
the blocks), and the proposers say why they built their own blocks (the fallback
metric's reason). A builder that wins blocks and censors one trader's orders cannot keep
them out: the validators' inclusion lists force them in within two blocks of the first
block that could have carried them.

A bid carries its block, so a builder cannot win and then withhold the block (as with
blind bids): "withholding" here is a bid sent without its txs, which is a block that
does not match its bid.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import trio

from appchaind.builder import Builder
from appchaind.chain import codec, types
from appchaind.chain.crypto import PrivateKey, merkle_root
from appchaind.chain.units import to_units
from appchaind.client.library import Client, open_client
from appchaind.exchange.txs import BuilderBid, Faucet
from appchaind.localnet.load_builder import fallbacks
from appchaind.localnet.processes import Localnet
from appchaind.node.messages import BidMessage, encode_message
from appchaind.rpc.views import QUOTE_UNIT, quote
from p2p.peers import Channel

pytestmark = pytest.mark.slow

BOND = 1000 * 10**6
#: Blocks each adversary is given.
WINDOW = 5


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    localnet = Localnet(tmp_path_factory.mktemp("pbs-adv") / "net", spare_nodes=0)
    localnet.start_all()
    try:
        localnet.wait_height([0, 1, 2, 3], 2)
        key = PrivateKey.load(localnet.dir / "accounts" / "builder.json")

        async def register() -> None:
            async with open_client(_rpc(localnet)) as client:
                result = await client.register_builder(key, "adversary", quote(BOND))
                assert result.ok, result.log

        trio.run(register)
        yield localnet
    finally:
        localnet.close()


def _rpc(net: Localnet, i: int = 0) -> str:
    return f"127.0.0.1:{net.nodes[i].rpc_port}"


class _Adversary(Builder):
    """The builder, with ``bids_for`` replaced by ``wrong(self, height, bond, honest)``
    (``honest``: the message the real builder would send; a list of messages to send)."""

    def __init__(self, net: Localnet, wrong) -> None:  # type: ignore[no-untyped-def]
        super().__init__(
            net.homes[0], PrivateKey.load(net.dir / "accounts" / "builder.json"), node=_rpc(net)
        )
        self.wrong = wrong
        self.extra: list[BidMessage] = []

    def bids_for(self, height: int, bond: int) -> BidMessage | None:
        honest = super().bids_for(height, bond)
        messages = self.wrong(self, height, bond, honest)
        # Builder.run sends the last message; the others go out first, from here.
        for message in messages[:-1]:
            self.peers.broadcast(Channel.BUILDER, encode_message(message))
        return messages[-1] if messages else None


def _own_tx(builder: Builder, n: int) -> bytes:
    """A tx of the builder's own (a faucet to its account), to give a block content."""
    tx = types.sign_tx(builder.key, builder.chain_id, builder._nonce_ms() + n, 10**6, Faucet(1))
    return codec.encode(tx)


def _over_bond(b: Builder, height: int, bond: int, honest: BidMessage | None) -> list[BidMessage]:
    txs = honest.txs if honest else ()
    return [BidMessage(b.sign_bids(height, bond + 1, merkle_root(list(txs))), txs)]


def _wrong_hash(b: Builder, height: int, bond: int, honest: BidMessage | None) -> list[BidMessage]:
    txs = (*(honest.txs if honest else ()), _own_tx(b, 0))
    return [BidMessage(b.sign_bids(height, 5 * 10**6, merkle_root(list(txs[:-1]))), txs)]


def _withheld(b: Builder, height: int, bond: int, honest: BidMessage | None) -> list[BidMessage]:
    txs = (*(honest.txs if honest else ()), _own_tx(b, 0))
    return [BidMessage(b.sign_bids(height, 5 * 10**6, merkle_root(list(txs))), ())]


def _two_bids(b: Builder, height: int, bond: int, honest: BidMessage | None) -> list[BidMessage]:
    """Two bids for each proposer and round, same txs: 2 then 3 quote, in one message
    (so both are there when the proposer's turn comes; sent apart, the turn may come
    between them and the first one win, which is as valid)."""
    if honest is None:
        return []  # the builder's later, fresher bids for the height: not this test's
    txs_hash = merkle_root(list(honest.txs))
    bids = b.sign_bids(height, 2 * 10**6, txs_hash) + b.sign_bids(height, 3 * 10**6, txs_hash)
    return [BidMessage(bids, honest.txs)]


async def _send(client: Client, key: PrivateKey, body: object) -> str:
    """``body`` signed by ``key``, accepted by the node (broadcast sync); its hash."""
    raw = await client.sign(key, body)
    answer = await client.broadcast(raw, mode="sync")
    assert answer.ok, answer.log
    return types.tx_hash(raw).hex()


def _run_window(net: Localnet, builder: Builder | None) -> tuple[int, int, list[str]]:
    """The builder (if any) bids while WINDOW blocks commit, traders submitting faucet
    txs all along; returns the first and last height of the window and the txs sent."""
    traders = [PrivateKey.load(net.dir / "accounts" / f"trader{i}.json") for i in range(4)]
    sent: list[str] = []

    async def main() -> tuple[int, int]:
        async with trio.open_nursery() as nursery, open_client(_rpc(net)) as client:
            if builder is not None:
                await nursery.start(builder.run)
            first = (await client.status())["height"] + 2  # the builder has followed a block
            height = first - 2
            while height < first + WINDOW:
                for trader in traders:
                    sent.append(await _send(client, trader, Faucet(10**6)))
                await trio.sleep(0.25)
                height = (await client.status())["height"]
            nursery.cancel_scope.cancel()
        return first, first + WINDOW - 1

    first, last = trio.run(main)
    net.wait_height([0, 1, 2, 3], last + 3)
    return first, last, sent


def _builder_record(net: Localnet) -> tuple[dict[str, object], int]:
    """The builder's record on node 0, and the height it is as of."""
    address = PrivateKey.load(net.dir / "accounts" / "builder.json").address.hex()

    async def main() -> tuple[dict[str, object], int]:
        async with open_client(_rpc(net)) as client:
            doc = await client.builders()
            (mine,) = [b for b in doc["builders"] if b["address"] == address]
            return mine, doc["height"]

    return trio.run(main)


def _bids_in(net: Localnet, first: int, last: int) -> list[int]:
    """The values of the builder bids paid by the blocks first..last."""
    values = []
    for height in range(first, last + 1):
        block = net.get(0, f"/block/{height}")
        if block["txs"]:
            tx = codec.decode(types.Tx, bytes.fromhex(block["txs"][0]))
            if isinstance(tx.body, BuilderBid):
                values.append(tx.body.value)
    return values


def _fallbacks(net: Localnet, reason: str) -> int:
    """appchaind_pbs_local_fallback_total{reason} summed over the validators."""
    return fallbacks(net.nodes).get(reason, 0)


def _check_window(net: Localnet, first: int, last: int, sent: list[str]) -> None:
    """No height of the window took more than one extra round; every tx sent committed."""
    for height in range(first, last + 1):
        commit = net.get(0, f"/block/{height + 1}")["last_commit"]
        assert commit["round"] <= 1, f"height {height} took round {commit['round']}"
    for h in sent:
        assert net.get(0, f"/tx/{h}")["code"] == 0, h


@pytest.mark.parametrize(
    ("wrong", "reason"),
    [
        (_over_bond, "invalid_bid"),
        (_wrong_hash, "invalid_bid"),
        (_withheld, "invalid_bid"),
        (None, "no_bid"),  # registered, able to bid, silent
    ],
    ids=["bid-above-bond", "txs-not-matching-the-hash", "bid-without-its-block", "silent"],
)
def test_a_builder_whose_bids_cannot_hold_wins_nothing_and_costs_no_round(
    net: Localnet, wrong, reason: str
) -> None:  # type: ignore[no-untyped-def]
    before, start = _builder_record(net)
    fallbacks = _fallbacks(net, reason)
    builder = None if wrong is None else _Adversary(net, wrong)
    first, last, sent = _run_window(net, builder)
    _check_window(net, first, last, sent)
    after, end = _builder_record(net)
    assert _bids_in(net, start + 1, end) == []
    assert (after["paid"], after["bond"], after["bids_won"]) == (
        before["paid"], before["bond"], before["bids_won"],
    )  # fmt: skip
    # The proposers of the window's heights built their own blocks, and said why.
    assert _fallbacks(net, reason) - fallbacks >= WINDOW - 1


def test_two_bids_from_one_builder_for_a_round_pay_once_the_better(net: Localnet) -> None:
    before, start = _builder_record(net)
    first, last, sent = _run_window(net, _Adversary(net, _two_bids))
    _check_window(net, first, last, sent)
    assert len(_bids_in(net, first, last)) >= WINDOW // 2
    # Every bid paid since the record was read (some may win just after the window).
    after, end = _builder_record(net)
    values = _bids_in(net, start + 1, end)
    assert set(values) == {3 * 10**6}
    assert after["bids_won"] == before["bids_won"] + len(values)  # type: ignore[operator]
    paid = sum(values)
    assert after["paid"] == quote(_units(before["paid"]) + paid)
    assert after["bond"] == quote(_units(before["bond"]) - paid)


def _units(amount: object) -> int:
    assert isinstance(amount, str)
    return to_units(amount, QUOTE_UNIT, "amount")


def _censoring(victim: bytes):  # type: ignore[no-untyped-def]
    """The honest block without ``victim``'s txs (public key), bid for as usual."""

    def wrong(b: Builder, height: int, bond: int, honest: BidMessage | None) -> list[BidMessage]:
        if honest is None:
            return []
        txs = tuple(t for t in honest.txs if codec.decode(types.Tx, t).sender != victim)
        value = max(b.genesis.params.min_builder_bid, b.value_per_tx * len(txs))
        return [BidMessage(b.sign_bids(height, value, merkle_root(list(txs))), txs)]

    return wrong


def test_a_builder_that_censors_a_traders_orders_cannot_keep_them_out(net: Localnet) -> None:
    """The builder wins the blocks and leaves out every order of one trader. Each of that
    trader's orders is committed at most three blocks after the height the node reported
    when it was sent (two after the first block built once it reached the mempools: the
    validators list it in their precommits for the block that dropped it, and the next
    block executes it), some of them by the forced path (the block's forced txs), and
    nothing else is held up."""
    victim = PrivateKey.load(net.dir / "accounts" / "trader0.json")
    others = [PrivateKey.load(net.dir / "accounts" / f"trader{i}.json") for i in (1, 2, 3)]
    builder = _Adversary(net, _censoring(victim.public_key))
    sent: list[tuple[str, int]] = []  # (victim's order, height when sent)
    other_txs: list[str] = []

    async def main() -> tuple[int, int]:
        async with trio.open_nursery() as nursery, open_client(_rpc(net)) as client:
            assert (await client.faucet(victim, "10000")).ok
            (market,) = [m for m in await client.markets() if m["market_id"] == 0]
            tick = Decimal(str(market["tick_size"]))
            price = (Decimal(market["oracle_price"]) * Decimal("0.99")).quantize(tick)
            await nursery.start(builder.run)
            first = (await client.status())["height"] + 2
            height = first - 2
            while height < first + WINDOW:
                body = await client.order_body(
                    market["market"], "buy", str(market["lot_size"]), price=str(price)
                )
                sent.append((await _send(client, victim, body), height))
                for trader in others:
                    other_txs.append(await _send(client, trader, Faucet(10**6)))
                await trio.sleep(0.3)
                height = (await client.status())["height"]
            nursery.cancel_scope.cancel()
        return first, first + WINDOW - 1

    first, last = trio.run(main)
    net.wait_height([0, 1, 2, 3], last + 4)
    _check_window(net, first, last, [h for h, _ in sent] + other_txs)
    # The censor won blocks, and none of them carries the victim's orders.
    built = 0
    forced = 0
    victim_orders = {h for h, _ in sent}
    for height in range(first, last + 4):
        block = net.get(0, f"/block/{height}")
        if block["txs"] and isinstance(
            codec.decode(types.Tx, bytes.fromhex(block["txs"][0])).body, BuilderBid
        ):
            built += 1
            assert not victim_orders & set(block["tx_hashes"]), height
        forced += len(victim_orders & set(block["forced_tx_hashes"]))
    assert built >= WINDOW // 2, built
    assert forced >= 1
    for tx_hash, sent_at in sent:
        committed = net.get(0, f"/tx/{tx_hash}")["height"]
        assert committed <= sent_at + 3, (tx_hash, sent_at, committed)
