"""The liquidation process (margin/liquidator.py) against a scripted exchange: what the
liquidator asks the book for (side, limit price, size), how it pays for the fills it gets
back, and what it does once the book and the insurance fund are done.

Markets of tests/exchange/support.py: BTC-PERP at 50000 ticks, one tick-lot is 1000
micro-units, maintenance margin 5%, liquidation fee 1%, price band 10%."""

from __future__ import annotations

from typing import Any

import pytest

from appchaind.chain.events import Event, PendingEvent
from margin import Account, ClearingHouse, Liquidator, MarketState
from orderbook.types import MAX_PRICE, Fill, Side
from tests.exchange.support import genesis, market

BTC = 0
Q = 1000  # micro-units per tick-lot


class ScriptedExchange:
    """The exchange around the liquidator, with a scripted book: each liquidation order
    gets the next list of (maker, price, lots) fills, settled like a liquidation fill (no
    taker fee; the maker pays its maker fee)."""

    def __init__(self, clearing: ClearingHouse, script: list[list[tuple[Account, int, int]]]):
        self.clearing = clearing
        self.script = script
        self.orders: list[tuple[int, int, int]] = []  # (side, limit, size) asked for

    def settle_funding(self, account: Account, events: list[PendingEvent]) -> None:
        self.clearing.settle_funding(account)

    def cancel_orders(self, account: Account, events: list[PendingEvent]) -> None:
        pass

    def liquidation_order(
        self,
        account: Account,
        market_id: int,
        side: int,
        limit: int,
        size: int,
        events: list[PendingEvent],
    ) -> list[Fill]:
        self.orders.append((side, limit, size))
        fills: list[Fill] = []
        for maker, price, lots in self.script.pop(0) if self.script else []:
            self.clearing.settle_fill(market_id, maker, account, bool(side), price, lots, 0)
            fills.append((0, maker.address, 0, account.address, side, price, lots, 0))
        return fills


def _events(events: list[PendingEvent], kind: str) -> list[dict[str, Any]]:
    return [e.attributes for e in events if isinstance(e, Event) and e.kind == kind]


def _house(fund: int) -> tuple[ClearingHouse, list[MarketState]]:
    markets = [MarketState(m) for m in genesis({}).markets]
    return ClearingHouse(markets, fund), markets


def _bankrupt_short(clearing: ClearingHouse, balance: int) -> tuple[Account, Account]:
    """A short of one lot at 50000 with ``balance`` micro-units (the sale's proceeds
    withdrawn and more): at or below 1000, its losses reach the lot's whole value and its
    bankruptcy price is the floor, 1 tick; and Bob, long one lot, its only counterparty."""
    short = clearing.open_account(b"s" * 20, 0)
    bob = clearing.faucet(b"b" * 20, 10**12)
    clearing.change_position(short, BTC, -1, 50000)
    clearing.change_position(bob, BTC, 1, 50000)
    clearing.withdrawn += short.balance - balance
    short.balance = balance
    clearing.prices_changed()
    assert clearing.health(short).net == balance - 50000 * Q
    return short, bob


def _liquidate(clearing: ClearingHouse, account: Account, exchange: ScriptedExchange):
    events: list[PendingEvent] = []
    Liquidator(clearing, 10, 10**15).liquidate(exchange, account, events)
    return events


def test_a_closed_out_account_left_negative_is_topped_up_by_the_fund() -> None:
    """Short with -10 quote, nothing fills on the book: Bob takes the short over at its
    bankruptcy price, 1 tick, and the short is left at -10.001 quote; the fund (100 quote)
    covers all of it, back to zero."""
    clearing, _ = _house(100_000_000)
    short, bob = _bankrupt_short(clearing, -10_000_000)
    fund = clearing.insurance_fund
    exchange = ScriptedExchange(clearing, [])
    events = _liquidate(clearing, short, exchange)
    # the book order at the bankruptcy price; the fund's (100,000 ticks) to the band's end
    assert exchange.orders == [(Side.BUY, 1, 1), (Side.BUY, 55000, 1)]
    assert [(a["counterparty"], a["price"], a["size"]) for a in _events(events, "adl")] == [
        (bob.address, 1, 1)
    ]
    assert not short.positions
    assert _events(events, "insurance_cover") == [{"account": short.address, "amount": 10_001_000}]
    assert short.balance == 0
    assert clearing.insurance_fund == fund - 10_001_000
    assert clearing.conservation_gap() == 0


