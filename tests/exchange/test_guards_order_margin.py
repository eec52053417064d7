"""The order margin check (appchaind/exchange/orders.py, ``submit``): unless an order only
reduces its owner's position (or closes it), filling it in full at its limit price, taker
fee paid, must leave the account's net collateral at or above its initial margin. Exactly
enough free collateral is accepted, one micro-unit less is refused; an order that only
reduces or closes is placed whatever it would cost. So at a single lot too (a flip to
long 1, a close of 1).

BTC-PERP of tests/exchange/support.py: oracle 50000 ticks, one tick-lot 1000 micro-units,
initial margin 10% of the position's value at the oracle, taker fee 500 ppm. Balances are
genesis amounts in quote (1 quote = 1,000,000 micro-units).
"""

from __future__ import annotations

from appchaind.chain.codes import Code
from appchaind.exchange import ExchangeApp
from tests.exchange.support import BUY, GTC, IOC, SELL, Driver, address, genesis, limit

BTC = 0
ORACLE = 50000
QUANTUM = 1000
RICH = "1000000"


def _initial_margin(lots: int) -> int:
    """10% of the value of ``lots`` at the oracle, micro-units."""
    return lots * ORACLE * QUANTUM // 10


def _taker_fee(price: int, lots: int) -> int:
    """500 ppm of the notional at ``price`` (these notionals divide exactly)."""
    return price * lots * QUANTUM * 500 // 1_000_000


def _quote(micro: int) -> str:
    """A micro-unit amount as a genesis quote amount."""
    return f"{micro // 1_000_000}.{micro % 1_000_000:06d}"


def _with_positions(free: dict[str, int], positions: dict[str, int]) -> tuple[ExchangeApp, Driver]:
    """An app where each of ``positions`` holds the given BTC position (positive: long),
    taken at the oracle price as an IOC taker from ``maker`` (nothing of the maker's left
    resting), and each of ``free`` has that free collateral (net collateral minus initial
    margin, micro-units) once its position is open: its genesis balance is that plus the
    initial margin and the taker fee of its position."""
    funded = {
        name: _quote(
            micro
            + _initial_margin(abs(positions.get(name, 0)))
            + _taker_fee(ORACLE, abs(positions.get(name, 0)))
        )
        for name, micro in free.items()
    }
    app = ExchangeApp(genesis({"maker": RICH, **funded}))
    d = Driver(app)
    txs = []
    for name, size in positions.items():
        side = SELL if size > 0 else BUY
        txs += [
            d.tx("maker", limit(BTC, side, ORACLE, abs(size))),
            d.tx(name, limit(BTC, 1 - side, ORACLE, abs(size), IOC)),
        ]
    result = d.block(txs)
    assert all(r.code == Code.OK for r in result.tx_results)
    for name, micro in free.items():
        account = app.account(address(name))
        assert account is not None and account.position_size(BTC) == positions.get(name, 0)
        assert app.clearing.health(account).free_collateral == micro
    return app, d


