"""Liquidation as the exchange runs it at the end of a block, as fixed scenarios with exact
amounts: a short is bought back through the book, the liquidated account's open orders go
first, and a maker the liquidation order cannot fill (short of margin) is removed and
reported, the next maker filling instead.

Found unguarded by ``make mutate`` (docs/mutation-report.md): the scenario vectors and
the cascade test liquidate longs only. Markets of tests/exchange/support.py: BTC-PERP at
50000 ticks, one tick-lot is 1000 micro-units, initial margin 10%, maintenance 5%, taker
fee 500 ppm, liquidation fee 10,000 ppm, price band 10%.
"""

from __future__ import annotations

from hashlib import sha256
from typing import Any

import pytest

from appchaind.abci import FinalizeResult
from appchaind.exchange import ExchangeApp, Withdraw
from tests.exchange.support import BUY, IOC, SELL, Driver, address, genesis, limit

BTC, ETH = 0, 1
ETH_PRICE = 3000
RICH = "1000000"


def _position(app: ExchangeApp, name: str) -> int:
    account = app.account(address(name))
    return 0 if account is None else account.position_size(BTC)


def _events(result: FinalizeResult, kind: str) -> list[dict[str, Any]]:
    return [e.attributes for e in result.events if e.kind == kind]


def _steps(result: FinalizeResult) -> list[tuple[str, int]]:
    """(step, lots filled) of each liquidation event of the block."""
    return [(e["step"], e["filled"]) for e in _events(result, "liquidation")]


def _short_carol(extra: dict[str, str]) -> tuple[ExchangeApp, Driver]:
    """Carol (502.54 quote) sells 100 lots at 50000 to Bob: 2.5 quote of taker fee, 500 of
    initial margin. At an oracle of 53000 her net collateral is 200.04 quote, below her
    maintenance requirement of 265: liquidatable, bankruptcy price 53000 + 2000.4 ticks,
    rounded in her favour (down) to 55000."""
    app = ExchangeApp(genesis({"carol": "502.54", "bob": RICH, **extra}))
    d = Driver(app)
    d.block([
        d.tx("bob", limit(BTC, BUY, 50000, 100)),
        d.tx("carol", limit(BTC, SELL, 50000, 100, IOC)),
    ])  # fmt: skip
    assert _position(app, "carol") == -100
    return app, d


def test_a_short_is_bought_back_through_the_book_and_its_orders_cancelled_first() -> None:
    """Carol's resting bid is cancelled, then her short of 100 is closed by a buy against
    Dave's ask (60 at 53500) and Erin's (40 of 100 at 53600), below her bankruptcy price:
    she pays the liquidation fee (per fill, 1% of the notional capped by the surplus) to
    the insurance fund."""
    app, d = _short_carol({"dave": RICH, "erin": RICH})
    placed = d.block([
        d.tx("carol", limit(BTC, BUY, 46000, 1, client_id=1)),
        d.tx("dave", limit(BTC, SELL, 53500, 60, client_id=1)),
        d.tx("erin", limit(BTC, SELL, 53600, 100, client_id=1)),
    ])  # fmt: skip
    (carol_bid,) = app.books[BTC].order_ids_of(address("carol"))
    assert [r.code for r in placed.tx_results] == [0, 0, 0]
    fund = app.clearing.insurance_fund
    result = d.block([], prices=[53000, ETH_PRICE])
    cancelled = [e for e in _events(result, "order") if e["owner"] == address("carol")]
    assert [(e["order_id"], e["status"]) for e in cancelled] == [(carol_bid, "cancelled")]
    fills = _events(result, "fill")
    assert [(f["maker"], f["taker"], f["taker_side"], f["price"], f["size"], f["liquidation"])
            for f in fills] == [
        (address("dave"), address("carol"), BUY, 53500, 60, True),
        (address("erin"), address("carol"), BUY, 53600, 40, True),
    ]  # fmt: skip
    (liquidation,) = _events(result, "liquidation")
    assert (liquidation["bankruptcy_price"], liquidation["step"], liquidation["filled"]) == (
        55000, "book", 100,
    )  # fmt: skip
    # per fill, min(1% of its notional, its surplus over the bankruptcy price):
    # min(32.1, 90) + min(21.44, 56) quote
    assert _events(result, "liquidation_fee") == [
        {"account": address("carol"), "amount": 32_100_000 + 21_440_000}
    ]
    assert app.clearing.insurance_fund - fund == 53_540_000
    assert [_position(app, n) for n in ("carol", "dave", "erin")] == [0, -60, -40]
    assert app.books[BTC].order_ids_of(address("carol")) == []
    assert app.clearing.conservation_gap() == 0


