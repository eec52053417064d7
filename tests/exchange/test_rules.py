"""Rules of the exchange that a one-line change could break without the other tests noticing
(issue 19), each as a fixed scenario with exact integer amounts: reduce-only orders never
grow or flip a position, money leaves an account only from free collateral above the
*initial* requirement, fees go to the right side and round against the trader, and the
liquidation boundary is strict.

Markets of tests/exchange/support.py: BTC-PERP at 50000 ticks, one tick-lot is 1000
micro-units, initial margin 10%, maintenance 5%, maker fee -100 ppm (a rebate), taker fee
500 ppm, price band 10%.
"""

from __future__ import annotations

from typing import Any

from appchaind.abci import FinalizeResult
from appchaind.chain.codes import Code
from appchaind.exchange import ExchangeApp, Transfer, Withdraw
from margin import Health
from tests.exchange.support import (
    BUY,
    GTC,
    IOC,
    SELL,
    Driver,
    address,
    genesis,
    limit,
)

BTC = 0
ETH_PRICE = 3000
RICH = "1000000"  # quote units: 10**12 micro-units


def _position(app: ExchangeApp, name: str) -> int:
    account = app.account(address(name))
    return 0 if account is None else account.position_size(BTC)


def _fills(result: FinalizeResult, index: int) -> list[dict[str, Any]]:
    """The fill events of the block's tx ``index``."""
    return [e.attributes for e in result.tx_results[index].events if e.kind == "fill"]


# ---------------------------------------------------------------------------- rule 7: reduce-only


def test_a_reduce_only_taker_never_grows_or_flips_its_position() -> None:
    """Bob holds +5 and sends a reduce-only sell of 8 into bids for 10: 5 fill, he is flat,
    nothing of his rests (GTC: the order was cut to his position before it reached the book)."""
    app = ExchangeApp(genesis({"alice": RICH, "bob": RICH, "carol": RICH}))
    d = Driver(app)
    d.block([
        d.tx("alice", limit(BTC, SELL, 50000, 5)),
        d.tx("bob", limit(BTC, BUY, 50000, 5, IOC)),
        d.tx("carol", limit(BTC, BUY, 50000, 10)),
    ])  # fmt: skip
    assert (_position(app, "bob"), _position(app, "carol")) == (5, 0)
    result = d.block([d.tx("bob", limit(BTC, SELL, 50000, 8, GTC, reduce_only=True))])
    assert result.tx_results[0].code == Code.OK
    assert sum(f["size"] for f in _fills(result, 0)) == 5
    assert (_position(app, "bob"), _position(app, "carol")) == (0, 5)
    assert app.books[BTC].order_ids_of(address("bob")) == []
    # Flat now: another reduce-only sell has nothing to reduce.
    again = d.block([d.tx("bob", limit(BTC, SELL, 50000, 8, IOC, reduce_only=True))])
    assert again.tx_results[0].code == Code.REDUCE_ONLY_REJECTED
    assert _position(app, "bob") == 0


def test_a_reduce_only_taker_on_its_positions_side_is_rejected() -> None:
    """Bob holds +5 and sends a reduce-only buy of 3 into Carol's ask: buying would grow his
    long, so the order is rejected and nothing fills."""
    app = ExchangeApp(genesis({"alice": RICH, "bob": RICH, "carol": RICH}))
    d = Driver(app)
    d.block([
        d.tx("alice", limit(BTC, SELL, 50000, 5)),
        d.tx("bob", limit(BTC, BUY, 50000, 5, IOC)),
        d.tx("carol", limit(BTC, SELL, 50000, 10)),
    ])  # fmt: skip
    result = d.block([d.tx("bob", limit(BTC, BUY, 50000, 3, IOC, reduce_only=True))])
    assert result.tx_results[0].code == Code.REDUCE_ONLY_REJECTED
    assert _fills(result, 0) == []
    assert (_position(app, "bob"), _position(app, "carol")) == (5, 0)


