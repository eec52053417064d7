"""The proposer's auction (issue 15): bids kept per round and builder, refused at once
when they cannot be for our block now; at our turn the best bid that holds wins, after
waiting no longer than needed; otherwise our own block. And a validator node that gets a
bid proposes the builder's block, which pays the bid."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest
import trio
import trio.testing

from appchaind.chain import codec, types
from appchaind.chain.crypto import PrivateKey, merkle_root
from appchaind.exchange import rewards
from appchaind.exchange.txs import BuilderBid, RegisterBuilder
from appchaind.node.auction import MAX_ROUNDS_AHEAD, Auction, BidBook
from appchaind.node.messages import BidMessage, encode_message
from appchaind.node.node import Node
from p2p.peers import Channel, PeerMisbehaved
from tests.node.exchange_node import exchange_node

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


def _forged(real: types.Tx, value: int) -> tuple[types.Tx, bytes]:
    """``real`` (a bid) worth ``value`` under the same builder's key, signed by nobody:
    anyone connected on p2p can send it."""
    body = real.body
    assert isinstance(body, BuilderBid)
    tx = dataclasses.replace(
        real, body=dataclasses.replace(body, value=value), signature=b"\x07" * 64
    )
    return tx, codec.encode(tx)


def test_a_bid_is_refused_at_once_unless_it_can_be_for_our_block_now() -> None:
    """At height 5 round 0: bids for this height from this round on and for the next
    height (a builder following a faster node bids for h+1 before we commit h), within
    MAX_ROUNDS_AHEAD rounds, from a builder, signed by it."""
    book = _book(builders={B1.address})
    not_a_bid = types.sign_tx(B1, CHAIN, 1, 9, RegisterBuilder("x", 1))
    cases = {
        "not_a_bid": [(not_a_bid, b"")],
        "other_proposer": [_bid(B1, 10, proposer=B2.address)],
        "other_height": [_bid(B1, 10, height=4), _bid(B1, 10, height=7)],
        "other_round": [
            _bid(B1, 10, round=MAX_ROUNDS_AHEAD + 1),
            _bid(B1, 10, height=6, round=MAX_ROUNDS_AHEAD + 1),
        ],
        "not_a_builder": [_bid(B2, 10)],
        "bad_signature": [_forged(_bid(B1, 10)[0], 20)],
    }
    for reason, bids in cases.items():
        for tx, raw in bids:
            assert book.offer(tx, raw, ()) == reason
    assert book.refused == {reason: len(bids) for reason, bids in cases.items()}
    assert book.offer(*_bid(B1, 10, round=MAX_ROUNDS_AHEAD), ()) is None
    assert book.offer(*_bid(B1, 11, height=6, round=MAX_ROUNDS_AHEAD), ()) is None
    assert book.candidates(5, 0) == []
    book.enter(6, MAX_ROUNDS_AHEAD)
    assert [b.value for b in book.candidates(6, MAX_ROUNDS_AHEAD)] == [11]


def test_a_forged_bid_does_not_displace_the_builders_real_bid() -> None:
    """The builder's real bid (50) is in the book; a copy under its key worth more and
    badly signed is refused on arrival: it neither replaces the real bid (which would
    leave the proposer only a forgery at its turn, so its own block: a free way for any
    peer to censor every builder) nor counts as the builder having bid."""
    book = _book(builders={B1.address, B2.address})
    real, real_raw = _bid(B1, 50)
    assert book.offer(real, real_raw, ()) is None
    assert book.offer(*_forged(_bid(B2, 1)[0], 10**12), ()) == "bad_signature"
    assert book.offer(*_forged(real, 10**12), ()) == "bad_signature"
    assert [b.raw for b in book.candidates(5, 0)] == [real_raw]
    assert book.builders_bid(5, 0) == {B1.address}


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


def test_with_more_able_builders_than_the_book_keeps_the_wait_still_ends_when_all_bid() -> None:
    """Nine builders able to bid, all bid before our turn; the book keeps the best
    max_per_round = 8 of them, and the ninth still counts as having bid: no wait."""
    keys = [PrivateKey(bytes([i]) * 32) for i in range(10, 19)]
    addresses = {k.address for k in keys}
    book = BidBook(ME.address, addresses.__contains__)
    book.enter(5, 0)
    for i, k in enumerate(keys):
        assert book.offer(*_bid(k, 100 + i), ()) is None
    assert len(book.candidates(5, 0)) == 8
    auction = _auction(book, addresses)

    async def main() -> None:
        outcome = await auction.choose(5, 0, 0, lambda: [b"local"])
        assert outcome.winner is not None and outcome.winner.value == 108
        assert outcome.waited_s == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_bid_for_the_next_height_arriving_before_our_commit_wins_at_that_height() -> None:
    """The builder bids for height 6 as soon as the node it follows commits 5; we are
    still at 5. At our turn for height 6 its bid is there: no wait, the builder's block."""
    book = _book(builders={B1.address})
    early, early_raw = _bid(B1, 70, height=6)
    assert book.offer(early, early_raw, ()) is None
    auction = _auction(book, {B1.address})

    async def main() -> None:
        outcome = await auction.choose(6, 0, 0, lambda: [b"local"])
        assert outcome.winner is not None and outcome.winner.raw == early_raw
        assert outcome.waited_s == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_a_builders_block_larger_than_our_proposal_budget_gives_way() -> None:
    """Under load the node proposes at most what it can check and execute in its block
    budget; a builder's block of more txs is refused as over_budget (the next best bid,
    or our own block, goes instead)."""
    book = _book()
    big_txs = (b"a", b"b", b"c")
    big = _bid(B1, 90, txs=big_txs)
    small = _bid(B2, 10, txs=(b"d",))
    book.offer(*big, big_txs)
    book.offer(*small, (b"d",))
    auction = _auction(book, {B1.address, B2.address})
    outcome = await auction.choose(5, 0, 0, lambda: [b"local"], max_txs=3)
    assert outcome.winner is not None and outcome.winner.builder == B2.address
    assert outcome.rejected == ("over_budget",)
    outcome = await auction.choose(5, 0, 0, lambda: [b"local"], max_txs=4)
    assert outcome.winner is not None and outcome.winner.builder == B1.address


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
    return exchange_node(
        tmp_path, CHAIN, ME, [("builder", builder.address, "5000")],
        # A long wait: the builder's bid comes in it whatever the machine's load.
        {"pbs": {"bid_deadline_ms": 5000}, "consensus": {"timeout_propose_ms": 12_000}},
    )  # fmt: skip


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
            # The status tells builders how many txs this node would propose now.
            budget = node.status().as_json()["proposal_txs"]
            assert budget == min(node.genesis.params.max_block_txs, node.budget.proposal_txs())
            assert budget > 0
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
            node.pbs.on_bid(BidMessage((codec.encode(tx),), txs))
            with trio.fail_after(30):
                await node.wait_committed(height)
            block = node.block(height)
            assert block is not None and block.txs == (codec.encode(tx), *txs)
            assert exchange.builders[builder.address].paid == 7 * 10**6
            assert exchange.builders[builder.address].bond == bond - 7 * 10**6
            # The proposer's half is its validator's reward (its operator, the genesis
            # key's address, holds all its shares and charges no commission).
            validator = exchange.staking.validators[ME.address]
            assert rewards.owed(exchange.staking, validator, ME.address) == (3_500_000, 0)
            # Garbage on the builder channel drops the peer that sent it.
            peer = SimpleNamespace(node_id="builder-peer")
            for payload in (b"garbage", encode_message(BidMessage((b"\x93\x01",), ()))):
                with pytest.raises(PeerMisbehaved):
                    await node._on_peer_message(peer, Channel.BUILDER, payload)  # type: ignore[arg-type]
            nursery.cancel_scope.cancel()
    finally:
        node.wal.close()
        node.store.close()
