"""Funding is settled before a tx of an account with positions runs
(appchaind/exchange/app.py, ``_deliver``): the first tx of such an account after a funding
tick starts with its ``funding_payment`` (account, micro-units paid), whatever the tx;
the account's next tx pays nothing more, and an account without positions pays nothing.

BTC-PERP of tests/exchange/support.py: funding every 10 blocks, rate clamped to 1000 ppm;
the maker's quotes above the oracle make longs pay the full rate.
"""

from __future__ import annotations

from appchaind.exchange import ExchangeApp, Transfer, Withdraw
from tests.exchange.support import BUY, IOC, SELL, Driver, address, genesis, limit

BTC = 0
RICH = "1000000"


def test_funding_is_settled_before_the_first_tx_of_an_account_with_positions() -> None:
    app = ExchangeApp(genesis({"alice": RICH, "bob": RICH, "maker": RICH}))
    d = Driver(app)
    d.block([
        d.tx("maker", limit(BTC, BUY, 50400, 30)),
        d.tx("maker", limit(BTC, SELL, 50600, 40, client_id=1)),
    ])  # fmt: skip
    d.block([d.tx("alice", limit(BTC, BUY, 50600, 10, IOC))])
    while d.height <= 10:  # the funding tick is at the end of block 10
        d.block([])
    alice = app.account(address("alice"))
    assert alice is not None and alice.position_size(BTC) == 10
    balance = alice.balance
    result = d.block([
        d.tx("bob", Withdraw(1)),
        d.tx("alice", Transfer(address("bob"), 1)),
        d.tx("alice", Withdraw(1)),
    ])  # fmt: skip
    kinds = [[e.kind for e in r.events] for r in result.tx_results]
    assert kinds == [["withdraw"], ["funding_payment", "transfer"], ["withdraw"]]
    # 1000 ppm of 10 lots at the oracle (50000 ticks x 1000 micro-units)
    paid = 1000 * 10 * 50000 * 1000 // 1_000_000
    assert result.tx_results[1].events[0].attributes == {
        "account": address("alice"),
        "amount": paid,
    }
    assert alice.balance == balance - paid - 2