def test_an_order_from_a_flat_position_needs_initial_margin_and_the_taker_fee_at_its_limit() -> (
    None
):
    """A buy of 10 lots at 51000 (a tick-lot above the oracle costs 1000 micro-units more
    than its value) needs the initial margin of 10 lots, the 10,000,000 it would lose
    against the oracle and the taker fee at 51000; a sell at 49000 alike. Exactly that is
    accepted, one micro-unit less refused."""
    buy_needs = _initial_margin(10) + 10 * 1000 * QUANTUM + _taker_fee(51000, 10)
    sell_needs = _initial_margin(10) + 10 * 1000 * QUANTUM + _taker_fee(49000, 10)
    assert (buy_needs, sell_needs) == (60_255_000, 60_245_000)
    balances = {
        "buyer": buy_needs, "poorer_buyer": buy_needs - 1,
        "seller": sell_needs, "poorer_seller": sell_needs - 1,
    }  # fmt: skip
    app, d = _with_positions(balances, {})
    result = d.block([
        d.tx("buyer", limit(BTC, BUY, 51000, 10)),
        d.tx("poorer_buyer", limit(BTC, BUY, 51000, 10)),
        d.tx("seller", limit(BTC, SELL, 49000, 10, client_id=1)),
        d.tx("poorer_seller", limit(BTC, SELL, 49000, 10, client_id=1)),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [
        Code.OK, Code.INSUFFICIENT_MARGIN, Code.OK, Code.INSUFFICIENT_MARGIN,
    ]  # fmt: skip
    # the buyer's bid and the seller's ask crossed: both filled in full
    assert app.account(address("buyer")).position_size(BTC) == 10  # type: ignore[union-attr]
    assert app.account(address("seller")).position_size(BTC) == -10  # type: ignore[union-attr]


def test_an_order_that_flips_the_position_needs_margin_for_the_new_side() -> None:
    """Alice (short 10) buys 20 at 50500: long 10 after it, she needs the initial margin of
    10 lots (what her short needs now), and as free collateral the 10,000,000 the 20 lots
    would lose against the oracle and the taker fee at 50500. Bob (long 10) sells 20 at
    49500 alike. Exactly that is accepted, one micro-unit
    less refused."""
    # her initial margin stays that of 10 lots: her free collateral pays the rest
    alice_needs = 20 * 500 * QUANTUM + _taker_fee(50500, 20)
    bob_needs = 20 * 500 * QUANTUM + _taker_fee(49500, 20)
    assert (alice_needs, bob_needs) == (10_505_000, 10_495_000)
    app, d = _with_positions(
        {"alice": alice_needs, "amy": alice_needs - 1, "bob": bob_needs, "ben": bob_needs - 1},
        {"alice": -10, "amy": -10, "bob": 10, "ben": 10},
    )
    result = d.block([
        d.tx("alice", limit(BTC, BUY, 50500, 20)),
        d.tx("amy", limit(BTC, BUY, 50500, 20)),
        d.tx("bob", limit(BTC, SELL, 49500, 20, GTC, client_id=1)),
        d.tx("ben", limit(BTC, SELL, 49500, 20, GTC, client_id=1)),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [
        Code.OK, Code.INSUFFICIENT_MARGIN, Code.OK, Code.INSUFFICIENT_MARGIN,
    ]  # fmt: skip


def test_an_order_that_only_reduces_or_closes_the_position_is_not_margin_checked() -> None:
    """Four traders hold 10 lots each with no free collateral (net = initial margin).
    Orders that reduce the position by 5 or close it, at the far end of the price band
    (55000 to buy, 45000 to sell: each would leave them below initial margin if it were
    checked), are placed."""
    app, d = _with_positions(
        {"alice": 0, "amy": 0, "bob": 0, "ben": 0},
        {"alice": -10, "amy": -10, "bob": 10, "ben": 10},
    )
    result = d.block([
        d.tx("alice", limit(BTC, BUY, 55000, 5)),
        d.tx("amy", limit(BTC, BUY, 55000, 10)),
        d.tx("bob", limit(BTC, SELL, 45000, 5)),
        d.tx("ben", limit(BTC, SELL, 45000, 10)),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [Code.OK] * 4
    # the asks crossed the bids (at 55000): alice bought 5 from bob, amy 10 from ben
    sizes = [app.account(address(n)).position_size(BTC) for n in ("alice", "amy", "bob", "ben")]  # type: ignore[union-attr]
    assert sizes == [-5, 0, 5, 0]


def test_a_flip_to_a_single_lot_and_a_close_of_a_single_lot_are_judged_like_any() -> None:
    """At one lot: alice (short 1) buying 2 at 50500 ends long 1 and must afford it, the
    2 lots' 1,000,000 below the oracle and the taker fee from her free collateral (one
    micro-unit less is refused); bob (long 1, no free collateral) selling his 1 lot at
    45000 only closes it and is placed whatever it would cost."""
    alice_needs = 2 * 500 * QUANTUM + _taker_fee(50500, 2)
    assert alice_needs == 1_050_500
    app, d = _with_positions(
        {"alice": alice_needs, "amy": alice_needs - 1, "bob": 0},
        {"alice": -1, "amy": -1, "bob": 1},
    )
    result = d.block([
        d.tx("alice", limit(BTC, BUY, 50500, 2)),
        d.tx("amy", limit(BTC, BUY, 50500, 2)),
        d.tx("bob", limit(BTC, SELL, 45000, 1)),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [Code.OK, Code.INSUFFICIENT_MARGIN, Code.OK]
