"""The maker check's margin rule (margin.makers), as fixed scenarios with exact amounts: a
resting order fills only if its owner stays at or above initial margin after the fill,
its maker fee (a charge rounded up, a rebate rounded down) included; a fill that flips a
position is checked like any other that adds risk; and fills one taker makes against
several orders of the same owner add up. A maker that fails the check is removed from the
book ('vetoed') and the taker goes on to the next order.

Found unguarded by ``make mutate`` (docs/mutation-report.md): only the reduce-only part of
the check had fixed tests. Markets of tests/exchange/support.py: BTC-PERP at 50000 ticks,
one tick-lot is 1000 micro-units, initial margin 10%, maker fee -100 ppm (a rebate) unless
overridden. Balances are brought to exact values by withdrawing after the orders rest
(resting orders reserve nothing).
"""

from __future__ import annotations

from typing import Any

import pytest

from appchaind.exchange import ExchangeApp, Withdraw
from tests.exchange.support import (
    BUY,
    IOC,
    SELL,
    Driver,
    address,
    genesis,
    limit,
    market,
)

BTC = 0
RICH = 10**12  # micro-units: "1000000" quote


def _app(maker_fee_ppm: int = -100) -> tuple[ExchangeApp, Driver]:
    markets = [
        market("BTC-PERP", "50000", maker_fee_ppm=maker_fee_ppm),
        market("ETH-PERP", "3000"),
    ]
    app = ExchangeApp(genesis(dict.fromkeys(("mia", "tom", "zed"), "1000000"), markets=markets))
    return app, Driver(app)


def _net(app: ExchangeApp, name: str) -> int:
    account = app.account(address(name))
    assert account is not None
    return app.clearing.health(account).net


def _fills_and_vetoes(result: Any) -> tuple[list[int], list[bytes]]:
    """Sizes of the block's fills, owners of the orders vetoed in it."""
    events = [e for r in result.tx_results for e in r.events]
    fills = [e.attributes["size"] for e in events if e.kind == "fill"]
    vetoed = [
        e.attributes["owner"]
        for e in events
        if e.kind == "order" and e.attributes["status"] == "vetoed"
    ]
    return fills, vetoed


#: (maker side, maker fee ppm, the least balance that fills): the maker rests 7 lots at
#: 50001 (notional 350,007,000); after the fill its initial requirement is 35,000,000 at
#: the oracle (50000), and the fill moves its net collateral by +7,000 (an ask above the
#: oracle) or -7,000 (a bid above it), minus its fee. A rebate of 100 ppm is 35,000.7,
#: paid as 35,000; a charge of 333 ppm is 116,552.331, charged as 116,553.
BOUNDARIES = [
    (SELL, -100, 35_000_000 - 7_000 - 35_000),
    (SELL, 333, 35_000_000 - 7_000 + 116_553),
    (BUY, -100, 35_000_000 + 7_000 - 35_000),
    (BUY, 333, 35_000_000 + 7_000 + 116_553),
]


@pytest.mark.parametrize(("side", "fee_ppm", "least"), BOUNDARIES)
def test_a_maker_fills_down_to_exactly_initial_margin_after_its_fee(
    side: int, fee_ppm: int, least: int
) -> None:
    for balance, fills in ((least, True), (least - 1, False)):
        app, d = _app(fee_ppm)
        d.block([d.tx("mia", limit(BTC, side, 50001, 7))])
        d.block([d.tx("mia", Withdraw(RICH - balance))])
        assert _net(app, "mia") == balance
        result = d.block([d.tx("tom", limit(BTC, 1 - side, 50001, 7, IOC))])
        if fills:
            assert _fills_and_vetoes(result) == ([7], [])
            assert app.clearing.health(app.account(address("mia"))).free_collateral == 0  # type: ignore[arg-type]
        else:
            assert _fills_and_vetoes(result) == ([], [address("mia")])
            assert app.account(address("mia")).position_size(BTC) == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("side", [SELL, BUY])
def test_a_maker_fill_that_flips_its_position_needs_margin_for_the_new_one(side: int) -> None:
    """Mia holds 2 lots (long when her order sells, short when it buys) with net
    collateral 20 quote, twice her initial requirement. Her order of 10 on the other side
    would leave her 8 the other way (initial requirement 40 quote): it is vetoed, though
    its first 2 lots would only reduce."""
    app, d = _app()
    d.block([
        d.tx("zed", limit(BTC, side, 50000, 2)),
        d.tx("mia", limit(BTC, 1 - side, 50000, 2, IOC)),
        d.tx("mia", limit(BTC, side, 50000, 10, client_id=1)),
    ])  # fmt: skip
    d.block([d.tx("mia", Withdraw(_net(app, "mia") - 20_000_000))])
    assert _net(app, "mia") == 20_000_000
    result = d.block([d.tx("tom", limit(BTC, 1 - side, 50000, 10, IOC))])
    assert _fills_and_vetoes(result) == ([], [address("mia")])
    held = 2 if side == SELL else -2
    assert app.account(address("mia")).position_size(BTC) == held  # type: ignore[union-attr]


@pytest.mark.parametrize(("net", "filled"), [(45_000_000, [3, 3]), (60_000_000, [3, 3, 3])])
def test_fills_against_several_orders_of_one_maker_add_up(net: int, filled: list[int]) -> None:
    """Mia is short 2 with three asks of 3 at 50000; a buyer takes 9. Each fill is checked
    against the position the earlier ones leave: with net collateral 45 quote the first
    two fill (short 8: initial requirement 40 quote) and the third, which would leave her
    short 11 (55 quote), is vetoed; with 60 quote all three fill."""
    app, d = _app()
    d.block([
        d.tx("zed", limit(BTC, BUY, 50000, 2)),
        d.tx("mia", limit(BTC, SELL, 50000, 2, IOC)),
        *(d.tx("mia", limit(BTC, SELL, 50000, 3, client_id=i)) for i in (1, 2, 3)),
    ])  # fmt: skip
    d.block([d.tx("mia", Withdraw(_net(app, "mia") - net))])
    assert _net(app, "mia") == net
    result = d.block([d.tx("tom", limit(BTC, BUY, 50000, 9, IOC))])
    vetoed = [] if len(filled) == 3 else [address("mia")]
    assert _fills_and_vetoes(result) == (filled, vetoed)
    assert app.account(address("mia")).position_size(BTC) == -2 - sum(filled)  # type: ignore[union-attr]
    assert app.account(address("tom")).position_size(BTC) == sum(filled)  # type: ignore[union-attr]


def test_a_reduce_only_maker_of_a_one_lot_position_fills_one_lot() -> None:
    """Mia holds +1 with a reduce-only ask of 3 resting (placed in a later block, so no
    upkeep has resized it): a buyer of 3 gets 1 lot from it."""
    app, d = _app()
    d.block([d.tx("zed", limit(BTC, SELL, 50000, 1)), d.tx("mia", limit(BTC, BUY, 50000, 1, IOC))])
    d.block([d.tx("mia", limit(BTC, SELL, 50100, 3, reduce_only=True))])
    result = d.block([d.tx("tom", limit(BTC, BUY, 50100, 3, IOC))])
    assert _fills_and_vetoes(result) == ([1], [])
    assert app.account(address("mia")).position_size(BTC) == 0  # type: ignore[union-attr]
