"""The executable spec (spec/exchange.py) and the application agree, block by block.

Fixed scenarios: every vector of tests/vectors (a fill, a liquidation through the book,
an insurance fund payout, an ADL, a funding tick, ...) runs through both. Random
scenarios: hypothesis draws a genesis and a few blocks of txs of every kind (orders of
every type and time in force, cancels, replacements, transfers, withdrawals, faucet,
broken envelopes), with oracle moves (decided prices or validators' votes) that trigger
stops and liquidate accounts, and both must give the same results, events and state
after every block. ``make test`` runs a bounded number of examples; ``make fuzz``
(HYPOTHESIS_PROFILE=fuzz) runs the profile's many more.
"""

from __future__ import annotations

import os
from hashlib import sha256

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appchaind.chain.types import sign_tx
from appchaind.exchange import (
    CancelAll,
    CancelOrder,
    ExchangeApp,
    Faucet,
    PlaceOrder,
    ReplaceOrder,
    Transfer,
    Withdraw,
)
from appchaind.exchange.oracle import encode_vote
from spec.exchange import Exchange, Order
from tests.exchange.support import BLOCK_MS, CHAIN_ID, GENESIS_MS, address, genesis, key, market
from tests.spec.differential import Block, run_block
from tests.vectors.runner import body_of, build_genesis, load_vectors

FUZZING = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
#: Bounded in ``make test``; the fuzz profile's own max_examples under ``make fuzz``.
BOUNDED = settings() if FUZZING else settings(max_examples=80)

# ================================================================== fixed scenarios

VECTORS = load_vectors()


def _vector_blocks(vector: dict) -> list[Block]:
    """The vector's setup and operation blocks, signed as tests/vectors/runner.py signs
    them (its Driver: default nonces from the block time, expiry 10 blocks ahead)."""
    blocks = []
    for height, raw in enumerate(vector["setup"] + vector["blocks"], start=1):
        time_ms = GENESIS_MS + height * BLOCK_MS
        txs = [
            sign_tx(key(tx["signer"]), CHAIN_ID, tx.get("nonce", time_ms - 1000 + i),
                    height + 10, body_of(tx))
            for i, tx in enumerate(raw["txs"])
        ]  # fmt: skip
        blocks.append(
            Block(height, time_ms, txs, prev_block_hash=sha256(height.to_bytes(8, "big")).digest(),
                  oracle_prices=raw.get("prices"))
        )  # fmt: skip
    return blocks


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_scenario_vectors_agree(vector):
    genesis_doc = build_genesis(vector["genesis"])
    app, spec = ExchangeApp(genesis_doc), Exchange(genesis_doc)
    for block in _vector_blocks(vector):
        run_block(app, spec, block)
    assert app.state_summary() == vector["post"]["state"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("liquidation_through_book", {"liquidation", "liquidation_fee"}),
        ("insurance_fund_shortfall", {"liquidation", "insurance_cover"}),
        ("adl", {"liquidation", "adl"}),
        ("funding_tick", {"funding"}),
    ],
)
def test_the_scenarios_exercise_their_mechanism(name, expected):
    """A liquidation through the book, an insurance fund payout, an ADL and a funding
    tick, each run through both, and each doing what it is named after."""
    vector = next(v for v in VECTORS if v["name"] == name)
    genesis_doc = build_genesis(vector["genesis"])
    app, spec = ExchangeApp(genesis_doc), Exchange(genesis_doc)
    kinds: set[str] = set()
    for block in _vector_blocks(vector):
        results, events = run_block(app, spec, block)
        kinds.update(e.kind for r in results for e in r.events)
        kinds.update(e.kind for e in events)
    assert expected <= kinds


