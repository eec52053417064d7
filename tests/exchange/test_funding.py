"""Funding settled lazily: between a funding tick and the next time an account is touched,
what it owes already counts against its net collateral (so margin checks and the
liquidator see it), and when it is settled it pays exactly that.

Found unguarded by ``make mutate`` (docs/mutation-report.md): the tests settled funding of
positions opened at index 0 only, where the index an account entered at does not show.
Markets of tests/exchange/support.py: funding every 10 blocks, capped at 1000 ppm.
"""

from __future__ import annotations

from appchaind.exchange import CancelAll, ExchangeApp
from tests.exchange.support import BUY, IOC, SELL, Driver, address, genesis, limit

BTC = 0
RICH = "1000000"


def test_unsettled_funding_counts_in_net_collateral_and_settles_to_the_same() -> None:
    """The maker's bid above the oracle makes longs pay the capped rate, 1000 ppm of
    50000 ticks x 1000 micro-units = 50,000 micro-units per lot per interval. Alice buys
    10 lots after the first tick (her position starts at that index); after the second
    tick her net collateral is already 500,000 lower, before she is touched; a tx of hers
    then settles it: she pays 500,000 and her net collateral does not move."""
    app = ExchangeApp(genesis({"alice": RICH, "mo": RICH}))
    d = Driver(app)
    d.block([
        d.tx("mo", limit(BTC, BUY, 50400, 30)),
        d.tx("mo", limit(BTC, SELL, 50600, 40, client_id=1)),
    ])  # fmt: skip
    while app.height < 11:
        d.block([])
    d.block([d.tx("alice", limit(BTC, BUY, 50600, 10, IOC))])
    alice = app.account(address("alice"))
    assert alice is not None and alice.position_size(BTC) == 10
    before = app.clearing.health(alice).net
    balance = alice.balance
    while app.height < 20:
        d.block([])
    unsettled = app.clearing.health(alice).net
    assert alice.balance == balance  # not touched: nothing settled yet
    assert unsettled == before - 500_000
    result = d.block([d.tx("alice", CancelAll(BTC, False))])
    payments = [e.attributes for e in result.tx_results[0].events if e.kind == "funding_payment"]
    assert payments == [{"account": address("alice"), "amount": 500_000}]
    assert alice.balance == balance - 500_000
    assert app.clearing.health(alice).net == unsettled
