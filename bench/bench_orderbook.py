"""Order-book benchmark: memory of 1,000,000 resting orders, and add / cancel / match rates.

Run by ``make bench`` (bench/run.py), never by the tests:

    PYTHONPATH=. python bench/bench_orderbook.py [--orders 1000000]

Budget (issue 3): 1,000,000 resting orders in at most 1 GB of process RSS. The orders
come from 1,000 accounts, spread over 20,000 price levels on each side, with client ids
and (for one in ten) a good-til-block, so every index of the book is populated. Rates are
operations per second of process CPU time through :meth:`OrderBook.place` and
:meth:`OrderBook.cancel`, the entries the application uses.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import Figure, write_figures  # noqa: E402
from orderbook import OrderBook, Outcome, Side, TimeInForce  # noqa: E402

MID = 1_000_000  # ticks
SPREAD = 20_000  # ticks either side of the mid
ACCOUNTS = [i.to_bytes(20, "big") for i in range(1, 1001)]
RSS_BUDGET_BYTES = 1 << 30


def rss_bytes() -> int:
    """Current resident set size of this process, from /proc/self/status."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def fill_book(book: OrderBook, orders: int, seed: int) -> float:
    """Rest ``orders`` non-crossing GTC orders; returns the CPU seconds spent in the book
    (orders are generated in untimed chunks of 10,000 to keep the generator out of both
    the timing and the RSS)."""
    rnd = random.Random(seed)
    place = book.place
    gtc = int(TimeInForce.GTC)
    seconds = 0.0
    for chunk_start in range(1, orders + 1, 10_000):
        chunk = []
        for order_id in range(chunk_start, min(chunk_start + 10_000, orders + 1)):
            is_buy = rnd.random() < 0.5
            offset = rnd.randint(1, SPREAD)
            chunk.append(
                (
                    order_id,
                    ACCOUNTS[order_id % 1000],
                    is_buy,
                    MID - offset if is_buy else MID + offset,
                    rnd.randint(1, 100),
                    0 if order_id % 10 else 1_000 + order_id % 500,
                )
            )
        started = time.process_time()
        for order_id, owner, is_buy, price, size, good_til in chunk:
            place(order_id, owner, is_buy, price, size, gtc, 0, order_id, good_til)
        seconds += time.process_time() - started
    assert len(book) == orders
    return seconds


def cancel_some(book: OrderBook, orders: int, count: int, seed: int) -> float:
    """Cancel ``count`` distinct random orders; returns CPU seconds."""
    victims = random.Random(seed).sample(range(1, orders + 1), count)
    cancel = book.cancel
    started = time.process_time()
    for order_id in victims:
        cancel(order_id)
    return time.process_time() - started


def take_liquidity(book: OrderBook, takers: int, first_id: int) -> tuple[float, int]:
    """Send ``takers`` IOC orders, alternately buying and selling through the best three
    levels; returns (CPU seconds, fills)."""
    place = book.place
    ioc = int(TimeInForce.IOC)
    taker_account = bytes(20)
    fills = 0
    started = time.process_time()
    for n in range(takers):
        if n & 1:
            best = book.best_ask()
            assert best is not None
            outcome = place(first_id + n, taker_account, 1, best + 2, 150, ioc)
        else:
            best = book.best_bid()
            assert best is not None
            outcome = place(first_id + n, taker_account, 0, best - 2, 150, ioc)
        if outcome is not Outcome.RESTING:
            fills += len(book.fills)
            book.fills.clear()
    return time.process_time() - started, fills


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--cancels", type=int, default=200_000)
    parser.add_argument("--takers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--figures", help="write the figures to this file as JSON")
    args = parser.parse_args()

    gc.collect()
    baseline = rss_bytes()
    book = OrderBook()
    add_seconds = fill_book(book, args.orders, args.seed)
    gc.collect()
    loaded = rss_bytes()
    stats = book.statistics()
    verdict = "within" if loaded <= RSS_BUDGET_BYTES else "OVER"
    print(
        f"resting orders: {stats.resting_orders:,} on {stats.bid_levels:,} bid and "
        f"{stats.ask_levels:,} ask levels"
    )
    print(
        f"RSS: {loaded / 2**20:,.0f} MiB total ({verdict} the 1 GiB budget), "
        f"{(loaded - baseline) / 2**20:,.0f} MiB for the book, "
        f"{(loaded - baseline) / args.orders:,.0f} bytes per resting order"
    )
    print(f"add (resting GTC): {args.orders / add_seconds:,.0f} orders/s")
    cancel_seconds = cancel_some(book, args.orders, args.cancels, args.seed + 1)
    print(f"cancel (random id): {args.cancels / cancel_seconds:,.0f} cancels/s")
    match_seconds, fills = take_liquidity(book, args.takers, args.orders + 1)
    print(
        f"match (IOC through 3 levels): {args.takers / match_seconds:,.0f} takers/s, "
        f"{fills / match_seconds:,.0f} fills/s ({fills / args.takers:.1f} fills per taker)"
    )
    print(f"bid/ask volume after: {book.volume(Side.BUY):,} / {book.volume(Side.SELL):,} lots")
    write_figures(
        args.figures,
        [
            Figure(
                f"order book: RSS with {args.orders:,} resting orders", loaded / 2**20, "MiB",
                RSS_BUDGET_BYTES / 2**20, better="lower",
                note=f"{(loaded - baseline) / args.orders:,.0f} bytes per resting order",
            ),
            Figure("order book: add (resting GTC)", args.orders / add_seconds, "orders/s"),
            Figure("order book: cancel (random id)", args.cancels / cancel_seconds, "cancels/s"),
            Figure(
                "order book: match (IOC through 3 levels)", args.takers / match_seconds,
                "takers/s", note=f"{fills / args.takers:.1f} fills per taker",
            ),
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