class Chain:
    """A hand-written scenario run through both implementations, block by block."""

    def __init__(self, balances: dict[str, str], **genesis_kw) -> None:
        genesis_doc = genesis(balances, **genesis_kw)
        self.app, self.spec = ExchangeApp(genesis_doc), Exchange(genesis_doc)
        self.height = 0
        self.nonce = 0

    def block(self, *txs, prices=None, votes=None, total_power=None):
        """Run one block of (signer, body) txs; returns the spec's results and events."""
        self.height += 1
        time_ms = GENESIS_MS + self.height * BLOCK_MS
        signed = []
        for name, body in txs:
            self.nonce += 1
            signed.append(sign_tx(key(name), CHAIN_ID, time_ms - 1000 + self.nonce,
                                  self.height + 1, body))  # fmt: skip
        block = Block(
            self.height, time_ms, signed, prev_block_hash=sha256(bytes([self.height])).digest(),
            oracle_prices=prices, oracle_votes=votes, total_power=total_power,
        )  # fmt: skip
        return run_block(self.app, self.spec, block)


def _statuses(events) -> list[str]:
    return [e.attributes["status"] for e in events if e.kind == "order"]


def limit(market_id, side, price, size, tif=0, client_id=0, reduce_only=False):
    return PlaceOrder(market_id, side, 0, tif, price, size, 0, reduce_only, client_id, 0)


def test_a_maker_short_of_margin_is_vetoed():
    """Each of the small account's bids passed the margin check alone; together they do
    not: the sweep fills the first and removes the second unfilled (vetoed)."""
    chain = Chain({"maker": "60", "taker": "1000000"})
    chain.block(("maker", limit(0, 1, 50000, 10)), ("maker", limit(0, 1, 49990, 10, client_id=1)))
    results, _ = chain.block(("taker", limit(0, 0, 49990, 20, tif=2)))
    assert _statuses(results[0].events) == ["vetoed", "cancelled"]
    assert [e.kind for e in results[0].events] == ["fill", "order", "order"]


def test_a_taker_stops_at_the_maker_limit():
    """max_makers_per_taker = 2: a GTC buy crossing three asks fills two and its
    remainder is cancelled, not rested, although the book still crosses it."""
    chain = Chain({"a": "1000000", "b": "1000000"}, params={"max_makers_per_taker": 2})
    chain.block(*[("a", limit(0, 0, 50000 + i, 1, client_id=i)) for i in range(3)])
    results, _ = chain.block(("b", limit(0, 1, 50010, 5)))
    assert [e.kind for e in results[0].events] == ["fill", "fill", "order"]
    assert _statuses(results[0].events) == ["cancelled"]


def test_self_trade_prevention_expires_the_resting_maker():
    chain = Chain({"a": "1000000", "b": "1000000"})
    chain.block(("a", limit(0, 0, 50000, 3)), ("b", limit(0, 0, 50001, 3)))
    results, _ = chain.block(("a", limit(0, 1, 50001, 4, client_id=1)))
    assert _statuses(results[0].events) == ["self_trade", "resting"]


def test_fill_or_kill_that_crosses_nothing_is_cancelled_not_refused():
    """The app's book plans a FOK taker only when the book crosses it: a FOK order with
    nothing to take ends "cancelled" with code 0, one that can fill only in part is refused
    with FOK_NOT_FILLED (23). The spec states this as it is (see the report of issue 13)."""
    chain = Chain({"a": "1000000", "b": "1000000"})
    results, _ = chain.block(("a", limit(0, 1, 50000, 5, tif=3)))
    assert results[0].code == 0 and _statuses(results[0].events) == ["cancelled"]
    chain.block(("b", limit(0, 0, 50000, 2)))
    results, _ = chain.block(("a", limit(0, 1, 50000, 5, tif=3)))
    assert results[0].code == 23


def test_funding_is_paid_when_a_holder_next_acts():
    """Funding ticks every block here; the premium of bids above the oracle makes longs
    pay, settled into the insurance fund when the long's next tx runs."""
    chain = Chain(
        {"long": "1000000", "short": "1000000", "mm": "1000000"},
        markets=[market("BTC-PERP", "50000", funding_interval_blocks=1),
                 market("ETH-PERP", "3000")],
    )  # fmt: skip
    chain.block(("short", limit(0, 0, 50000, 10)), ("long", limit(0, 1, 50000, 10, tif=2)))
    _, events = chain.block(("mm", limit(0, 1, 50400, 20)), ("mm", limit(0, 0, 50600, 20, 0, 1)))
    assert [e.kind for e in events] == ["funding"] and events[0].attributes["rate_ppm"] > 0
    results, _ = chain.block(("long", CancelAll(0, True)))
    assert [e.kind for e in results[0].events] == ["funding_payment"]


