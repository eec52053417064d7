"""The proposer's auction (issue 15): bids kept per round and builder, refused at once
when they cannot be for our block now; at our turn the best bid that holds wins, after
waiting no longer than needed; otherwise our own block. And a validator node that gets a
bid proposes the builder's block, which pays the bid."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest
import trio
import trio.testing

from appchaind.chain import codec, types
from appchaind.chain.crypto import PrivateKey, merkle_root
from appchaind.exchange.txs import BuilderBid, RegisterBuilder
from appchaind.home import demo_genesis, init_home
from appchaind.node.auction import MAX_ROUNDS_AHEAD, Auction, BidBook
from appchaind.node.messages import BidMessage, encode_message
from appchaind.node.node import Node
from p2p.peers import Channel, PeerMisbehaved

ME = PrivateKey(b"\x01" * 32)
B1, B2, B3 = (PrivateKey(bytes([i]) * 32) for i in (2, 3, 4))
CHAIN = "auction-test"


def _bid(key: PrivateKey, value: int, *, height: int = 5, round: int = 0,
         proposer: bytes = ME.address, txs: tuple[bytes, ...] = ()) -> tuple[types.Tx, bytes]:  # fmt: skip
    body = BuilderBid(height, round, proposer, value, merkle_root(list(txs)))
    tx = types.sign_tx(key, CHAIN, 1, height + 10, body)
    return tx, codec.encode(tx)


def _book(builders: set[bytes] | None = None, max_per_round: int = 8) -> BidBook:
    known = builders if builders is not None else {B1.address, B2.address, B3.address}
    book = BidBook(ME.address, known.__contains__, max_per_round)
    book.enter(5, 0)
    return book


def test_a_bid_is_refused_at_once_unless_it_can_be_for_our_block_now() -> None:
    book = _book(builders={B1.address})
    not_a_bid = types.sign_tx(B1, CHAIN, 1, 9, RegisterBuilder("x", 1))
    cases = {
        "not_a_bid": (not_a_bid, b""),
        "other_proposer": _bid(B1, 10, proposer=B2.address),
        "other_height": _bid(B1, 10, height=6),
        "other_round": _bid(B1, 10, round=MAX_ROUNDS_AHEAD + 1),
        "not_a_builder": _bid(B2, 10),
    }
    for reason, (tx, raw) in cases.items():
        assert book.offer(tx, raw, ()) == reason
    assert book.refused == dict.fromkeys(cases, 1)
    assert book.offer(*_bid(B1, 10, round=MAX_ROUNDS_AHEAD), ()) is None
    assert book.candidates(5, 0) == []


def test_each_builder_keeps_its_best_bid_and_a_round_its_best_builders() -> None:
    """A builder's second bid for a round replaces its first only if worth more; beyond
    max_per_round builders the lowest bid goes; candidates come best first."""
    book = _book(max_per_round=2)
    book.offer(*_bid(B1, 50), ())
    book.offer(*_bid(B1, 40), ())
    book.offer(*_bid(B2, 70), ())
    assert [(b.builder, b.value) for b in book.candidates(5, 0)] == [
        (B2.address, 70), (B1.address, 50),
    ]  # fmt: skip
    book.offer(*_bid(B3, 60), ())
    assert [b.value for b in book.candidates(5, 0)] == [70, 60]
    book.offer(*_bid(B3, 90), ())
    assert [b.value for b in book.candidates(5, 0)] == [90, 70]
    book.enter(5, 1)  # the round moved on: round 0's bids go
    assert book.candidates(5, 0) == []


def _auction(
    book: BidBook,
    eligible: set[bytes],
    *,
    bad_signatures: set[bytes] = frozenset(),  # type: ignore[assignment]
    not_holding: set[bytes] = frozenset(),  # type: ignore[assignment]
) -> Auction:
    async def verify(raws: Sequence[bytes]) -> bool:
        await trio.sleep(0)
        return raws[0] not in bad_signatures

    def problem(txs: Sequence[bytes], height: int, time_ms: int) -> str | None:
        return "builder bid: above the bond" if txs[0] in not_holding else None

    return Auction(book, 0.15, lambda: set(eligible), verify, problem)


def test_with_no_builder_able_to_bid_our_block_goes_at_once() -> None:
    auction = _auction(_book(), set())

    async def main() -> None:
        outcome = await auction.choose(5, 0, 0, lambda: [b"local"])
        assert (outcome.txs, outcome.winner, outcome.fallback) == ((b"local",), None, "no_bid")
        assert outcome.waited_s == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_the_wait_ends_when_every_able_builder_has_bid() -> None:
    """Two builders can bid: one bids before our turn, the other 20 ms into it; the
    block is chosen then (not at the 150 ms deadline) and the best bid wins."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    auction = _auction(_book(), {B1.address, B2.address})
    auction.offer(*_bid(B1, 50), ())

    async def main() -> None:
        async with trio.open_nursery() as nursery:

            async def late_bid() -> None:
                await trio.sleep(0.02)
                auction.offer(*_bid(B2, 80, txs=(b"t",)), (b"t",))

            nursery.start_soon(late_bid)
            outcome = await auction.choose(5, 0, 0, lambda: [b"local"])
        assert outcome.winner is not None and outcome.winner.builder == B2.address
        assert outcome.txs[1:] == (b"t",) and outcome.fallback == ""
        assert abs(outcome.waited_s - 0.02) < 1e-9

    trio.run(main, clock=clock)


