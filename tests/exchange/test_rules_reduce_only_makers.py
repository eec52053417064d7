"""Reduce-only maker cases tests/exchange/test_rules.py does not reach (issue 19): a
maker whose position is already on the order's side (margin/makers.py: the reducing
check), and two reduce-only makers of one owner hit by one taker (the earlier fills
against that taker count: makers.py ``held += owed[0]``)."""

from __future__ import annotations

from appchaind.exchange import ExchangeApp
from tests.exchange.support import BUY, GTC, IOC, SELL, Driver, address, genesis, limit

BTC = 0
RICH = "1000000"


def _position(app: ExchangeApp, name: str) -> int:
    account = app.account(address(name))
    return 0 if account is None else account.position_size(BTC)


def _maker_fills(result, index: int) -> list[tuple[bytes, int]]:
    return [
        (e.attributes["maker"], e.attributes["size"])
        for e in result.tx_results[index].events
        if e.kind == "fill"
    ]


def test_a_reduce_only_maker_on_its_positions_side_does_not_fill() -> None:
    """Bob holds +5 with a reduce-only ask of 5 resting. In one block he sells 7 elsewhere
    (now -2: the end-of-block upkeep has not cancelled the ask yet), then Dave buys at the
    ask: it must not fill (selling would grow Bob's short)."""
    app = ExchangeApp(genesis({"alice": RICH, "bob": RICH, "carol": RICH, "dave": RICH}))
    d = Driver(app)
    d.block([
        d.tx("alice", limit(BTC, SELL, 50000, 5)),
        d.tx("bob", limit(BTC, BUY, 50000, 5, IOC)),
    ])  # fmt: skip
    d.block([
        d.tx("bob", limit(BTC, SELL, 50100, 5, GTC, reduce_only=True)),
        d.tx("carol", limit(BTC, BUY, 49900, 7)),
    ])  # fmt: skip
    assert _position(app, "bob") == 5
    result = d.block([
        d.tx("bob", limit(BTC, SELL, 49900, 7, IOC)),
        d.tx("dave", limit(BTC, BUY, 50100, 8, IOC)),
    ])  # fmt: skip
    assert _position(app, "bob") == -2
    assert address("bob") not in [m for m, _ in _maker_fills(result, 1)]
    assert _position(app, "dave") == 0


def test_two_reduce_only_makers_of_one_owner_fill_at_most_the_position() -> None:
    """Bob holds +2 with two reduce-only asks of 2 (each within his position). Dave buys 4
    through both in one order: only the first fills; Bob ends flat, not short."""
    app = ExchangeApp(genesis({"alice": RICH, "bob": RICH, "dave": RICH}))
    d = Driver(app)
    d.block([
        d.tx("alice", limit(BTC, SELL, 50000, 2)),
        d.tx("bob", limit(BTC, BUY, 50000, 2, IOC)),
    ])  # fmt: skip
    d.block([
        d.tx("bob", limit(BTC, SELL, 50100, 2, GTC, reduce_only=True, client_id=1)),
        d.tx("bob", limit(BTC, SELL, 50200, 2, GTC, reduce_only=True, client_id=2)),
    ])  # fmt: skip
    assert _position(app, "bob") == 2
    assert len(app.books[BTC].order_ids_of(address("bob"))) == 2
    result = d.block([d.tx("dave", limit(BTC, BUY, 50200, 4, IOC))])
    assert _maker_fills(result, 0) == [(address("bob"), 2)]
    assert (_position(app, "bob"), _position(app, "dave")) == (0, 2)
