"""Recent trades and liquidations (appchaind.rpc.recent): what a commit keeps, the bounds
of the deques, and the views built on request (issue 18)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from appchaind.abci import FinalizeResult, TxResult
from appchaind.chain.events import Event
from appchaind.rpc.recent import RecentActivity
from config.genesis import MarketParams

MAKER, TAKER, OWNER = b"\x01" * 20, b"\x02" * 20, b"\x03" * 20


def market(market_id: int, symbol: str, tick: str, lot: str) -> MarketParams:
    return MarketParams(
        market_id, symbol, tick, lot, 1, 50_000, 30_000, 200, 500, 10_000, 60, 1_000, 10**9,
        50_000, 10_000, 650_000,
    )  # fmt: skip


MARKETS = [market(0, "BTC-PERP", "0.1", "0.0001"), market(1, "ETH-PERP", "0.01", "0.001")]


def fill(market_id: int, price: int, size: int, *, liquidation: bool = False) -> tuple[Any, ...]:
    """A taker buy's fill as the exchange records it on its hot path (a compact tuple)."""
    return ("fill", market_id, 7, MAKER, 8, TAKER, 1, price, size, 0, 5, 9, liquidation)


def liquidation(market_id: int, size: int) -> Event:
    return Event(
        "liquidation",
        {"account": OWNER, "market": market_id, "size": size, "bankruptcy_price": 600_000,
         "step": "book", "filled": size, "remaining": 0},
    )  # fmt: skip


def block(
    recent: RecentActivity, height: int, txs: list[list[Any]], events: Sequence[Any] = ()
) -> list[bytes]:
    hashes = [bytes([height % 256, i]) * 16 for i in range(len(txs))]
    results = [TxResult(0, "", list(tx)) for tx in txs]
    expanded = [Event(e[0], dict(zip(FILL_FIELDS, e[1:], strict=True))) if type(e) is tuple
                else e for e in events]  # fmt: skip
    recent.record(height, 1_000 * height, hashes, FinalizeResult(height, results, expanded, b""))
    return hashes


FILL_FIELDS = (
    "market", "maker_order_id", "maker", "taker_order_id", "taker", "taker_side", "price",
    "size", "maker_remaining", "maker_fee", "taker_fee", "liquidation",
)  # fmt: skip


def test_fills_and_liquidations_are_kept_raw_and_viewed_on_request() -> None:
    recent = RecentActivity(MARKETS)
    (h1, h2) = block(recent, 5, [[fill(0, 650_001, 25)], [fill(1, 320_000, 1_500)]])
    block(recent, 6, [], [fill(0, 649_000, 10, liquidation=True), liquidation(0, 10)])
    btc = recent.trades(0, 50)
    assert [t["height"] for t in btc] == [6, 5]  # newest first
    newest, oldest = btc
    assert oldest == {
        "kind": "fill", "market": "BTC-PERP", "maker_order_id": 7, "maker": MAKER.hex(),
        "taker_order_id": 8, "taker": TAKER.hex(), "taker_side": "buy", "price": "65000.1",
        "size": "0.0025", "maker_remaining": "0", "maker_fee": "0.000005",
        "taker_fee": "0.000009", "liquidation": False, "height": 5, "time_ms": 5_000,
        "tx_hash": h1.hex(),
    }  # fmt: skip
    # A liquidation's fill is a block event: no tx hash.
    assert newest["tx_hash"] is None and newest["liquidation"] is True
    (eth,) = recent.trades(1, 50)
    assert eth["market"] == "ETH-PERP" and eth["price"] == "3200" and eth["size"] == "1.5"
    assert eth["tx_hash"] == h2.hex()
    # Every market: by height, newest first.
    assert [(t["market"], t["height"]) for t in recent.trades(None, 50)] == [
        ("BTC-PERP", 6), ("ETH-PERP", 5), ("BTC-PERP", 5),
    ]  # fmt: skip
    assert len(recent.trades(None, 2)) == 2
    (liq,) = recent.liquidations(20)
    assert liq["kind"] == "liquidation" and liq["account"] == OWNER.hex()
    assert liq["market"] == "BTC-PERP" and liq["size"] == "0.001" and liq["step"] == "book"
    assert liq["bankruptcy_price"] == "60000" and liq["height"] == 6 and liq["tx_hash"] is None


def test_the_deques_are_bounded_and_keep_the_newest() -> None:
    recent = RecentActivity(MARKETS, trades_per_market=50, liquidations=20)
    for height in range(1, 31):  # 30 blocks of 4 fills in BTC, one liquidation each
        block(recent, height, [[fill(0, 650_000, height * 10 + i)] for i in range(4)],
              [liquidation(1, height)])  # fmt: skip
    trades = recent.trades(0, 50)
    assert len(trades) == 50
    sizes = [round(float(t["size"]) * 10_000) for t in trades]
    expected = [h * 10 + i for h in range(1, 31) for i in range(4)][-50:]
    assert sizes == expected[::-1]
    assert recent.trades(1, 50) == []
    liquidations = recent.liquidations(20)
    assert [e["height"] for e in liquidations] == list(range(30, 10, -1))
    assert [e["height"] for e in recent.liquidations(3)] == [30, 29, 28]
    assert recent.trades(0, 0) == [] and recent.liquidations(0) == []


def test_events_of_other_kinds_or_unknown_markets_are_not_kept() -> None:
    recent = RecentActivity(MARKETS)
    order = ("order", 0, 1, OWNER, 3, "resting", 10)
    block(recent, 2, [[order, fill(9, 1, 1)]], [Event("oracle", {"market": 0, "price": 1})])
    assert recent.trades(None, 50) == [] and recent.liquidations(20) == []


def test_a_block_of_more_fills_than_kept_keeps_its_last_ones_in_order() -> None:
    # Walked backwards with an early stop: the quiet market's early fills must still be
    # found, and the busy market keeps its newest 50, the block's own fill last.
    recent = RecentActivity(MARKETS)
    block(recent, 1, [[fill(0, 650_000, 1)]])
    txs = [[fill(1, 320_000, 1)], [fill(1, 320_000, 2)]]
    txs += [[fill(0, 650_000, 10 + i), fill(0, 650_000, 1000 + i)] for i in range(60)]
    hashes = block(recent, 2, txs, [fill(0, 649_000, 7, liquidation=True)])
    btc = recent.trades(0, 50)
    sizes = [round(float(t["size"]) * 10_000) for t in reversed(btc)]
    expected = [s for i in range(60) for s in (10 + i, 1000 + i)][-49:] + [7]
    assert sizes == expected
    assert btc[0]["tx_hash"] is None and btc[1]["tx_hash"] == hashes[-1].hex()
    assert [t["size"] for t in recent.trades(1, 50)] == ["0.002", "0.001"]
    assert [t["tx_hash"] for t in recent.trades(1, 50)] == [hashes[1].hex(), hashes[0].hex()]