def test_oracle_votes_move_prices_by_the_weighted_median():
    """Three of four validators report: the median moves the price (clamped); a block with
    less than 2/3 of the power reporting leaves it."""
    chain = Chain({"a": "1000"})
    votes = [(10, encode_vote({0: 51000, 1: 2900})), (10, encode_vote({0: 52000})),
             (10, encode_vote({0: 80000})), (10, b"")]  # fmt: skip
    _, events = chain.block(votes=votes, total_power=40)
    assert [(e.attributes["market"], e.attributes["price"]) for e in events] == [(0, 52000)]
    _, events = chain.block(votes=votes[:2], total_power=40)
    assert events == []


def test_a_fired_order_refused_by_the_book_reports_twice():
    """A triggered post-only stop-limit that would take is refused by the book: the
    order's own "rejected" event, then the trigger's "rejected" event with code and
    reason."""
    chain = Chain({"a": "1000000", "b": "1000000"})
    stop = PlaceOrder(0, 1, 3, 1, 50500, 2, 50100, False, 7, 0)
    chain.block(("a", stop), ("b", limit(0, 0, 50200, 5)))
    _, events = chain.block(prices=[50150, 3000])
    assert _statuses(events) == ["triggered", "rejected", "rejected"]


def test_reduce_only_orders_shrink_to_the_position():
    """A reduce-only stop bigger than the position is held as given (nothing is checked
    until it fires); when the position moves, the upkeep shrinks it, and the resting
    reduce-only sell, to the position, and cancels them once the position is flat."""
    chain = Chain({"long": "1000000", "mm": "1000000"})
    chain.block(("mm", limit(0, 0, 50000, 10)), ("long", limit(0, 1, 50000, 10, tif=2)))
    stop = PlaceOrder(0, 0, 2, 0, 0, 30, 45000, True, 1, 0)
    chain.block(("long", stop), ("long", limit(0, 0, 52000, 10, client_id=2, reduce_only=True)))
    _, events = chain.block(("mm", limit(0, 1, 50000, 4)), ("long", limit(0, 0, 50000, 4, tif=2)))
    assert [
        (e.attributes["status"], e.attributes["size"]) for e in events if e.kind == "order"
    ] == [
        ("resized", 6),
        ("resized", 6),
    ]
    chain.block(("mm", limit(0, 1, 50000, 6, client_id=1)), ("long", limit(0, 0, 50000, 6, tif=2)))
    assert chain.spec.state_summary()["markets"][0]["conditional"] == []


def test_the_liquidation_boundary_agrees_exactly_at_maintenance():
    """The one input random blocks almost never hit: net collateral exactly equal to the
    maintenance requirement (alice: 502.54 quote, 100 lots bought at 50000, oracle 47368:
    236,840,000 both) is safe; one micro-unit less (carol) is liquidated. Both
    implementations must draw the line at the same place (a flipped ``<`` in the
    optimised health check fails here, not in the random scenarios)."""
    rich = "100000000"
    chain = Chain({"alice": "502.54", "carol": "502.539999", "bob": rich, "dave": rich})
    chain.block(
        ("bob", limit(0, 0, 50000, 200)),  # side 0: sell, 1: buy
        ("dave", limit(0, 1, 47000, 200)),
        ("alice", limit(0, 1, 50000, 100, tif=2)),
        ("carol", limit(0, 1, 50000, 100, tif=2)),
    )
    _, events = chain.block(prices=[47368, 3000])
    liquidated = {e.attributes["account"] for e in events if e.kind == "liquidation"}
    assert liquidated == {address("carol")}


# ================================================================== random scenarios

