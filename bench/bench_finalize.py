"""finalize_block throughput: blocks of 5,000 pre-verified orders from 1,000 accounts over
2 markets (target >= 50,000 orders/s). Prints the median of 3 runs (``--runs``) and the
final app hash.

Each run builds a fresh chain, seeds both books with resting liquidity (one block of
5,000 post-only quotes), then finalizes 4 blocks whose 5,000 txs are a mix like a real
flow: 45% post-only quotes around the mid, 30% limit orders through the touch that fill
and rest, 15% IOC takers, 10% cancels (about half of all orders cross).

It drives the path the node drives: ``ExchangeApp.finalize_block(block, txs, validators)``
(the interface of :mod:`appchaind.abci`), the block a list of canonical tx bytes signed
with the traders' real keys. The node has verified the signatures already (mempool, or
the proposal's check, on its worker threads), so it hands the app every tx decoded and
the app does not verify them. Two paths: "bytes", the node decodes the block's txs
(it had verdicts but not the txs: a proposal it checked), timed with the decoding; and
"mempool", the txs sit decoded in the node's mempool (decoding not timed). Timed per
block: decoding (bytes path) + ``finalize_block`` (execution, end of block, app hash);
``commit`` is not timed.
``finalize_block`` pauses the cyclic garbage collector while the block executes (it
would otherwise trace the state's objects many times per block). The rate is orders per second of wall-clock time; the rate per second of this
process's CPU time is printed too, since on a shared machine the wall clock also counts
the neighbours. The first line says which build of the cores ran (compiled with mypyc or
pure Python: ``APPCHAIND_PURE_PYTHON=1`` measures the latter).

Options: ``--runs N`` runs per path (default 3); ``--blocks N`` measured blocks per run
(default 4); ``--path bytes`` or ``--path mempool`` runs only that path. Every account sends
about 5 txs per block, so with ``--blocks 24`` the later blocks run with accounts that hold
their full ``max_recent_nonces`` (100, the default) recent nonces, as on a chain that has
been up a while. ``--runs 1 --path ...`` is one chain through the blocks, for instruction
counts (the seeding block is counted too; on the mempool path it is decoded before
finalize_block, like the measured blocks)::

    valgrind --tool=callgrind --toggle-collect=CPyPy_app___ExchangeApp___finalize_block .venv/bin/python bench/bench_finalize.py --runs 1 --path mempool
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from hashlib import sha256
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appchaind import native
from appchaind.chain import codec  # noqa: E402
from appchaind.chain.crypto import PrivateKey, merkle_root  # noqa: E402
from appchaind.chain.types import Block, Header, Tx, evidence_hash, sign_tx  # noqa: E402
from appchaind.exchange import CancelOrder, ExchangeApp, PlaceOrder  # noqa: E402
from bench.figures import Figure, write_figures  # noqa: E402
from config.genesis import parse_genesis  # noqa: E402

ACCOUNTS = 1_000
ORDERS_PER_BLOCK = 5_000
TARGET_ORDERS_PER_S = 50_000.0
BLOCKS = 4
CHAIN_ID = "bench"
GENESIS_MS = 1_767_225_600_000
PRICES = (50_000, 3_000)


def _market(symbol: str, price: int) -> dict:
    return {
        "symbol": symbol, "tick_size": "1", "lot_size": "0.001", "initial_margin_ppm": 50_000,
        "maintenance_margin_ppm": 30_000, "maker_fee_ppm": -100, "taker_fee_ppm": 500,
        "liquidation_fee_ppm": 10_000, "funding_interval_blocks": 10,
        "max_funding_rate_ppm": 1_000, "impact_notional": "1000", "price_band_ppm": 100_000,
        "max_oracle_move_ppm": 50_000, "initial_oracle_price": str(price),
    }  # fmt: skip


def _setup():
    keys = [PrivateKey(sha256(b"bench%d" % i).digest()) for i in range(ACCOUNTS)]
    genesis = parse_genesis(
        {
            "chain_id": CHAIN_ID,
            "genesis_time": "2026-01-01T00:00:00Z",
            "validators": [{"public_key": keys[0].public_key.hex(), "power": 1}],
            "params": {"max_open_orders_per_account": 1000, "max_recent_nonces": 100},
            "markets": [_market("BTC-PERP", PRICES[0]), _market("ETH-PERP", PRICES[1])],
            "accounts": [{"address": k.address.hex(), "balance": "10000000"} for k in keys],
            "insurance_fund": "1000000",
        }
    )
    return keys, genesis


def _blocks(keys, rng: random.Random, count: int = BLOCKS) -> list[list[bytes]]:
    """Canonical signed tx bytes of a seeding block and of ``count`` measured blocks."""
    nonce = [GENESIS_MS] * len(keys)
    next_id = [1]
    open_ids: list[tuple[int, int, int]] = []  # (account, market, client id)

    def tx(i: int, height: int, body: object) -> bytes:
        nonce[i] += 1
        return codec.encode(sign_tx(keys[i], CHAIN_ID, nonce[i], height + 5, body))

    seeding = []
    for i in range(ORDERS_PER_BLOCK):
        account = i % len(keys)
        market = i % 2
        side = int(i % 4 < 2)
        offset = 1 + rng.randrange(200)
        price = PRICES[market] - offset if side else PRICES[market] + offset
        seeding.append(
            tx(
                account,
                1,
                PlaceOrder(
                    market, side, 0, 1, price, 1 + rng.randrange(20), 0, False, next_id[0], 0
                ),
            )
        )
        open_ids.append((account, market, next_id[0]))
        next_id[0] += 1
    blocks = [seeding]
    for height in range(2, count + 2):
        txs = []
        for _ in range(ORDERS_PER_BLOCK):
            account = rng.randrange(len(keys))
            market = rng.randrange(2)
            side = int(rng.random() < 0.5)
            roll = rng.random()
            if roll < 0.10 and open_ids:
                owner, m, oid = open_ids.pop(rng.randrange(len(open_ids)))
                txs.append(tx(owner, height, CancelOrder(m, 0, oid, True)))
                continue
            if roll < 0.55:  # quote away from the touch
                offset = 1 + rng.randrange(150)
                price = PRICES[market] - offset if side else PRICES[market] + offset
                body = PlaceOrder(
                    market, side, 0, 1, price, 1 + rng.randrange(20), 0, False, next_id[0], 0
                )
                open_ids.append((account, market, next_id[0]))
            elif roll < 0.85:  # limit order through the touch
                offset = rng.randrange(30)
                price = PRICES[market] + offset if side else PRICES[market] - offset
                body = PlaceOrder(
                    market, side, 0, 0, price, 1 + rng.randrange(10), 0, False, next_id[0], 0
                )
            else:  # IOC taker
                price = PRICES[market] + 100 if side else PRICES[market] - 100
                body = PlaceOrder(market, side, 0, 2, price, 1 + rng.randrange(10), 0, False, 0, 0)
            next_id[0] += 1
            txs.append(tx(account, height, body))
        blocks.append(txs)
    return blocks


def _block(height: int, txs: list[bytes], proposer: bytes) -> Block:
    header = Header(
        CHAIN_ID, height, GENESIS_MS + height * 1000, b"", b"", merkle_root(txs), b"\x00" * 32,
        b"\x00" * 32, b"", proposer, evidence_hash(()),
    )  # fmt: skip
    return Block(header, tuple(txs), (), None)


def run_once(
    blocks: list[list[bytes]], genesis, *, predecoded: bool = False
) -> tuple[float, float, int, bytes]:
    """One chain through every block. ``predecoded``: the node's usual path, where every tx
    of the block sits decoded and verified in its mempool (decoding is not timed)."""
    gc.collect()  # the previous run's chain is garbage now: not this run's work
    app = ExchangeApp(genesis)
    proposer = b"\x00" * 20
    seeding = _block(1, blocks[0], proposer)
    app.finalize_block(seeding, [codec.decode(Tx, raw) for raw in blocks[0]], None)
    app.commit()
    elapsed = 0.0
    cpu = 0.0
    fills = 0
    for height, txs in enumerate(blocks[1:], start=2):
        block = _block(height, txs, proposer)
        decoded = [codec.decode(Tx, raw) for raw in txs] if predecoded else None
        start, start_cpu = time.perf_counter(), time.process_time()
        if decoded is None:  # the node decodes the txs it has verdicts for
            given = [codec.decode(Tx, raw) for raw in txs]
        else:
            given = decoded
        result = app.finalize_block(block, given, None)
        elapsed += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        app.commit()
        fills += sum(1 for r in result.tx_results for e in r.events if e.kind == "fill")
        ok = sum(1 for r in result.tx_results if r.code == 0)
        if ok < ORDERS_PER_BLOCK * 9 // 10:
            from collections import Counter

            worst = Counter((r.code, r.log[:50]) for r in result.tx_results).most_common(4)
            raise SystemExit(f"only {ok} txs applied: {worst}")
    orders = (len(blocks) - 1) * ORDERS_PER_BLOCK
    return orders / elapsed, orders / cpu, fills, app.app_hash


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per path (default 3)")
    parser.add_argument(
        "--blocks", type=int, default=BLOCKS, help=f"measured blocks per run (default {BLOCKS})"
    )
    parser.add_argument(
        "--path", choices=("both", "bytes", "mempool"), default="both", help="which path to run"
    )
    parser.add_argument("--figures", help="write the figures to this file as JSON")
    options = parser.parse_args()
    count = options.runs
    print(f"cores: {native.status()[1]}")
    keys, genesis = _setup()
    blocks = _blocks(keys, random.Random(7), options.blocks)
    paths: list[tuple[str, bool]] = []
    if options.path != "mempool":
        paths.append(("bytes (decoded in the app)", False))
    if options.path != "bytes":
        paths.append(("mempool-decoded txs", True))
    figures: list[Figure] = []
    app_hashes: set[bytes] = set()
    for label, predecoded in paths:
        chosen = [run_once(blocks, genesis, predecoded=predecoded) for _ in range(count)]
        hashes = {app_hash for *_, app_hash in chosen}
        if len(hashes) != 1:
            raise SystemExit(
                "the runs disagree on the app hash: the state machine is not deterministic"
            )
        app_hashes |= hashes
        if len(app_hashes) != 1:
            raise SystemExit("pre-decoded txs gave another app hash")
        rates = [r for r, *_ in chosen]
        cpu_rates = [c for _, c, *_ in chosen]
        print(
            f"finalize_block, {label}: {statistics.median(rates):,.0f} orders/s median of {count} "
            f"({', '.join(f'{r:,.0f}' for r in rates)}); per CPU second "
            f"{statistics.median(cpu_rates):,.0f}; blocks of {ORDERS_PER_BLOCK} signed txs from "
            f"{ACCOUNTS} accounts over 2 markets, {chosen[0][2]} fills per run; "
            f"target >= {TARGET_ORDERS_PER_S:,.0f}"
        )
        figures.append(
            Figure(
                f"finalize_block: {label}", statistics.median(rates), "orders/s",
                TARGET_ORDERS_PER_S,
                note=f"median of {count}; {statistics.median(cpu_rates):,.0f} per CPU second",
            )
        )  # fmt: skip
    print(f"app hash after the last block: {app_hashes.pop().hex()}")
    write_figures(options.figures, figures)


if __name__ == "__main__":
    main()
