"""The maker check (margin/makers.py) at the edges ``make mutate`` (campaign 4) found
unguarded, through an order book that applies it to its resting orders:

- a fill that only reduces the maker's position (down to flat included) needs no margin,
  even when it leaves the maker below its initial requirement;
- a fill that flips a position needs margin for the new one, even when it flips by one
  lot;
- each fill's rebate is rounded down on its own: rebates of several fills of one maker
  against one taker do not add up their fractions.

Market BTC-PERP of tests/exchange/support.py: 50000 ticks, one tick-lot is 1000
micro-units, initial margin 10% (5 quote a lot at the oracle), maker fee -100 ppm (a
rebate). The clearing house does not settle the fills here: the check alone decides.
"""

from __future__ import annotations

import pytest

from margin import ClearingHouse, MarketState, maker_check
from orderbook import OrderBook, Reason, Side, TimeInForce
from tests.exchange.support import genesis

BTC = 0
MIA = b"m" * 20
TOM = b"t" * 20
QUOTE = 1_000_000  # micro-units


def _book(position: int, net: int) -> tuple[OrderBook, ClearingHouse]:
    """A book with the maker check of a clearing house where Mia holds ``position`` lots
    bought or sold at the oracle price, with ``net`` micro-units of net collateral."""
    markets = [MarketState(m) for m in genesis({}).markets]
    clearing = ClearingHouse(markets, 0)
    mia = clearing.open_account(MIA, 0)
    if position:
        clearing.change_position(mia, BTC, position, markets[BTC].oracle_price)
    mia.balance += net - clearing.health(mia).net
    clearing.prices_changed()
    assert clearing.health(mia).net == net
    return OrderBook(maker_check=maker_check(clearing, markets[BTC], {})), clearing


def _hit(book: OrderBook, side: Side, price: int, sizes: list[int]) -> tuple[list[int], list]:
    """Mia's orders of ``sizes`` lots at ``price`` rest; Tom takes them all with one IOC
    order. Returns the sizes filled and the makers vetoed (order ids)."""
    for order_id, size in enumerate(sizes, 1):
        book.place(order_id, MIA, side, price, size, TimeInForce.GTC, 0, order_id)
    book.place(100, TOM, 1 - side, price, sum(sizes), TimeInForce.IOC)
    fills = [fill[6] for fill in book.take_fills()]
    vetoed = [r[0] for r in book.take_removals() if r[2] == Reason.VETOED]
    return fills, vetoed


@pytest.mark.parametrize(
    ("position", "side", "price", "net"),
    [
        # short 2 with 7 quote (initial requirement 10): buying 2 back at 54000 costs 8
        # quote over the oracle, leaving -1 quote (less the rebate of 0.0108)
        (-2, Side.BUY, 54000, 7 * QUOTE),
        # long 1 with 3 quote (initial requirement 5): selling at 46000 loses 4 quote
        (1, Side.SELL, 46000, 3 * QUOTE),
    ],
)
def test_a_maker_fill_that_only_closes_its_position_needs_no_margin(
    position: int, side: Side, price: int, net: int
) -> None:
    book, clearing = _book(position, net)
    notional = price * abs(position) * 1000
    rebate = notional * 100 // 1_000_000
    cash = (notional if side == Side.SELL else -notional) + rebate
    market = clearing.markets[BTC]
    # what a margin check would see: below the initial requirement after the fill
    assert clearing.free_collateral_after(clearing.accounts[MIA], market, position, 0, cash) < 0
    assert _hit(book, side, price, [abs(position)]) == ([abs(position)], [])


@pytest.mark.parametrize(("net", "fills"), [(5 * QUOTE, True), (4 * QUOTE, False)])
@pytest.mark.parametrize(("position", "side"), [(-2, Side.BUY), (2, Side.SELL)])
def test_a_maker_fill_that_flips_its_position_by_one_lot_needs_margin(
    position: int, side: Side, net: int, fills: bool
) -> None:
    """Mia holds 2 lots and her order of 3 at the oracle price on the other side leaves
    her 1 lot the other way (initial requirement 5 quote, her rebate 0.015): it fills with
    5 quote of net collateral, with 4 it is vetoed."""
    book, _ = _book(position, net)
    assert _hit(book, side, 50000, [3]) == (([3], []) if fills else ([], [1]))


@pytest.mark.parametrize(("net", "filled"), [(10 * QUOTE, [1, 1]), (10 * QUOTE - 1, [1])])
def test_the_rebate_of_each_fill_of_one_maker_is_rounded_down(net: int, filled: list) -> None:
    """Mia, flat, bids twice 1 lot at 50005 and Tom sells her both: each fill pays
    50,005,000 less a rebate of 5,000.5, paid as 5,000; the two leave her long 2
    (initial requirement 10 quote) and 10,000 micro-units poorer than at the oracle, so
    both fill with 10 quote of net collateral and with one micro-unit less the second is
    vetoed (the rebates' halves would have made up that micro-unit)."""
    book, _ = _book(0, net)
    vetoed = [] if len(filled) == 2 else [2]
    assert _hit(book, Side.BUY, 50005, [1, 1]) == (filled, vetoed)
