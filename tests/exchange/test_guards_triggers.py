"""What a conditional order becomes when the oracle reaches its trigger price
(appchaind/exchange/order_upkeep.py, ``fire_triggers``): it is submitted like a new order
of its owner, with its own side, size, reduce-only flag, client id and good_til_block;
a stop or take-profit *market* order as IOC (FOK stays FOK) limited by the price band on
its side, a *limit* order with its own price and time in force.

BTC-PERP of tests/exchange/support.py: the oracle moves to 49000 to fire the orders here;
the price band is then [44100, 53900].
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from appchaind.exchange import ExchangeApp, PlaceOrder
from appchaind.exchange.txs import OrderType
from tests.exchange.support import (
    BUY,
    GTC,
    IOC,
    POST_ONLY,
    SELL,
    Driver,
    address,
    conditional,
    genesis,
    limit,
)

BTC = 0
RICH = "1000000"
FIRED = [49000, 3000]


def _statuses(events: Any, owner: bytes) -> list[tuple[str, int]]:
    return [
        (a["status"], a["size"])
        for a in (e.attributes for e in events if e.kind == "order")
        if a["owner"] == owner
    ]


def _position(app: ExchangeApp, name: str) -> int:
    account = app.account(address(name))
    return 0 if account is None else account.position_size(BTC)


@pytest.mark.parametrize(
    ("side", "kind", "inside", "beyond"),
    [
        (BUY, OrderType.TAKE_PROFIT_MARKET, 53900, 54000),
        (SELL, OrderType.STOP_MARKET, 44100, 44000),
    ],
)
def test_a_triggered_market_order_is_ioc_limited_by_the_band_on_its_side(
    side: int, kind: OrderType, inside: int, beyond: int
) -> None:
    """Orders of 2 at the band's end on the triggered order's side and 2 beyond it rest
    (placed at an oracle of 48000 or 50000, whose bands hold them): the fired order of 5
    takes the 2 at the band's end and the rest is cancelled."""
    app = ExchangeApp(genesis({"alice": RICH, "maker": RICH}))
    d = Driver(app)
    maker_side = 1 - side
    d.block(
        [
            d.tx("maker", limit(BTC, maker_side, inside, 2, client_id=1)),
            d.tx("maker", limit(BTC, maker_side, beyond, 2, client_id=2)),
        ],
        prices=[50000 if side == BUY else 48000, 3000],
    )
    d.block([d.tx("alice", conditional(BTC, side, kind, 49000, 5))], prices=[50000, 3000])
    result = d.block([], prices=FIRED)
    assert _statuses(result.events, address("alice")) == [("triggered", 5), ("cancelled", 0)]
    assert _position(app, "alice") == (2 if side == BUY else -2)
    assert app.books[BTC].volume(maker_side) == 2


def _stop_limit_ask(price: int, tif: int, good_til_block: int = 0) -> PlaceOrder:
    """A stop-limit sell of 2 lots triggered at 49000 with limit ``price``."""
    body = conditional(BTC, SELL, OrderType.STOP_LIMIT, 49000, 2, price, tif=tif)
    return dataclasses.replace(body, good_til_block=good_til_block)


def test_a_triggered_limit_order_keeps_its_price_time_in_force_and_expiry() -> None:
    """Three stop-limit asks of 2 at 49500 fire: the GTC one (good_til_block 4) rests and
    expires at the end of block 4; the post-only one rests too (nothing to take); an
    IOC one would rest nowhere: cancelled. A post-only ask at 48000 that would take the
    maker's bid is rejected."""
    names = ("alice", "bob", "carol", "dan", "maker")
    app = ExchangeApp(genesis(dict.fromkeys(names, RICH)))
    d = Driver(app)
    d.block([
        d.tx("maker", limit(BTC, BUY, 48500, 1)),
        d.tx("alice", _stop_limit_ask(49500, GTC, good_til_block=4)),
        d.tx("bob", _stop_limit_ask(49500, POST_ONLY)),
        d.tx("carol", _stop_limit_ask(49500, IOC)),
        d.tx("dan", _stop_limit_ask(48000, POST_ONLY)),
    ])  # fmt: skip
    result = d.block([], prices=FIRED)  # height 2
    assert _statuses(result.events, address("alice")) == [("triggered", 2), ("resting", 2)]
    assert _statuses(result.events, address("bob")) == [("triggered", 2), ("resting", 2)]
    assert _statuses(result.events, address("carol")) == [("triggered", 2), ("cancelled", 0)]
    assert [s for s, _ in _statuses(result.events, address("dan"))] == [
        "triggered", "rejected", "rejected",
    ]  # fmt: skip
    asks = [(r[1], r[3]) for r in app.books[BTC].resting_orders() if r[2] == SELL]
    assert asks == [(address("alice"), 49500), (address("bob"), 49500)]
    assert d.block([], prices=FIRED).events == []  # height 3
    result = d.block([], prices=FIRED)  # height 4
    assert _statuses(result.events, address("alice")) == [("expired", 2)]


def test_a_triggered_reduce_only_order_is_cut_to_the_position() -> None:
    """Alice holds +5 with a reduce-only stop sell of 5; in the block where the oracle
    fires it she first sells 3: the stop sells only the 2 she holds."""
    app = ExchangeApp(genesis({"alice": RICH, "maker": RICH}))
    d = Driver(app)
    d.block(
        [d.tx("maker", limit(BTC, SELL, 50000, 5)), d.tx("alice", limit(BTC, BUY, 50000, 5, IOC))]
    )
    d.block([
        d.tx("alice", conditional(BTC, SELL, OrderType.STOP_MARKET, 49000, 5, reduce_only=True)),
        d.tx("maker", limit(BTC, BUY, 48000, 20)),
    ])  # fmt: skip
    d.block([d.tx("alice", limit(BTC, SELL, 48000, 3, IOC, client_id=1))], prices=FIRED)
    assert _position(app, "alice") == 0