def test_a_maker_short_of_margin_is_removed_and_the_next_one_fills_the_liquidation() -> None:
    """Dave's ask at 53500 rested while he had the margin for it; he then withdrew most of
    his collateral. Carol's liquidation order reaches his ask first: the maker check vetoes
    it (the fill would leave him below initial margin), his order leaves the book
    ('vetoed'), and Erin's ask at 54000 fills the liquidation instead."""
    app, d = _short_carol({"dave": "600", "erin": RICH})
    placed = d.block([
        d.tx("dave", limit(BTC, SELL, 53500, 100, client_id=1)),
        d.tx("erin", limit(BTC, SELL, 54000, 100, client_id=1)),
    ])  # fmt: skip
    assert [r.code for r in placed.tx_results] == [0, 0]
    (dave_ask,) = app.books[BTC].order_ids_of(address("dave"))
    assert d.block([d.tx("dave", Withdraw(500_000_000))]).tx_results[0].code == 0
    result = d.block([], prices=[53000, ETH_PRICE])
    orders = [(e["order_id"], e["owner"], e["status"]) for e in _events(result, "order")]
    assert orders == [(dave_ask, address("dave"), "vetoed")]
    fills = _events(result, "fill")
    assert [(f["maker"], f["price"], f["size"]) for f in fills] == [(address("erin"), 54000, 100)]
    assert (_position(app, "carol"), _position(app, "dave"), _position(app, "erin")) == (
        0, 0, -100,
    )  # fmt: skip
    assert app.books[BTC].order(dave_ask) is None


def _carol_under_water(
    side: int, fund: str, makers: list[tuple[str, int, int]], shorts: dict[str, str] | None = None
) -> tuple[ExchangeApp, FinalizeResult]:
    """Carol (long or short 100 at 50000 with 502.54 quote) is liquidated at an oracle of
    47000 or 53000 (net 200.04 quote, bankruptcy price 2000.4 ticks from the oracle,
    rounded in her favour: 45000 or 55000), against ``makers`` (name, price, lots) resting on the
    other side (placed at 48000 or 52000, when their prices were within the band and Carol
    above maintenance); her counterparty was Bob."""
    long = side == BUY
    balances = {"carol": "502.54", "bob": RICH}
    balances |= {name: RICH for name, _, _ in makers}
    app = ExchangeApp(genesis(balances, insurance_fund=fund))
    d = Driver(app)
    d.block([
        d.tx("bob", limit(BTC, 1 - side, 50000, 100)),
        d.tx("carol", limit(BTC, side, 50000, 100, IOC)),
    ])  # fmt: skip
    # halfway (Carol still above maintenance), the makers' prices are within the band
    placed = d.block(
        [d.tx(name, limit(BTC, side, price, lots)) for name, price, lots in makers],
        prices=[48000 if long else 52000, ETH_PRICE],
    )
    assert [r.code for r in placed.tx_results] == [0] * len(makers)
    assert _position(app, "carol") == (100 if long else -100)
    return app, d.block([], prices=[47000 if long else 53000, ETH_PRICE])


@pytest.mark.parametrize("side", [BUY, SELL], ids=["long", "short"])
def test_what_the_book_cannot_take_at_the_bankruptcy_price_the_fund_backs(side: int) -> None:
    """Nothing rests at the bankruptcy price or better; the fund (150 quote) can pay up to
    150 quote over 100 lots, 1500 ticks beyond the bankruptcy price: the liquidation order
    goes to 43500 (long) or 56500 (short), fills 60 + 40 lots at 1000 ticks worse than the
    bankruptcy price, and the fund pays the difference, 100 quote, to Carol."""
    worse = 44000 if side == BUY else 56000
    app, result = _carol_under_water(side, "150", [("dave", worse, 60), ("erin", worse, 40)])
    assert _steps(result) == [("book", 0), ("insurance", 100)]
    fills = _events(result, "fill")
    assert [(f["price"], f["size"]) for f in fills] == [(worse, 60), (worse, 40)]
    assert _events(result, "insurance_cover") == [
        {"account": address("carol"), "amount": 100_000_000}
    ]
    assert app.clearing.insurance_fund == 50_000_000
    carol = app.account(address("carol"))
    assert carol is not None and not carol.positions
    # what is left of her collateral after closing at the bankruptcy price: 0.04 quote
    assert carol.balance == 40_000
    assert app.clearing.conservation_gap() == 0


