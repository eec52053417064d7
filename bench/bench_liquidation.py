"""End-of-block liquidation check with 100,000 accounts holding positions, when a price
move makes nobody liquidatable (target <= 10 ms). Prints the median of 3.

Setup: 100,000 accounts, half long and half short in two markets, every one indexed
(bands computed at the opening prices). Each measured block moves both oracle prices by
0.5% (alternately down and up) and runs the application's end-of-block liquidation pass:
re-evaluate changed accounts (none) and touch only the accounts whose band the move
crossed (none), without visiting the others.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from hashlib import sha256
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appchaind.exchange import ExchangeApp  # noqa: E402
from bench.figures import Figure, write_figures  # noqa: E402
from config.genesis import parse_genesis  # noqa: E402
from margin import Position  # noqa: E402

ACCOUNTS = 100_000
PRICES = (50_000, 3_000)
TARGET_MS = 10.0


def _market(symbol: str, price: int) -> dict:
    return {
        "symbol": symbol, "tick_size": "1", "lot_size": "0.001", "initial_margin_ppm": 100_000,
        "maintenance_margin_ppm": 50_000, "maker_fee_ppm": 0, "taker_fee_ppm": 500,
        "liquidation_fee_ppm": 10_000, "funding_interval_blocks": 1_000_000,
        "max_funding_rate_ppm": 1_000, "impact_notional": "1000", "price_band_ppm": 100_000,
        "max_oracle_move_ppm": 50_000, "initial_oracle_price": str(price),
    }  # fmt: skip


def _app(accounts: int) -> ExchangeApp:
    addresses = [sha256(b"acct%d" % i).digest()[:20] for i in range(accounts)]
    genesis = parse_genesis(
        {
            "chain_id": "bench",
            "genesis_time": "2026-01-01T00:00:00Z",
            "validators": [{"public_key": "00" * 32, "power": 1}],
            "markets": [_market("BTC-PERP", PRICES[0]), _market("ETH-PERP", PRICES[1])],
            "accounts": [{"address": a.hex(), "balance": "2000"} for a in addresses],
            "insurance_fund": "1000000",
        }
    )
    app = ExchangeApp(genesis)
    app.commit()
    clearing = app.clearing
    # Positions as trades would leave them (paired long/short so Σ positions = 0):
    # each account about 2.5x leveraged, far from maintenance margin.
    for i, address in enumerate(addresses):
        account = clearing.accounts[address]
        sign = 1 if i % 2 else -1
        for market_id, lots in ((0, 60), (1, 500)):
            size = sign * lots
            cost = size * PRICES[market_id] * 1000
            account.positions[market_id] = Position(size, 0, cost)
            account.balance -= cost
            clearing.holders[market_id][address] = None
        clearing.mark_unindexed(account)
    app.liquidator.run(app, app.height, b"", [])  # index every account at the opening prices
    return app


def run_once(app: ExchangeApp, step: int) -> float:
    direction = -1 if step % 2 == 0 else 1
    for market in app.markets:
        market.oracle_price = PRICES[market.market_id] * (1000 + 5 * direction) // 1000
    app.clearing.prices_changed()
    events: list = []
    start = time.perf_counter()
    app.liquidator.run(app, app.height, sha256(bytes([step])).digest(), events)
    elapsed = time.perf_counter() - start
    assert not events, "nobody should be liquidatable"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=ACCOUNTS, help="accounts with positions")
    parser.add_argument("--figures", help="write the figures to this file as JSON")
    options = parser.parse_args()
    accounts = options.accounts
    app = _app(accounts)
    assert len(app.liquidator.index) == accounts
    times = [run_once(app, step) for step in range(3)]
    print(
        f"liquidation check: {statistics.median(times) * 1000:.3f} ms median of 3 "
        f"({', '.join(f'{t * 1000:.3f}' for t in times)}) with {accounts:,} accounts holding "
        f"positions after a 0.5% move that liquidates nobody; target <= {TARGET_MS:g} ms"
    )
    write_figures(
        options.figures,
        [
            Figure(
                "liquidation check, nobody liquidatable", statistics.median(times) * 1000, "ms",
                TARGET_MS, better="lower",
                note=f"{accounts:,} accounts with positions, 0.5% move; median of 3",
            )
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
