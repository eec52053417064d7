"""The maker check (margin/makers.py) as the book applies it to resting orders hit by a
taker: a reduce-only maker never grows or flips its position, counting the fills the same
taker already made against the owner's other orders, and only those: the exchange
clears them before each taker (orders.py ``submit``).

tests/exchange/test_rules_reduce_only_makers.py covers a long owner's reduce-only asks,
where the position's size and its magnitude are the same number; the short side below is
where they differ. Market BTC-PERP of tests/exchange/support.py (50000 ticks)."""

from __future__ import annotations

from appchaind.exchange import ExchangeApp
from tests.exchange.support import BUY, GTC, IOC, SELL, Driver, address, genesis, limit

BTC = 0
RICH = "1000000"


def _position(app: ExchangeApp, name: str) -> int:
    account = app.account(address(name))
    return 0 if account is None else account.position_size(BTC)


def test_reduce_only_bids_of_a_short_fill_exactly_the_short() -> None:
    """Bob is short 3 with two reduce-only bids of 2. Dave sells 4 through both in one
    order: the first fills 2, the second only the 1 lot still short (its other lot is
    removed): Bob ends flat, Dave short 3."""
    app = ExchangeApp(genesis({"alice": RICH, "bob": RICH, "dave": RICH}))
    d = Driver(app)
    d.block([
        d.tx("alice", limit(BTC, BUY, 50000, 3)),
        d.tx("bob", limit(BTC, SELL, 50000, 3, IOC)),
    ])  # fmt: skip
    d.block([
        d.tx("bob", limit(BTC, BUY, 49900, 2, GTC, reduce_only=True, client_id=1)),
        d.tx("bob", limit(BTC, BUY, 49800, 2, GTC, reduce_only=True, client_id=2)),
    ])  # fmt: skip
    assert _position(app, "bob") == -3
    result = d.block([d.tx("dave", limit(BTC, SELL, 49800, 4, IOC))])
    assert result.tx_results[0].code == 0
    fills = [
        (e.attributes["maker"], e.attributes["price"], e.attributes["size"])
        for e in result.tx_results[0].events
        if e.kind == "fill"
    ]
    assert fills == [(address("bob"), 49900, 2), (address("bob"), 49800, 1)]
    assert (_position(app, "bob"), _position(app, "dave")) == (0, -3)
    assert app.books[BTC].order_ids_of(address("bob")) == []


def test_the_fills_of_an_earlier_taker_do_not_count_again_against_a_maker() -> None:
    """Bob (12 quote) rests two asks of 1 lot at 50000: short 2 he needs 10 quote of
    initial margin, short 3 he could not afford. Alice's taker fills his first ask, then,
    in the next block, carol's fills his second: his margin is checked against the short
    of 1 he holds, not against alice's fill counted a second time."""
    app = ExchangeApp(genesis({"bob": "12", "alice": RICH, "carol": RICH}))
    d = Driver(app)
    d.block([
        d.tx("bob", limit(BTC, SELL, 50000, 1, GTC, client_id=1)),
        d.tx("bob", limit(BTC, SELL, 50000, 1, GTC, client_id=2)),
    ])  # fmt: skip
    d.block([d.tx("alice", limit(BTC, BUY, 50000, 1, IOC))])
    d.block([d.tx("carol", limit(BTC, BUY, 50000, 1, IOC))])
    assert [_position(app, n) for n in ("bob", "alice", "carol")] == [-2, 1, 1]