@pytest.mark.parametrize("side", [BUY, SELL], ids=["long", "short"])
def test_beyond_what_the_fund_can_back_the_position_is_deleveraged(side: int) -> None:
    """The only order rests 1700 ticks beyond the bankruptcy price, further than the fund
    (150 quote: 1500 ticks over 100 lots) can back: the insurance order fills nothing and
    Bob, the only holder on the other side, takes Carol's position at the bankruptcy
    price."""
    far = 43300 if side == BUY else 56700
    app, result = _carol_under_water(side, "150", [("dave", far, 100)])
    assert _steps(result) == [("book", 0), ("insurance", 0), ("adl", 100)]
    bankrupt = 45000 if side == BUY else 55000
    assert [(a["counterparty"], a["price"], a["size"]) for a in _events(result, "adl")] == [
        (address("bob"), bankrupt, 100)
    ]
    assert app.clearing.insurance_fund == 150_000_000
    assert (_position(app, "carol"), _position(app, "bob")) == (0, 0)
    assert app.books[BTC].order_ids_of(address("dave")) != []


@pytest.mark.parametrize("side", [BUY, SELL], ids=["long", "short"])
def test_a_fund_that_cannot_back_one_tick_is_not_used(side: int) -> None:
    """A fund of 0.05 quote cannot pay one tick over 100 lots (0.1 quote): no insurance
    order, straight to deleveraging."""
    worse = 44000 if side == BUY else 56000
    app, result = _carol_under_water(side, "0.05", [("dave", worse, 100)])
    assert _steps(result) == [("book", 0), ("adl", 100)]
    assert app.clearing.insurance_fund == 50_000


@pytest.mark.parametrize("side", [BUY, SELL], ids=["long", "short"])
def test_deleveraging_takes_from_each_opposite_holder_until_nothing_is_left(side: int) -> None:
    """Carol's 100 lots came from Zed (40, with little collateral: the most leveraged) and
    Bob (60). No order rests and the fund is empty: Zed is deleveraged first, then Bob, at
    the bankruptcy price, and all three end flat."""
    long = side == BUY
    app = ExchangeApp(
        genesis({"carol": "502.54", "bob": RICH, "zed": "1000"},
                insurance_fund="0")
    )  # fmt: skip
    d = Driver(app)
    d.block([
        d.tx("zed", limit(BTC, 1 - side, 50000, 40)),
        d.tx("bob", limit(BTC, 1 - side, 50000, 60, client_id=1)),
        d.tx("carol", limit(BTC, side, 50000, 100, IOC)),
    ])  # fmt: skip
    result = d.block([], prices=[47000 if long else 53000, ETH_PRICE])
    bankrupt = 45000 if long else 55000
    assert [(a["counterparty"], a["price"], a["size"]) for a in _events(result, "adl")] == [
        (address("zed"), bankrupt, 40), (address("bob"), bankrupt, 60),
    ]  # fmt: skip
    assert [_position(app, n) for n in ("carol", "bob", "zed")] == [0, 0, 0]
    assert app.clearing.conservation_gap() == 0


def test_a_liquidation_closes_at_least_one_lot_a_block_within_its_notional_budget() -> None:
    """With a budget of 10 quote per account per block (less than one lot, 47 quote at the
    oracle), Carol's liquidation closes one lot per block."""
    app = ExchangeApp(genesis(
        {"carol": "502.54", "bob": RICH, "dave": RICH},
        params={"max_liquidation_notional_per_account": "10"},
    ))  # fmt: skip
    d = Driver(app)
    d.block([
        d.tx("bob", limit(BTC, SELL, 50000, 100)),
        d.tx("carol", limit(BTC, BUY, 50000, 100, IOC)),
        d.tx("dave", limit(BTC, BUY, 46500, 100)),
    ])  # fmt: skip
    for held in (99, 98):
        result = d.block([], prices=[47000, ETH_PRICE])
        assert _steps(result) == [("book", 1)]
        assert _position(app, "carol") == held