@pytest.mark.parametrize(("fund", "cover"), [(4_000_000, 4_000_000), (1, 1), (0, 0)])
def test_the_fund_covers_a_negative_balance_only_as_far_as_it_goes(fund: int, cover: int) -> None:
    """The same with a smaller fund: it gives all it has and the rest stays negative; an
    empty fund gives nothing and reports nothing."""
    clearing, _ = _house(fund)
    short, _ = _bankrupt_short(clearing, -10_000_000)
    events = _liquidate(clearing, short, ScriptedExchange(clearing, []))
    assert not short.positions
    expected = [{"account": short.address, "amount": cover}] if cover else []
    assert _events(events, "insurance_cover") == expected
    assert short.balance == cover - 10_001_000
    assert clearing.insurance_fund == 0
    assert clearing.conservation_gap() == 0


def test_an_account_closed_out_at_exactly_zero_needs_no_cover() -> None:
    """Short with 0.001 quote: bought back at 1 tick it is left with exactly nothing; the
    fund is not touched and no cover is reported."""
    clearing, _ = _house(100_000_000)
    short, _ = _bankrupt_short(clearing, Q)
    events = _liquidate(clearing, short, ScriptedExchange(clearing, []))
    assert not short.positions and short.balance == 0
    assert _events(events, "insurance_cover") == []
    assert clearing.insurance_fund == 100_000_000


def test_a_liquidation_orders_limit_is_the_bankruptcy_price_within_the_valid_prices() -> None:
    """A long so deep under water that its bankruptcy price is beyond the highest valid
    price (MAX_PRICE - 1 ticks): the book order goes out at that highest price, as close
    to the bankruptcy price as an order can be (not at an invalid price the book would
    refuse)."""
    clearing, _ = _house(0)
    long = clearing.open_account(b"l" * 20, 0)
    bob = clearing.faucet(b"b" * 20, 10**12)
    clearing.change_position(long, BTC, 1, 50000)
    clearing.change_position(bob, BTC, -1, 50000)
    clearing.withdrawn += long.balance + MAX_PRICE * Q
    long.balance = -MAX_PRICE * Q
    clearing.prices_changed()
    exchange = ScriptedExchange(clearing, [])
    _liquidate(clearing, long, exchange)
    assert exchange.orders == [(Side.SELL, MAX_PRICE - 1, 1)]
    assert not long.positions and clearing.conservation_gap() == 0


def test_a_fund_of_one_micro_unit_backs_one_tick_of_a_lot_worth_one_micro_unit_a_tick() -> None:
    """In a market whose tick-lot is 1 micro-unit, a fund of 1 micro-unit can pay one
    tick over one lot: after the book order at the bankruptcy price fills nothing, the
    insurance order goes one tick further, and its fill there takes the whole fund."""
    markets = [
        MarketState(m)
        for m in genesis({}, markets=[market("MICRO-PERP", "50000", lot_size="0.000001")]).markets
    ]
    assert markets[0].quantum == 1
    clearing = ClearingHouse(markets, 1)
    long = clearing.faucet(b"l" * 20, 1000)
    bob = clearing.faucet(b"b" * 20, 10**12)
    maker = clearing.faucet(b"m" * 20, 10**12)
    clearing.change_position(long, BTC, 1, 50000)
    clearing.change_position(bob, BTC, -1, 50000)
    state = clearing.health(long)
    assert (state.net, state.maintenance) == (1000, 2500)  # bankruptcy price 49000
    bankrupt = 50000 - 1000
    exchange = ScriptedExchange(clearing, [[], [(maker, bankrupt - 1, 1)]])
    events = _liquidate(clearing, long, exchange)
    assert exchange.orders == [(Side.SELL, bankrupt, 1), (Side.SELL, bankrupt - 1, 1)]
    assert _events(events, "insurance_cover") == [{"account": long.address, "amount": 1}]
    assert clearing.insurance_fund == 0 and not long.positions
    assert clearing.conservation_gap() == 0