def test_a_reduce_only_maker_never_grows_or_flips_its_position() -> None:
    """Bob holds +5 with a reduce-only ask of 5 resting. In one block he sells 3 elsewhere
    (holding +2; the end-of-block resize has not run yet), then Dave buys 8 at the ask: the
    maker check lets only 2 of Bob's lots fill, and Bob ends flat."""
    app = ExchangeApp(genesis({"alice": RICH, "bob": RICH, "carol": RICH, "dave": RICH}))
    d = Driver(app)
    d.block([
        d.tx("alice", limit(BTC, SELL, 50000, 5)),
        d.tx("bob", limit(BTC, BUY, 50000, 5, IOC)),
    ])  # fmt: skip
    d.block([
        d.tx("bob", limit(BTC, SELL, 50100, 5, GTC, reduce_only=True)),
        d.tx("carol", limit(BTC, BUY, 49900, 3)),
    ])  # fmt: skip
    assert _position(app, "bob") == 5
    result = d.block([
        d.tx("bob", limit(BTC, SELL, 49900, 3, IOC)),
        d.tx("dave", limit(BTC, BUY, 50100, 8, IOC)),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [Code.OK, Code.OK]
    assert [(f["maker"], f["size"]) for f in _fills(result, 1)] == [(address("bob"), 2)]
    assert [_position(app, n) for n in ("bob", "carol", "dave")] == [0, 3, 2]
    assert app.books[BTC].order_ids_of(address("bob")) == []


# ---------------------------------------------------------------------------- rule 8: free collateral


def test_withdraw_and_transfer_need_free_collateral_above_the_initial_requirement() -> None:
    """Alice (600 quote) buys 100 lots at 50000 (notional 5,000 quote, taker fee 2.5).
    At 48000 her net collateral, 397.5, is between the maintenance requirement (240) and
    the initial one (480): she may not withdraw or transfer a single micro-unit. At 50000
    her free collateral is 97.5: exactly that may leave, one micro-unit more may not."""
    app = ExchangeApp(genesis({"alice": "600", "bob": RICH, "carol": RICH}))
    d = Driver(app)
    d.block([
        d.tx("bob", limit(BTC, SELL, 50000, 100)),
        d.tx("alice", limit(BTC, BUY, 50000, 100, IOC)),
    ])  # fmt: skip
    alice = app.account(address("alice"))
    assert alice is not None and alice.balance == 600_000_000 - 5_000_000_000 - 2_500_000
    carol_balance = app.account(address("carol")).balance  # type: ignore[union-attr]

    result = d.block(
        [d.tx("alice", Withdraw(1)), d.tx("alice", Transfer(address("carol"), 1))],
        prices=[48000, ETH_PRICE],
    )
    assert app.clearing.health(alice) == Health(397_500_000, 480_000_000, 240_000_000)
    assert [r.code for r in result.tx_results] == [Code.INSUFFICIENT_FREE_COLLATERAL] * 2
    assert alice.balance == -4_402_500_000
    assert app.account(address("carol")).balance == carol_balance  # type: ignore[union-attr]

    d.block([], prices=[50000, ETH_PRICE])
    assert app.clearing.health(alice).free_collateral == 97_500_000
    result = d.block([
        d.tx("alice", Withdraw(97_500_001)),
        d.tx("alice", Transfer(address("carol"), 97_500_001)),
        d.tx("alice", Withdraw(97_500_000)),
        d.tx("alice", Transfer(address("carol"), 1)),
    ], prices=[50000, ETH_PRICE])  # fmt: skip
    assert [r.code for r in result.tx_results] == [
        Code.INSUFFICIENT_FREE_COLLATERAL,
        Code.INSUFFICIENT_FREE_COLLATERAL,
        Code.OK,
        Code.INSUFFICIENT_FREE_COLLATERAL,
    ]
    assert app.clearing.health(alice).free_collateral == 0
    assert app.clearing.withdrawn == 97_500_000


# ---------------------------------------------------------------------------- rule 9: fees


def test_one_fill_with_a_maker_rebate_pays_each_side_exactly() -> None:
    """Alice rests an ask of 7 lots at 50001, Bob takes it: notional 350,007,000 micro-units.
    The taker fee, 500 ppm = 175,003.5, is rounded up to 175,004; the maker rebate, 100 ppm =
    35,000.7, is rounded down to 35,000. The maker receives the notional plus the rebate, the
    taker pays the notional plus the fee, the fee pool keeps the difference."""
    app = ExchangeApp(genesis({"alice": RICH, "bob": RICH}))
    d = Driver(app)
    d.block([d.tx("alice", limit(BTC, SELL, 50001, 7))])
    maker, taker = app.account(address("alice")), app.account(address("bob"))
    assert maker is not None and taker is not None
    before = (maker.balance, taker.balance, app.clearing.fee_pool, app.clearing.insurance_fund)
    result = d.block([d.tx("bob", limit(BTC, BUY, 50001, 7, IOC))])
    (fill,) = _fills(result, 0)
    assert (fill["maker"], fill["taker"], fill["price"], fill["size"]) == (
        address("alice"), address("bob"), 50001, 7,
    )  # fmt: skip
    assert (fill["maker_fee"], fill["taker_fee"]) == (-35_000, 175_004)
    assert maker.balance - before[0] == 350_007_000 + 35_000
    assert taker.balance - before[1] == -(350_007_000 + 175_004)
    assert app.clearing.fee_pool - before[2] == 175_004 - 35_000
    assert app.clearing.insurance_fund == before[3]
    assert (maker.position_size(BTC), taker.position_size(BTC)) == (-7, 7)


# ---------------------------------------------------------------------------- rule 10: liquidation


def test_liquidation_boundary_exactly_at_maintenance_is_safe_one_below_is_not() -> None:
    """Alice (502.54 quote) and Carol (one micro-unit less) each buy 100 lots at 50000; Alice
    also rests an ask of 1 at 55000. The oracle falls to 47368: Alice's net collateral is
    502,540,000 - 2,500,000 (fee) - 100 × 2632 × 1000 = 236,840,000, exactly her maintenance
    requirement 5% × 100 × 47368 × 1000: she is not liquidated (her order is not even
    cancelled). Carol is one micro-unit below it: she is closed against Dave's bid."""
    balances = {"alice": "502.54", "carol": "502.539999", "bob": RICH, "dave": RICH}
    app = ExchangeApp(genesis(balances))
    d = Driver(app)
    d.block([
        d.tx("bob", limit(BTC, SELL, 50000, 200)),
        d.tx("dave", limit(BTC, BUY, 47000, 200)),
        d.tx("alice", limit(BTC, BUY, 50000, 100, IOC)),
        d.tx("carol", limit(BTC, BUY, 50000, 100, IOC)),
        d.tx("alice", limit(BTC, SELL, 55000, 1)),
    ])  # fmt: skip
    assert (_position(app, "alice"), _position(app, "carol")) == (100, 100)
    (ask,) = app.books[BTC].order_ids_of(address("alice"))
    result = d.block([], prices=[47368, ETH_PRICE])
    alice = app.account(address("alice"))
    assert alice is not None
    assert app.clearing.health(alice) == Health(236_840_000, 473_680_000, 236_840_000)
    liquidated = {e.attributes["account"] for e in result.events if e.kind == "liquidation"}
    assert liquidated == {address("carol")}
    assert (_position(app, "alice"), _position(app, "carol")) == (100, 0)
    assert app.books[BTC].order_ids_of(address("alice")) == [ask]


def test_health_is_liquidatable_strictly_below_maintenance() -> None:
    assert not Health(net=236_840_000, initial=473_680_000, maintenance=236_840_000).liquidatable
    assert Health(net=236_839_999, initial=473_680_000, maintenance=236_840_000).liquidatable
