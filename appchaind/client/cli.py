"""The trading commands of the CLI: ``tx``, ``query``, ``watch`` and ``status``.

Each talks to one node's RPC port (``--node HOST:PORT``, default 127.0.0.1:26601) through
:mod:`appchaind.client.library`; prints human-readable tables by default and JSON with
``--json``. Decimal prices, sizes and amounts are converted to ticks, lots and
micro-units exactly; a value off the tick or lot is refused with the nearest valid
values. A tx whose result code is not 0 prints its result and exits with status 1.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeAlias

import trio

from appchaind.chain.crypto import PrivateKey
from appchaind.client.library import (
    ORDER_TYPES,
    SIDES,
    TIME_IN_FORCE,
    Client,
    TxResult,
    open_client,
)

__all__ = ["add_trading_commands", "TxFailed"]

DEFAULT_NODE = "127.0.0.1:26601"
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class TxFailed(Exception):
    """A tx was refused or failed (its result was already printed)."""


def _run(args: argparse.Namespace, work: Callable[[Client], Awaitable[None]]) -> None:
    async def main() -> None:
        async with open_client(args.node) as client:
            await work(client)

    trio.run(main)


def _key(args: argparse.Namespace) -> PrivateKey:
    if not getattr(args, "key", None):
        raise argparse.ArgumentTypeError("this command needs --key FILE (the signing key)")
    return PrivateKey.load(Path(args.key))


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=None, separators=(",", ":")), flush=True)


def _table(rows: list[list[Any]], header: list[str]) -> None:
    cells = [header] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def _report_tx(args: argparse.Namespace, result: TxResult) -> None:
    if args.json:
        _print_json(result.to_json())
    else:
        state = "ok" if result.ok else f"FAILED (code {result.code})"
        where = f"committed at height {result.height}" if result.height else "accepted, pending"
        print(f"tx {result.tx_hash}: {state}, {where if result.ok else result.log}")
        if result.order_id is not None and result.ok:
            statuses = [e["status"] for e in result.events if e.get("kind") == "order"]
            print(f"  order id {result.order_id}: {', '.join(statuses) or 'placed'}")
        if result.fills:
            _table(
                [[f["market"], f["taker_side"], f["price"], f["size"], f["maker_order_id"],
                  f["taker_order_id"], f["taker_fee"]] for f in result.fills],
                ["MARKET", "TAKER SIDE", "PRICE", "SIZE", "MAKER ORDER", "TAKER ORDER", "TAKER FEE"],
            )  # fmt: skip
    if not result.ok:
        raise TxFailed(result.log)


# ---------------------------------------------------------------------------- tx


def _order_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "price": args.price, "order_type": args.type, "trigger": args.trigger, "tif": args.tif,
        "reduce_only": args.reduce_only, "good_til_block": args.good_til_block,
    }  # fmt: skip


def cmd_order_place(args: argparse.Namespace) -> None:
    key = _key(args)

    async def work(c: Client) -> None:
        result = await c.place_order(
            key, args.market, args.side, args.size, wait=not args.no_wait,
            client_id=args.client_id, **_order_options(args),
        )  # fmt: skip
        _report_tx(args, result)

    _run(args, work)


def cmd_order_cancel(args: argparse.Namespace) -> None:
    key = _key(args)

    async def work(c: Client) -> None:
        result = await c.cancel_order(
            key, args.market, order_id=args.order_id, client_id=args.client_id,
            wait=not args.no_wait,
        )  # fmt: skip
        _report_tx(args, result)

    _run(args, work)


def cmd_order_cancel_all(args: argparse.Namespace) -> None:
    key = _key(args)

    async def work(c: Client) -> None:
        _report_tx(args, await c.cancel_all(key, args.market, wait=not args.no_wait))

    _run(args, work)


def cmd_order_replace(args: argparse.Namespace) -> None:
    key = _key(args)

    async def work(c: Client) -> None:
        result = await c.replace_order(
            key, args.market, args.side, args.size, order_id=args.order_id,
            client_id=args.client_id, wait=not args.no_wait, **_order_options(args),
        )  # fmt: skip
        _report_tx(args, result)

    _run(args, work)


def cmd_transfer(args: argparse.Namespace) -> None:
    key = _key(args)

    async def work(c: Client) -> None:
        _report_tx(args, await c.transfer(key, args.to, args.amount, wait=not args.no_wait))

    _run(args, work)


def cmd_withdraw(args: argparse.Namespace) -> None:
    key = _key(args)

    async def work(c: Client) -> None:
        _report_tx(args, await c.withdraw(key, args.amount, wait=not args.no_wait))

    _run(args, work)


def cmd_faucet(args: argparse.Namespace) -> None:
    key = _key(args)

    async def work(c: Client) -> None:
        _report_tx(args, await c.faucet(key, args.amount, wait=not args.no_wait))

    _run(args, work)


def cmd_builder(args: argparse.Namespace) -> None:
    key, wait = _key(args), not args.no_wait

    async def work(c: Client) -> None:
        if args.builder_command == "register":
            result = await c.register_builder(key, args.name, args.bond, wait=wait)
        elif args.builder_command == "bond":
            result = await c.bond_builder(key, args.amount, wait=wait)
        else:
            result = await c.unbond_builder(key, args.amount, wait=wait)
        _report_tx(args, result)

    _run(args, work)


# ---------------------------------------------------------------------------- query


def _address_arg(args: argparse.Namespace) -> str:
    if args.address and args.key:
        raise argparse.ArgumentTypeError("give an ADDRESS or --key FILE, not both")
    if args.key:
        return PrivateKey.load(Path(args.key)).address.hex()
    if not args.address:
        raise argparse.ArgumentTypeError("give an ADDRESS or --key FILE")
    return str(args.address)


def _print_account(doc: dict[str, Any]) -> None:
    print(f"account {doc['address']} at height {doc['height']}")
    for name in ("balance", "net_collateral", "free_collateral", "initial_margin",
                 "maintenance_margin", "margin_ratio"):  # fmt: skip
        print(f"  {name.replace('_', ' '):19} {doc[name]}")
    if doc["positions"]:
        print("positions:")
        _table(
            [[p["market"], p["side"], p["size"], p["entry_price"], p["oracle_price"],
              p["unrealised_pnl"]] for p in doc["positions"]],
            ["MARKET", "SIDE", "SIZE", "ENTRY", "ORACLE", "UNREALISED PNL"],
        )  # fmt: skip
    else:
        print("positions: none")
    if doc["open_orders"]:
        print("open orders:")
        _table(
            [[o["order_id"], o["market"], o["type"], o["side"], o["price"], o["size"],
              o.get("trigger_price"), o["time_in_force"], o["client_id"]]
             for o in doc["open_orders"]],
            ["ORDER", "MARKET", "TYPE", "SIDE", "PRICE", "SIZE", "TRIGGER", "TIF", "CLIENT ID"],
        )  # fmt: skip
    else:
        print("open orders: none")


def cmd_query_account(args: argparse.Namespace) -> None:
    address = _address_arg(args)

    async def work(c: Client) -> None:
        doc = await c.account(address)
        _print_json(doc) if args.json else _print_account(doc)

    _run(args, work)


def _print_book(doc: dict[str, Any]) -> None:
    print(f"{doc['market']} at height {doc['height']} (seq {doc['seq']})")
    asks = list(reversed(doc["asks"]))
    _table(
        [["ask", p, s] for p, s in asks] + [["bid", p, s] for p, s in doc["bids"]],
        ["SIDE", "PRICE", "SIZE"],
    )


def cmd_query_book(args: argparse.Namespace) -> None:
    async def work(c: Client) -> None:
        doc = await c.book(args.market, args.depth)
        _print_json(doc) if args.json else _print_book(doc)

    _run(args, work)


def cmd_query_markets(args: argparse.Namespace) -> None:
    async def work(c: Client) -> None:
        markets = await c.markets()
        if args.json:
            _print_json(markets)
            return
        _table(
            [[m["market"], m["oracle_price"], m["best_bid"], m["best_ask"], m["tick_size"],
              m["lot_size"], m["open_interest"], m["funding_rate"]] for m in markets],
            ["MARKET", "ORACLE", "BID", "ASK", "TICK", "LOT", "OPEN INTEREST", "FUNDING"],
        )  # fmt: skip

    _run(args, work)


def cmd_query_builders(args: argparse.Namespace) -> None:
    async def work(c: Client) -> None:
        doc = await c.builders()
        if args.json:
            _print_json(doc)
            return
        print(f"builders at height {doc['height']}: {len(doc['builders'])}")
        if doc["builders"]:
            _table(
                [[b["address"], b["name"], b["bond"],
                  sum(Decimal(u["amount"]) for u in b["unbonding"]), b["bids_won"], b["paid"]]
                 for b in doc["builders"]],
                ["ADDRESS", "NAME", "BOND", "UNBONDING", "BIDS WON", "PAID"],
            )  # fmt: skip

    _run(args, work)


def cmd_query_tx(args: argparse.Namespace) -> None:
    async def work(c: Client) -> None:
        result = await c.tx(args.hash)
        if args.json:
            _print_json(result.to_json())
        else:
            _report_tx(argparse.Namespace(json=False), result)

    _run(args, work)


def cmd_query_block(args: argparse.Namespace) -> None:
    async def work(c: Client) -> None:
        doc = await c.block(args.height)
        if args.json:
            _print_json(doc)
            return
        h = doc["header"]
        print(f"block {doc['height']} {doc['hash']}")
        print(f"  time_ms {h['time_ms']}  proposer {h['proposer']}  app_hash {h['app_hash']}")
        print(f"  txs {len(doc['txs'])}, then forced (inclusion lists) {len(doc['forced_txs'])}")
        for key in ("tx", "forced_tx"):
            for tx_hash, result in zip(doc[f"{key}_hashes"], doc[f"{key}_results"], strict=True):
                code = "?" if result is None else result["code"]
                print(f"    {tx_hash}  code {code}  {'' if result is None else result['log']}")

    _run(args, work)


def cmd_status(args: argparse.Namespace) -> None:
    async def work(c: Client) -> None:
        doc = await c.status()
        if args.json:
            _print_json(doc)
            return
        for key in ("chain_id", "node_id", "moniker", "height", "block_hash", "app_hash",
                    "catching_up", "peers"):  # fmt: skip
            print(f"{key:12} {doc[key]}")

    _run(args, work)


# ---------------------------------------------------------------------------- watch


def _watch(args: argparse.Namespace, stream: str, params: dict[str, Any],
           show: Callable[[dict[str, Any]], None]) -> None:  # fmt: skip
    async def work(c: Client) -> None:
        sub = await c.subscribe(stream, **params)
        seq = sub.snapshot["seq"] if sub.snapshot else None
        if sub.snapshot is not None:
            _print_json({"snapshot": sub.snapshot}) if args.json else _print_book(sub.snapshot)
        seen = 0
        async for item in sub:
            if seq is not None:
                if item["seq"] != seq + 1:  # a gap: start again from a fresh snapshot
                    snapshot = await c.book(params["market"], 100)
                    seq = snapshot["seq"]
                    _print_json({"resync": snapshot}) if args.json else _print_book(snapshot)
                    continue
                seq = item["seq"]
            _print_json(item) if args.json else show(item)
            seen += 1
            if args.count and seen >= args.count:
                return

    try:
        _run(args, work)
    except KeyboardInterrupt:
        pass


def cmd_watch_blocks(args: argparse.Namespace) -> None:
    def show(b: dict[str, Any]) -> None:
        print(f"height {b['height']}  txs {b['txs']:>5}  events {b['events']:>5}  "
              f"{b['hash'][:16]}  proposer {b['proposer'][:12]}", flush=True)  # fmt: skip

    _watch(args, "blocks", {}, show)


def cmd_watch_trades(args: argparse.Namespace) -> None:
    def show(item: dict[str, Any]) -> None:
        for f in item["fills"]:
            print(f"height {item['height']}  {f['market']}  {f['taker_side']:4}  "
                  f"{f['size']} @ {f['price']}{'  (liquidation)' if f['liquidation'] else ''}",
                  flush=True)  # fmt: skip

    _watch(args, "trades", {"market": args.market}, show)


def cmd_watch_book(args: argparse.Namespace) -> None:
    def show(item: dict[str, Any]) -> None:
        changes = [f"bid {p}={s}" for p, s in item["bids"]] + [
            f"ask {p}={s}" for p, s in item["asks"]
        ]
        print(f"seq {item['seq']} height {item['height']}: {', '.join(changes)}", flush=True)

    _watch(args, "book", {"market": args.market}, show)


def cmd_watch_account(args: argparse.Namespace) -> None:
    address = _address_arg(args)

    def show(item: dict[str, Any]) -> None:
        for e in item["events"]:
            details = ", ".join(
                f"{k}={v}" for k, v in e.items() if k not in ("kind", "tx_hash") and v is not None
            )
            print(f"height {item['height']}  {e['kind']:16} {details}", flush=True)

    _watch(args, "account", {"address": address}, show)


# ---------------------------------------------------------------------------- parser


def _common(p: argparse.ArgumentParser, *, key: bool) -> None:
    p.add_argument(
        "--node", default=DEFAULT_NODE, metavar="HOST:PORT",
        help=f"the node's RPC address (default {DEFAULT_NODE})",
    )  # fmt: skip
    if key:
        p.add_argument("--key", metavar="FILE", help="the key file that signs (e.g. a localnet "
                       "account: localnet/accounts/trader0.json)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def _tx_common(p: argparse.ArgumentParser) -> None:
    _common(p, key=True)
    p.add_argument("--no-wait", action="store_true",
                   help="return the mempool's verdict instead of waiting for the commit")  # fmt: skip


def _order_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--market", required=True, help="market symbol, e.g. BTC-PERP")
    p.add_argument("--side", required=True, choices=list(SIDES), help="buy or sell")
    p.add_argument("--size", required=True, help="size in base units, a multiple of the lot")
    p.add_argument("--price", help="limit price, a multiple of the tick (limit kinds only)")
    p.add_argument("--type", default="limit", choices=list(ORDER_TYPES), help="order type")
    p.add_argument("--trigger", help="trigger price (stop and take-profit kinds)")
    p.add_argument("--tif", default="gtc", choices=list(TIME_IN_FORCE), help="time in force")
    p.add_argument("--reduce-only", action="store_true", help="only ever reduce the position")
    p.add_argument("--good-til-block", type=int, default=0, metavar="N",
                   help="last height the order may rest (default: no expiry)")  # fmt: skip


def add_trading_commands(sub: SubParsers) -> tuple[SubParsers, SubParsers]:
    """Adds ``tx``, ``query``, ``watch`` and ``status`` to the CLI's subcommands; returns
    the subcommands of ``tx`` and ``query`` (the staking commands join them)."""
    p = sub.add_parser("tx", help="sign and submit a transaction",
                       description="Sign a transaction with --key and submit it to --node; "
                       "by default wait for the commit and print the result with its fills.")  # fmt: skip
    tx_sub = p.add_subparsers(dest="tx_command", metavar="SUBCOMMAND")
    tx_sub.required = True
    order = tx_sub.add_parser("order", help="place, cancel or replace orders",
                              description="Orders: place, cancel, cancel-all, replace.")  # fmt: skip
    order_sub = order.add_subparsers(dest="order_command", metavar="SUBCOMMAND")
    order_sub.required = True

    o = order_sub.add_parser("place", help="place an order", description="Place an order. "
                             "Example: appchaind tx order place --market BTC-PERP --side buy "
                             "--size 0.5 --price 65000 --key trader0.json")  # fmt: skip
    _order_args(o)
    o.add_argument("--client-id", type=int, metavar="ID", help="your own id for the order, "
                   "unique among your open orders in the market (default: made from the clock)")  # fmt: skip
    _tx_common(o)
    o.set_defaults(func=cmd_order_place)

    o = order_sub.add_parser("cancel", help="cancel one open order",
                             description="Cancel one open order by --order-id or --client-id.")  # fmt: skip
    o.add_argument("--market", required=True, help="market symbol, e.g. BTC-PERP")
    ident = o.add_mutually_exclusive_group(required=True)
    ident.add_argument("--order-id", type=int, help="the order id the chain assigned")
    ident.add_argument("--client-id", type=int, help="your own id of the order")
    _tx_common(o)
    o.set_defaults(func=cmd_order_cancel)

    o = order_sub.add_parser("cancel-all", help="cancel every open order",
                             description="Cancel every open order in --market, or everywhere.")  # fmt: skip
    o.add_argument("--market", help="only this market (default: every market)")
    _tx_common(o)
    o.set_defaults(func=cmd_order_cancel_all)

    o = order_sub.add_parser("replace", help="replace an open order with a new one",
                             description="Replace an open order (by --order-id or --client-id) "
                             "with the order the other options describe; shrinking a resting "
                             "limit order at the same price keeps its time priority. If the "
                             "new order fails its checks (price band, margin...) the old one "
                             "stays as it was.")  # fmt: skip
    _order_args(o)
    ident = o.add_mutually_exclusive_group(required=True)
    ident.add_argument("--order-id", type=int, help="the order to replace")
    ident.add_argument("--client-id", type=int, help="your own id of the order to replace")
    _tx_common(o)
    o.set_defaults(func=cmd_order_replace)

    t = tx_sub.add_parser("transfer", help="move free collateral to another account",
                          description="Move --amount (quote units) of free collateral to --to.")  # fmt: skip
    t.add_argument("--to", required=True, metavar="ADDRESS", help="recipient address (hex)")
    t.add_argument("--amount", required=True, help="amount in quote units, e.g. 100.5")
    _tx_common(t)
    t.set_defaults(func=cmd_transfer)

    t = tx_sub.add_parser("withdraw", help="withdraw free collateral off the chain",
                          description="Send --amount (quote units) of free collateral off the chain.")  # fmt: skip
    t.add_argument("--amount", required=True, help="amount in quote units")
    _tx_common(t)
    t.set_defaults(func=cmd_withdraw)

    t = tx_sub.add_parser("faucet", help="mint test collateral (faucet chains only)",
                          description="Mint --amount (quote units) to your account, on chains "
                          "whose genesis enables the faucet (localnets do).")  # fmt: skip
    t.add_argument("--amount", required=True, help="amount in quote units")
    _tx_common(t)
    t.set_defaults(func=cmd_faucet)

    b = tx_sub.add_parser("builder", help="register as a block builder, bond, unbond",
                          description="Block builders bid for the right to build blocks; a "
                          "bid is paid from the builder's bond, so it can never exceed it.")  # fmt: skip
    b_sub = b.add_subparsers(dest="builder_command", metavar="SUBCOMMAND")
    b_sub.required = True
    t = b_sub.add_parser("register", help="become a builder, with a first bond",
                         description="Register your account as a block builder named --name, "
                         "bonding --bond (quote units, at least the chain's min_builder_bond) "
                         "out of your free collateral. Your key signs your bids.")  # fmt: skip
    t.add_argument("--name", required=True, help="a name for your builder (1-64 ASCII chars)")
    t.add_argument("--bond", required=True, help="first bond in quote units, e.g. 1000")
    _tx_common(t)
    t.set_defaults(func=cmd_builder)
    t = b_sub.add_parser("bond", help="add free collateral to your bond",
                         description="Move --amount (quote units) of free collateral into your "
                         "builder bond.")  # fmt: skip
    t.add_argument("--amount", required=True, help="amount in quote units")
    _tx_common(t)
    t.set_defaults(func=cmd_builder)
    t = b_sub.add_parser("unbond", help="take collateral out of your bond (after a delay)",
                         description="Take --amount (quote units) out of your builder bond: it "
                         "backs no bid from now on and returns to your balance after the "
                         "chain's builder_unbonding_blocks.")  # fmt: skip
    t.add_argument("--amount", required=True, help="amount in quote units")
    _tx_common(t)
    t.set_defaults(func=cmd_builder)

    p = sub.add_parser("query", help="read the chain's state",
                       description="Read accounts, books, markets, txs and blocks from --node.")  # fmt: skip
    q_sub = p.add_subparsers(dest="query_command", metavar="SUBCOMMAND")
    q_sub.required = True
    q = q_sub.add_parser("account", help="balance, positions and open orders",
                         description="An account's balance, positions (entry price, unrealised "
                         "PnL), open orders, free collateral and margin ratio.")  # fmt: skip
    q.add_argument("address", nargs="?", help="the account address (hex)")
    _common(q, key=True)
    q.set_defaults(func=cmd_query_account)
    q = q_sub.add_parser("book", help="L2 order book depth", description="A market's L2 depth.")
    q.add_argument("market", help="market symbol, e.g. BTC-PERP")
    q.add_argument("--depth", type=int, default=10, help="levels per side (default 10)")
    _common(q, key=False)
    q.set_defaults(func=cmd_query_book)
    q = q_sub.add_parser("markets", help="markets with oracle price, funding, open interest",
                         description="Every market: parameters, oracle price, best bid/ask, "
                         "funding rate and open interest.")  # fmt: skip
    _common(q, key=False)
    q.set_defaults(func=cmd_query_markets)
    q = q_sub.add_parser("builders", help="block builders: bonds, unbonding, bids won",
                         description="Every registered block builder: bond, amounts unbonding "
                         "and their release heights, winning bids and what they paid.")  # fmt: skip
    _common(q, key=False)
    q.set_defaults(func=cmd_query_builders)
    q = q_sub.add_parser("tx", help="a committed tx with its fills",
                         description="A committed tx: height, result code, log, fills, events.")  # fmt: skip
    q.add_argument("hash", help="the tx hash (hex)")
    _common(q, key=False)
    q.set_defaults(func=cmd_query_tx)
    q = q_sub.add_parser("block", help="a block and its tx results",
                         description="The block at HEIGHT (default: the latest).")  # fmt: skip
    q.add_argument("height", nargs="?", type=int, help="block height (default: latest)")
    _common(q, key=False)
    q.set_defaults(func=cmd_query_block)

    p = sub.add_parser("watch", help="stream trades, book, account events or blocks",
                       description="Print a stream from --node until Ctrl-C (or --count items).")  # fmt: skip
    w_sub = p.add_subparsers(dest="watch_command", metavar="SUBCOMMAND")
    w_sub.required = True
    for name, func, what in (
        ("trades", cmd_watch_trades, "the fills of each block in MARKET"),
        ("book", cmd_watch_book, "book deltas of MARKET (resyncs on a sequence gap)"),
    ):
        w = w_sub.add_parser(name, help=what, description=f"Stream {what}.")
        w.add_argument("market", help="market symbol, e.g. BTC-PERP")
        w.add_argument("--count", type=int, default=0, help="stop after this many items")
        _common(w, key=False)
        w.set_defaults(func=func)
    w = w_sub.add_parser("account", help="an account's fills, orders, liquidations, funding",
                         description="Stream an account's events: fills, order status changes, "
                         "liquidations, funding payments, transfers.")  # fmt: skip
    w.add_argument("address", nargs="?", help="the account address (hex)")
    w.add_argument("--count", type=int, default=0, help="stop after this many items")
    _common(w, key=True)
    w.set_defaults(func=cmd_watch_account)
    w = w_sub.add_parser("blocks", help="new blocks", description="Stream new blocks.")
    w.add_argument("--count", type=int, default=0, help="stop after this many items")
    _common(w, key=False)
    w.set_defaults(func=cmd_watch_blocks)

    p = sub.add_parser("status", help="a node's status (height, hashes, peers)",
                       description="The status of --node: chain id, height, hashes, peers.")  # fmt: skip
    _common(p, key=False)
    p.set_defaults(func=cmd_status)
    return tx_sub, q_sub
