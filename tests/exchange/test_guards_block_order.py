"""The in-block ordering rule (appchaind/exchange/app.py, ``_execution_class``): a block's
txs run as cancels (CancelOrder, CancelAll) first, then post-only *limit* orders, placed
or replacing an order, then everything else (a post-only conditional order too), in
block order inside each class, whatever order the builder chose. Order ids are taken in
execution order, which shows it.
"""

from __future__ import annotations

from appchaind.exchange import CancelAll, ExchangeApp, ReplaceOrder
from appchaind.exchange.txs import OrderType
from tests.exchange.support import (
    BUY,
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


def test_cancels_then_post_only_limit_orders_and_replacements_then_the_rest() -> None:
    """The builder's order: a taker (Dan), a post-only stop-limit (Carol), Bob's
    replacement of his bid by a post-only bid, a GTC ask (Erin), Alice's cancel-all.
    Alice's ask is gone before Dan's buy runs (he finds only Erin's ask, placed after
    him: nothing fills); Bob's new bid takes the first new id, then Dan, Carol, Erin."""
    names = ("alice", "bob", "carol", "dan", "erin")
    app = ExchangeApp(genesis(dict.fromkeys(names, RICH)))
    d = Driver(app)
    placed = d.block([
        d.tx("alice", limit(BTC, SELL, 50000, 5, client_id=1)),
        d.tx("bob", limit(BTC, BUY, 48000, 5, client_id=2)),
    ])  # fmt: skip
    bob_bid = placed.tx_results[1].events[0].attributes["order_id"]
    txs = [
        d.tx("dan", limit(BTC, BUY, 50000, 5, IOC)),
        d.tx("carol", conditional(BTC, SELL, OrderType.STOP_LIMIT, 40000, 1, 51000, tif=POST_ONLY)),
        d.tx("bob", ReplaceOrder(bob_bid, 0, False, limit(BTC, BUY, 49000, 5, POST_ONLY))),
        d.tx("erin", limit(BTC, SELL, 50000, 5)),
        d.tx("alice", CancelAll(BTC, True)),
    ]
    result = d.block(txs)
    assert [r.code for r in result.tx_results] == [0] * 5
    first = bob_bid + 1
    assert [
        [(e.attributes["order_id"], e.attributes["status"]) for e in r.events if e.kind == "order"]
        for r in result.tx_results
    ] == [
        [(first + 1, "cancelled")],  # Dan's IOC: nothing left to take
        [(first + 2, "conditional")],
        [(bob_bid, "cancelled"), (first, "resting")],
        [(first + 3, "resting")],
        [(placed.tx_results[0].events[0].attributes["order_id"], "cancelled")],
    ]
    assert app.account(address("dan")).position_size(BTC) == 0  # type: ignore[union-attr]