def test_without_bids_the_wait_stops_at_the_deadline() -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)
    auction = _auction(_book(), {B1.address})

    async def main() -> None:
        outcome = await auction.choose(5, 0, 0, lambda: [b"local"])
        assert outcome.fallback == "no_bid" and outcome.txs == (b"local",)
        assert abs(outcome.waited_s - 0.15) < 1e-9

    trio.run(main, clock=clock)


async def test_bids_that_do_not_hold_give_way_to_the_next_best_then_to_our_block() -> None:
    book = _book()
    top, top_raw = _bid(B1, 90)
    mid, mid_raw = _bid(B2, 80)
    low, low_raw = _bid(B3, 70)
    for tx, raw in ((top, top_raw), (mid, mid_raw), (low, low_raw)):
        book.offer(tx, raw, ())
    eligible = {B1.address, B2.address, B3.address}
    auction = _auction(book, eligible, bad_signatures={top_raw}, not_holding={mid_raw})
    outcome = await auction.choose(5, 0, 0, lambda: [b"local"])
    assert outcome.winner is not None and outcome.winner.value == 70
    assert outcome.rejected == ("bad_signature", "builder bid: above the bond")
    auction = _auction(book, eligible, bad_signatures={top_raw, low_raw}, not_holding={mid_raw})
    outcome = await auction.choose(5, 0, 0, lambda: [b"local"])
    assert (outcome.winner, outcome.fallback, outcome.txs) == (None, "invalid_bid", (b"local",))


# ---------------------------------------------------------------------------- a node


def _exchange_node(tmp_path: Path, builder: PrivateKey) -> Node:
    # A recent genesis: the simulated oracle walks from genesis time to now.
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    genesis = demo_genesis(CHAIN, [("me", ME, 10)], [("builder", builder.address, "5000")], start)
    init_home(
        tmp_path / "home",
        moniker="me",
        chain_id=CHAIN,
        genesis_time=start,
        genesis_doc=genesis,
        validator_key=ME,
        config_overrides={
            "p2p": {"listen_address": "127.0.0.1:0"},
            "rpc": {"listen_address": "127.0.0.1:0"},
            "http": {"enabled": False},
            "pbs": {"bid_deadline_ms": 5000},
        },
    )
    return Node(tmp_path / "home")


async def test_a_validator_proposes_the_builders_block_and_the_bid_is_paid(
    tmp_path: Path,
) -> None:
    """One validator, one builder. Once the builder is registered, its bid for the next
    height (with one tx of its own) reaches the node as from the builder channel: the
    next block is the builder's, first the bid then its tx; the bond pays the bid, the
    proposer gets its share."""
    builder = B1
    node = _exchange_node(tmp_path, builder)
    exchange = node.exchange
    assert exchange is not None and node.pbs is not None
    bond = 1000 * 10**6
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            now = int(time.time() * 1000)
            register = types.sign_tx(
                builder, CHAIN, now, node.latest_height + 20, RegisterBuilder("b1", bond)
            )
            assert (await node.submit_tx(codec.encode(register))).code == 0
            with trio.fail_after(30):
                while builder.address not in exchange.builders:
                    await node.wait_committed(node.latest_height + 1)
            height = node.latest_height + 1
            own = types.sign_tx(builder, CHAIN, now + 1, height + 20, RegisterBuilder("x", 1))
            txs = (codec.encode(own),)
            tx, raw = _bid(builder, 7 * 10**6, height=height, txs=txs)
            tx = types.sign_tx(builder, CHAIN, now + 2, height + 20, tx.body)
            node.pbs.on_bid(BidMessage(codec.encode(tx), txs))
            with trio.fail_after(30):
                await node.wait_committed(height)
            block = node.block(height)
            assert block is not None and block.txs == (codec.encode(tx), *txs)
            assert exchange.builders[builder.address].paid == 7 * 10**6
            assert exchange.builders[builder.address].bond == bond - 7 * 10**6
            proposer = exchange.account(ME.address)
            assert proposer is not None and proposer.balance == 3_500_000
            # Garbage on the builder channel drops the peer that sent it.
            peer = SimpleNamespace(node_id="builder-peer")
            for payload in (b"garbage", encode_message(BidMessage(b"\x93\x01", ()))):
                with pytest.raises(PeerMisbehaved):
                    await node._on_peer_message(peer, Channel.BUILDER, payload)  # type: ignore[arg-type]
            nursery.cancel_scope.cancel()
    finally:
        node.wal.close()
        node.store.close()
