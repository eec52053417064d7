"""A liquidation cascade: a sharp oracle drop with many leveraged longs.

40 accounts each hold 100 lots long at 50000 with 600 quote (8.4x). The oracle drops to
44000 (below every bankruptcy price of 44025); a market maker bids 43500, below the
bankruptcy price, so every close through the book needs the insurance fund, which holds
only 300 quote. Per block at most 6 accounts are liquidated and at most 3000 quote of
notional per account. Checked after every block: conservation, Σ positions = 0, the caps;
and over the cascade: the fund is used first, deleveraging only once it is exhausted, in
book → insurance → deleveraging order for every account.
"""

from __future__ import annotations

from collections import defaultdict

from appchaind.exchange import ExchangeApp
from tests.exchange.support import BUY, GTC, SELL, Driver, address, genesis, limit

LONGS = [f"long{i}" for i in range(40)]
CAP_ACCOUNTS = 6
CAP_NOTIONAL = 3000 * 10**6
Q = 1000


def test_cascade_spreads_over_blocks_and_uses_fund_before_adl():
    balances = {name: "600" for name in LONGS}
    balances.update({"whale": "10000000", "maker": "10000000"})
    app = ExchangeApp(
        genesis(
            balances,
            params={
                "max_liquidations_per_block": CAP_ACCOUNTS,
                "max_liquidation_notional_per_account": "3000",
            },
            insurance_fund="300",
        )
    )
    driver = Driver(app)
    driver.block([driver.tx("whale", limit(0, SELL, 50000, 4000, GTC))])
    result = driver.block([driver.tx(name, limit(0, BUY, 50000, 100, 2)) for name in LONGS])
    assert all(r.code == 0 for r in result.tx_results)
    assert app.clearing.accounts[address("whale")].position_size(0) == -4000

    # The crash: the maker bids below every bankruptcy price in the same block.
    blocks = [driver.block([driver.tx("maker", limit(0, BUY, 43500, 1000, GTC))], [44000, 3000])]
    for _ in range(30):
        if not any(e.kind == "liquidation" for e in blocks[-1].events) and len(blocks) > 1:
            break
        blocks.append(driver.block([], [44000, 3000]))
        assert app.clearing.conservation_gap() == 0
        assert sum(a.position_size(0) for a in app.clearing.accounts.values()) == 0

    order: list[str] = []
    fund_when_first_adl = None
    for block in blocks:
        accounts_this_block = []
        requested = defaultdict(int)
        steps = defaultdict(list)
        for event in block.events:
            attrs = event.attributes
            if event.kind == "liquidation":
                if attrs["account"] not in accounts_this_block:
                    accounts_this_block.append(attrs["account"])
                if attrs["step"] == "book":
                    requested[attrs["account"]] += attrs["size"] * 44000 * Q
                steps[attrs["account"]].append(attrs["step"])
            if event.kind in ("insurance_cover", "adl"):
                order.append(event.kind)
        assert len(accounts_this_block) <= CAP_ACCOUNTS
        assert all(n <= CAP_NOTIONAL for n in requested.values())
        rank = {"book": 0, "insurance": 1, "adl": 2}
        for sequence in steps.values():
            assert [rank[s] for s in sequence] == sorted(rank[s] for s in sequence)
        if fund_when_first_adl is None and "adl" in order:
            fund_when_first_adl = app.clearing.insurance_fund

    assert "insurance_cover" in order and "adl" in order
    assert order.index("insurance_cover") < order.index("adl")
    # Nothing is left to liquidate; every long is closed; the cascade took several blocks.
    assert all(app.clearing.accounts[address(n)].position_size(0) == 0 for n in LONGS)
    assert len(blocks) >= len(LONGS) // CAP_ACCOUNTS
    # Deleveraging started only once the fund could not pay for one more lot's shortfall
    # (525 ticks × 1000 micro = 0.525 quote per lot at 43500 against bankruptcy 44025).
    per_lot_shortfall = (44025 - 43500) * Q
    first_adl_block = next(b for b in blocks if any(e.kind == "adl" for e in b.events))
    covers_before = [
        e for b in blocks[: blocks.index(first_adl_block) + 1] for e in b.events
        if e.kind == "insurance_cover"
    ]  # fmt: skip
    assert (
        sum(e.attributes["amount"] for e in covers_before) > 300 * 10**6 - 100 * per_lot_shortfall
    )