TRADERS = ["t0", "t1", "t2", "t3", "t4", "t5"]
#: Not in the genesis: only a faucet tx (on a chain with a faucet) opens its account.
NEWCOMER = "newcomer"
BALANCES = {"t0": "20000", "t1": "20000", "t2": "900", "t3": "500", "t4": "1000000", "t5": "50"}
POWERS = [10, 10, 10, 10]


@st.composite
def genesis_st(draw):
    """The test genesis with small limits drawn so that caps, evictions and cut-offs
    are reached in a few blocks."""
    params = {
        "faucet_enabled": draw(st.sampled_from([True, True, False])),
        "faucet_max_amount": "100",
        "max_liquidations_per_block": draw(st.sampled_from([1, 2, 50])),
        "max_open_orders_per_account": draw(st.sampled_from([3, 200])),
        "max_makers_per_taker": draw(st.sampled_from([2, 1000])),
        "max_recent_nonces": draw(st.sampled_from([4, 100])),
        "max_liquidation_notional_per_account": draw(st.sampled_from(["1000000", "2000"])),
        "max_tx_lifetime_blocks": 5,
        "nonce_window_past_ms": 20_000,
        "nonce_window_future_ms": 5_000,
    }

    def market_st(symbol, price):
        return market(
            symbol,
            price,
            maker_fee_ppm=draw(st.sampled_from([-100, 0, 200])),
            funding_interval_blocks=draw(st.integers(1, 4)),
            max_funding_rate_ppm=draw(st.sampled_from([1_000, 50_000])),
            price_band_ppm=draw(st.sampled_from([100_000, 100_000, 30_000])),
            liquidation_fee_ppm=draw(st.sampled_from([0, 10_000])),
        )

    return genesis(
        BALANCES,
        markets=[market_st("BTC-PERP", "50000"), market_st("ETH-PERP", "3000")],
        params=params,
        insurance_fund=draw(st.sampled_from(["0", "500", "100000"])),
    )