def _carol_long(clearing: ClearingHouse, markets: list[MarketState]) -> tuple[Account, Account]:
    """Carol (500.04 quote) long 100 lots at 50000 from Bob; at an oracle of 47000 her net
    collateral is 200.04 quote, below maintenance (235): bankruptcy price 47000 - 2000.4
    ticks, rounded in her favour to 45000. The band's lowest sell price is 42300."""
    carol = clearing.faucet(b"c" * 20, 500_040_000)
    bob = clearing.faucet(b"b" * 20, 10**12)
    clearing.change_position(carol, BTC, 100, 50000)
    clearing.change_position(bob, BTC, -100, 50000)
    markets[BTC].oracle_price = 47000
    clearing.prices_changed()
    assert clearing.health(carol).net == 200_040_000
    return carol, bob


@pytest.mark.parametrize(
    ("fund", "insurance_limit"),
    [
        # 20 quote, and the 6 quote of fee the book fills paid (their surplus, 100 ticks
        # on 60 lots, below 1% of their notional), over the 40 lots left: 650 ticks
        (20_000_000, 44350),
        (1_000_000_000, 42300),  # 25,000 ticks: no further than the price band
    ],
)
def test_the_book_then_the_fund_then_deleveraging_each_take_what_is_left(
    fund: int, insurance_limit: int
) -> None:
    """The book order sells all 100 lots no lower than the bankruptcy price (60 fill at
    45100); the insurance order sells the 40 left as far below it as the fund can pay for,
    within the band (10 fill at 44600, the fund paying 400 ticks on each); Bob takes the
    last 30 at the bankruptcy price. Each step's event says what it was asked, what filled
    and what remained."""
    clearing, markets = _house(fund)
    carol, bob = _carol_long(clearing, markets)
    dave = clearing.faucet(b"d" * 20, 10**12)
    erin = clearing.faucet(b"e" * 20, 10**12)
    exchange = ScriptedExchange(clearing, [[(dave, 45100, 60)], [(erin, 44600, 10)]])
    events = _liquidate(clearing, carol, exchange)
    assert exchange.orders == [(Side.SELL, 45000, 100), (Side.SELL, insurance_limit, 40)]
    steps = [
        (e["step"], e["size"], e["filled"], e["remaining"], e["bankruptcy_price"])
        for e in _events(events, "liquidation")
    ]
    assert steps == [
        ("book", 100, 60, 40, 45000),
        ("insurance", 40, 10, 30, 45000),
        ("adl", 30, 30, 0, steps[2][4]),
    ]
    assert [(a["counterparty"], a["size"]) for a in _events(events, "adl")] == [(bob.address, 30)]
    assert _events(events, "liquidation_fee") == [{"account": carol.address, "amount": 6_000_000}]
    assert _events(events, "insurance_cover") == [
        {"account": carol.address, "amount": 400 * 10 * Q}
    ]
    assert (carol.position_size(BTC), bob.position_size(BTC)) == (0, -70)
    assert clearing.conservation_gap() == 0


def test_deleveraging_stops_once_the_position_is_closed() -> None:
    """The bankrupt short's one lot goes to Bob, the first ranked long (both longs bought
    at 50000: no profit, ties by address); Carl, long one lot too (from Zed), keeps his."""
    clearing, _ = _house(0)
    short, bob = _bankrupt_short(clearing, -10_000_000)
    carl = clearing.faucet(b"c" * 20, 10**12)
    zed = clearing.faucet(b"z" * 20, 10**12)
    clearing.change_position(carl, BTC, 1, 50000)
    clearing.change_position(zed, BTC, -1, 50000)
    events = _liquidate(clearing, short, ScriptedExchange(clearing, []))
    assert [(a["counterparty"], a["size"]) for a in _events(events, "adl")] == [(bob.address, 1)]
    assert [a.position_size(BTC) for a in (short, bob, carl, zed)] == [0, 0, 1, -1]