@pytest.mark.parametrize(("budget", "eth_lots"), [("480", 0), ("480.000001", 1)])
def test_the_notional_budget_spent_on_one_market_leaves_the_next_for_the_next_block(
    budget: str, eth_lots: int
) -> None:
    """Erin is long 10 BTC and 1000 ETH; both fall and she is liquidatable. Her budget is
    exactly the notional of her BTC position at the oracle (10 x 48000 x 1000): the first
    block closes BTC (market 0) and, though she is still below maintenance, not ETH; the
    next block closes what the budget buys of ETH. With one micro-unit more, the first
    block also closes one lot of ETH (at least one lot while any budget is left)."""
    app = ExchangeApp(genesis(
        {"erin": "400", "bob": RICH, "dave": RICH},
        params={"max_liquidation_notional_per_account": budget},
    ))  # fmt: skip
    d = Driver(app)
    d.block([
        d.tx("bob", limit(BTC, SELL, 50000, 10)),
        d.tx("bob", limit(ETH, SELL, 3000, 1000, client_id=1)),
        d.tx("erin", limit(BTC, BUY, 50000, 10, IOC)),
        d.tx("erin", limit(ETH, BUY, 3000, 1000, IOC)),
        d.tx("dave", limit(BTC, BUY, 48000, 10)),
        d.tx("dave", limit(ETH, BUY, 2750, 1000, client_id=1)),
    ])  # fmt: skip
    prices = [48000, 2750]
    first = d.block([], prices=prices)
    steps = [(e["market"], e["step"], e["filled"]) for e in _events(first, "liquidation")]
    assert steps == [(BTC, "book", 10)] + ([(ETH, "book", 1)] if eth_lots else [])
    erin = app.account(address("erin"))
    assert erin is not None and app.clearing.health(erin).liquidatable
    assert erin.position_size(ETH) == 1000 - eth_lots
    if not eth_lots:
        second = d.block([], prices=prices)
        # again within the budget: 480,000,000 // (2750 x 1000) = 174 lots
        steps = [(e["market"], e["step"], e["filled"]) for e in _events(second, "liquidation")]
        assert steps == [(ETH, "book", 174)]
        assert erin.position_size(ETH) == 1000 - 174


def test_which_accounts_go_first_when_the_per_block_cap_binds_is_seeded_by_the_chain() -> None:
    """Six accounts are liquidatable and the cap is one a block. In each block, in address
    order, the first is the one at sha256("liquidation" || previous block hash || height
    as u64)[:8] (a big-endian integer) modulo the number of candidates; the others wait
    for the next block."""
    names = ("carol", "dave", "erin", "finn", "gus", "hal")
    app = ExchangeApp(genesis(
        {**dict.fromkeys(names, "502.54"), "bob": RICH, "zed": RICH},
        params={"max_liquidations_per_block": 1},
    ))  # fmt: skip
    d = Driver(app)
    d.block([
        d.tx("bob", limit(BTC, SELL, 50000, 600)),
        *(d.tx(name, limit(BTC, BUY, 50000, 100, IOC)) for name in names),
    ])  # fmt: skip
    d.block([d.tx("zed", limit(BTC, BUY, 46000, 600))], prices=[48000, ETH_PRICE])
    waiting = sorted(address(n) for n in names)
    for _ in range(3):
        height = d.height
        prev_block_hash = sha256(height.to_bytes(8, "big")).digest()  # the Driver's
        seed = sha256(b"liquidation" + prev_block_hash + height.to_bytes(8, "big")).digest()
        first = waiting[int.from_bytes(seed[:8], "big") % len(waiting)]
        result = d.block([], prices=[47000, ETH_PRICE])
        assert [e["account"] for e in _events(result, "liquidation")] == [first]
        waiting.remove(first)


def test_a_one_lot_long_is_closed_by_selling_it() -> None:
    """Carol (5.0254 quote) holds one lot; at 47000 she is below maintenance. No bid rests
    (only Zed's ask at 44000, below her bankruptcy price) and the fund is empty: her lot
    goes to Bob, the short, at her bankruptcy price 45000."""
    app = ExchangeApp(genesis({"carol": "5.0254", "bob": RICH, "zed": RICH}, insurance_fund="0"))
    d = Driver(app)
    d.block(
        [d.tx("bob", limit(BTC, SELL, 50000, 1)), d.tx("carol", limit(BTC, BUY, 50000, 1, IOC))]
    )
    result = d.block([d.tx("zed", limit(BTC, SELL, 44000, 1))], prices=[47000, ETH_PRICE])
    assert result.tx_results[0].code == 0
    assert _steps(result) == [("book", 0), ("adl", 1)]
    assert {e["bankruptcy_price"] for e in _events(result, "liquidation")} == {45000}
    assert not _events(result, "fill")
    assert [(a["counterparty"], a["price"], a["size"]) for a in _events(result, "adl")] == [
        (address("bob"), 45000, 1)
    ]
    assert (_position(app, "carol"), _position(app, "bob")) == (0, 0)