class Flow:
    """Builds the txs of a run: unique nonces, and the envelope of each tx."""

    def __init__(self, data, spec: Exchange) -> None:
        self.data = data
        self.spec = spec
        self.counter = 0
        self.used: dict[str, list[int]] = {}

    def draw(self, strategy, label=None):
        return self.data.draw(strategy, label=label)

    def sign(self, name: str, body: object, height: int, time_ms: int):
        """A signed tx, its envelope usually right, sometimes broken on purpose."""
        self.counter += 1
        nonce = time_ms - 1000 + self.counter
        chain_id = CHAIN_ID
        expiry = height + 2
        flaw = self.draw(
            st.sampled_from(["none"] * 24 + ["chain", "expired", "far", "window", "replay", "old"])
        )
        if flaw == "chain":
            chain_id = "other-chain"
        elif flaw == "expired":
            expiry = height - 1
        elif flaw == "far":
            expiry = height + 6
        elif flaw == "window":
            nonce = time_ms - 20_001
        elif flaw == "replay" and self.used.get(name):
            nonce = self.draw(st.sampled_from(self.used[name]))
        elif flaw == "old":
            nonce = time_ms - 19_000 + self.counter
        self.used.setdefault(name, []).append(nonce)
        return sign_tx(key(name), chain_id, nonce, max(expiry, 0), body), flaw

    def order(self, height: int, market_id: int | None = None) -> PlaceOrder:
        """Mostly valid orders near the book; one field in ten orders is broken."""
        spec = self.spec
        if market_id is None:
            market_id = self.draw(st.integers(0, 1))
        oracle = spec.markets[market_id].oracle_price
        near = st.integers(-15, 15)
        offset = self.draw(st.one_of(near, near, near, st.integers(-120, 120)))
        fields = {
            "market_id": market_id,
            "side": self.draw(st.integers(0, 1)),
            "order_type": self.draw(st.sampled_from([0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 5])),
            "time_in_force": self.draw(st.sampled_from([0, 0, 0, 1, 1, 2, 2, 3])),
            "price": max(1, oracle + offset * oracle // 1000),
            "size": self.draw(
                st.one_of(st.integers(1, 10), st.integers(1, 10), st.integers(1, 400))
            ),
            "trigger_price": max(1, oracle + self.draw(st.integers(-40, 40)) * oracle // 1000),
            "reduce_only": self.draw(st.sampled_from([False, False, False, True])),
            "client_id": self.draw(st.integers(0, 3)),
            "good_til_block": self.draw(st.sampled_from([0, 0, 0, height, height + 1, height + 3])),
        }
        broken = self.draw(
            st.sampled_from(
                [None] * 80
                + [("market_id", 2), ("side", 2), ("order_type", 6), ("time_in_force", 4),
                   ("size", 0), ("size", 1 << 62), ("good_til_block", height - 1),
                   ("price", 0), ("trigger_price", 0)]
            )
        )  # fmt: skip
        if broken is not None:
            fields[broken[0]] = max(broken[1], 0)
        return PlaceOrder(**fields)

    def open_orders_of(self, address: bytes):
        found = []
        for book in self.spec.markets:
            for order in [*book.book, *book.conditionals]:
                if order.owner == address:
                    found.append((book.market_id, order))
        return found

    def amount(self, address: bytes) -> int:
        """A transfer's or withdrawal's amount: round figures, or the sender's free
        collateral as the spec sees it before this block, exactly or one micro-unit either
        side (the boundary of the rule; txs earlier in the block may have moved it)."""
        account = self.spec.accounts.get(address)
        edge = self.spec.free_collateral(account) if account is not None else 0
        boundary = [edge - 1, edge, edge + 1] if edge > 1 else []
        return self.draw(st.sampled_from([0, 1, 10**6, 10**8, 10**9, 10**12, *boundary]))

    def body(self, name: str, height: int) -> object:
        roll = self.draw(st.integers(0, 99))
        address = key(name).address
        mine = self.open_orders_of(address)
        if roll < 55:
            return self.order(height)
        if roll < 65:
            if mine and self.draw(st.integers(0, 3)):
                market_id, order = self.draw(st.sampled_from(mine))
                return CancelOrder(
                    market_id, order.order_id, order.client_id, self.draw(st.booleans())
                )
            return CancelOrder(
                self.draw(st.sampled_from([0, 1, 1, 2])), self.draw(st.integers(1, 80)),
                self.draw(st.integers(0, 3)), self.draw(st.booleans()),
            )  # fmt: skip
        if roll < 69:
            return CancelAll(self.draw(st.sampled_from([0, 1, 1, 2])), self.draw(st.booleans()))
        if roll < 80:
            if mine:
                market_id, old = self.draw(st.sampled_from(mine))
                if isinstance(old, Order) and self.draw(st.booleans()):  # an amend, maybe
                    new = PlaceOrder(
                        market_id, old.side, 0, old.time_in_force, old.price,
                        self.draw(st.integers(1, old.size + 1)), 0, old.reduce_only,
                        old.client_id, old.good_til_block,
                    )  # fmt: skip
                else:
                    new = self.order(height, market_id)
                return ReplaceOrder(old.order_id, old.client_id, self.draw(st.booleans()), new)
            return ReplaceOrder(self.draw(st.integers(1, 80)), 0, False, self.order(height))
        if roll < 87:
            recipient = self.draw(st.sampled_from([*TRADERS, NEWCOMER, "stranger"]))
            return Transfer(key(recipient).address, self.amount(address))
        if roll < 93:
            return Withdraw(self.amount(address))
        return Faucet(self.draw(st.sampled_from([0, 1, 100 * 10**6, 101 * 10**6])))

    def oracle(self, block: Block) -> None:
        """Decided prices (most blocks), the validators' votes, or no oracle input."""
        current = [m.oracle_price for m in self.spec.markets]
        move = st.one_of(st.just(0), st.integers(-80, 80))
        moved = [max(1, p + p * self.draw(move) // 1000) for p in current]
        source = self.draw(st.sampled_from(["prices"] * 6 + ["votes", "votes", "none"]))
        if source == "prices":
            block.oracle_prices = moved
        elif source == "votes":
            votes = []
            for power in POWERS:
                kind = self.draw(
                    st.sampled_from(["both", "both", "first", "none", "garbage", "far"])
                )
                if kind == "both":
                    jitter = self.draw(st.integers(-5, 5))
                    extension = encode_vote({0: moved[0] + jitter, 1: moved[1] + jitter})
                elif kind == "first":
                    extension = encode_vote({0: moved[0]})
                elif kind == "garbage":
                    extension = b"\x93\x01"
                elif kind == "far":
                    extension = encode_vote({0: current[0] * 11, 1: moved[1]})
                else:
                    extension = b""
                votes.append((power, extension))
            block.oracle_votes = votes
            block.total_power = self.draw(st.sampled_from([None, sum(POWERS), sum(POWERS) + 20]))

    def block(self, height: int) -> Block:
        time_ms = GENESIS_MS + height * BLOCK_MS
        block = Block(height, time_ms, [], prev_block_hash=sha256(bytes([height])).digest())
        self.oracle(block)
        for _ in range(self.draw(st.integers(0, 12))):
            name = self.draw(st.sampled_from([*TRADERS, *TRADERS, "t4", "t4", NEWCOMER]))
            body = self.body(name, height)
            tx, flaw = self.sign(name, body, height, time_ms)
            block.txs.append(tx)
            block.labels.append(f"{name} {type(body).__name__} {flaw}")
            if self.draw(st.integers(0, 19)) == 19:  # the same tx twice in a block
                block.txs.append(tx)
                block.labels.append(f"{name} {type(body).__name__} again")
        return block


def opening_block(bid: int, ask: int) -> Block:
    """Block 1: t4 quotes both markets (the BTC bid and the ETH ask drawn: near the
    oracle, or past where the leveraged accounts go bankrupt); t2 and t3 take leveraged
    positions that random price paths liquidate; t0 holds a stop; t5 rests a tiny order."""
    height, time_ms = 1, GENESIS_MS + BLOCK_MS
    orders = [
        ("t4", PlaceOrder(0, 0, 0, 0, 50000, 300, 0, False, 1, 0)),
        ("t4", PlaceOrder(0, 1, 0, 0, bid, 300, 0, False, 2, 0)),
        ("t4", PlaceOrder(1, 1, 0, 0, 3000, 1000, 0, False, 3, 0)),
        ("t4", PlaceOrder(1, 0, 0, 0, ask, 2000, 0, False, 4, 0)),
        ("t2", PlaceOrder(0, 1, 0, 2, 50000, 150, 0, False, 0, 0)),
        ("t3", PlaceOrder(1, 0, 0, 2, 3000, 1000, 0, False, 0, 0)),
        ("t0", PlaceOrder(0, 0, 2, 0, 0, 20, 51000, False, 1, 0)),
        ("t5", PlaceOrder(1, 1, 0, 0, 2990, 1, 0, False, 0, 0)),
    ]
    txs = [
        sign_tx(key(name), CHAIN_ID, time_ms - 2000 + i, height + 2, body)
        for i, (name, body) in enumerate(orders)
    ]
    return Block(height, time_ms, txs, prev_block_hash=sha256(b"genesis").digest(),
                 labels=[f"{n} opening" for n, _ in orders])  # fmt: skip


@BOUNDED
@given(st.data())
def test_property_spec_and_app_agree_on_random_blocks(data):
    genesis_doc = data.draw(genesis_st(), label="genesis")
    app, spec = ExchangeApp(genesis_doc), Exchange(genesis_doc)
    bid = data.draw(st.sampled_from([49500, 46000, 45500]), label="opening BTC bid")
    ask = data.draw(st.sampled_from([3030, 3200, 3250]), label="opening ETH ask")
    run_block(app, spec, opening_block(bid, ask))
    flow = Flow(data, spec)
    for height in range(2, 2 + data.draw(st.integers(1, 8), label="blocks")):
        run_block(app, spec, flow.block(height))
