"""The ``appchaind`` command line. Every command and subcommand has ``--help``.

Errors the user can fix (a bad config key, an existing key file, a busy home)
print one line to stderr starting with ``error:`` and exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from appchaind import __version__
from appchaind.chain.crypto import KeyFileError, PrivateKey
from appchaind.chain.units import UnitError, to_units
from appchaind.client.cli import TxFailed, add_trading_commands
from appchaind.client.staking_cli import add_staking_commands
from appchaind.consensus.signer import DoubleSignRefused
from appchaind.errors import StartupError
from appchaind.home import HomePaths, init_home, utc_now_rfc3339
from appchaind.localnet.homes import DEFAULT_BASE_PORT, init_localnet, load_localnet
from appchaind.rpc.protocol import RpcError
from appchaind.store import StoreError
from config.genesis import load_genesis
from config.node_config import ConfigError, load_config

DEFAULT_KEYRING = Path.home() / ".appchaind" / "keys"


class UsageError(Exception):
    """A mistake in how a command was called; the message says how to fix it."""


# ---------------------------------------------------------------------------- commands


def cmd_version(args: argparse.Namespace) -> None:
    from appchaind import native

    print(f"appchaind {__version__}")
    print(f"cores: {native.status()[1]}")


def cmd_init(args: argparse.Namespace) -> None:
    home = Path(args.home)
    node_key, validator_key = init_home(
        home,
        moniker=args.moniker,
        chain_id=args.chain_id,
        genesis_time=utc_now_rfc3339(),
        force=args.force,
    )
    print(f"initialised node home {home}")
    print(f"  node id:           {node_key.address.hex()}")
    print(f"  validator address: {validator_key.address.hex()}")
    print(f"  config:            {HomePaths(home).config}")
    print(f"  genesis:           {HomePaths(home).genesis} (chain id {args.chain_id})")


def cmd_config_check(args: argparse.Namespace) -> None:
    home = Path(args.home)
    config = load_config(home)
    genesis = load_genesis(HomePaths(home).genesis)
    node_key = PrivateKey.load(HomePaths(home).node_key)
    print(f"{home}: config.toml and genesis.json are valid")
    print(f"  moniker:      {config.node.moniker}")
    print(f"  node id:      {node_key.address.hex()}")
    print(f"  chain id:     {genesis.chain_id}")
    print(f"  genesis hash: {genesis.hash().hex()}")
    print(f"  validators:   {len(genesis.validators)}, markets: "
          + ", ".join(m.symbol for m in genesis.markets))  # fmt: skip


def _keyring(args: argparse.Namespace) -> Path:
    return Path(args.keyring_dir)


def cmd_keys_add(args: argparse.Namespace) -> None:
    name = args.name
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"key name {name!r} must be a plain file name like 'alice'")
    path = _keyring(args) / f"{name}.json"
    key = PrivateKey.generate()
    key.save(path, overwrite=args.force)
    if args.json:
        print(json.dumps({"name": name, "address": key.address.hex(), "file": str(path)}))
    else:
        print(f"created key {name}: address {key.address.hex()} in {path} (mode 0600)")


def cmd_keys_show(args: argparse.Namespace) -> None:
    if args.key and args.name:
        raise UsageError("give a key NAME or --key FILE, not both")
    if args.key:
        path = Path(args.key)
    elif args.name:
        path = _keyring(args) / f"{args.name}.json"
    else:
        raise UsageError("give a key NAME (from `appchaind keys list`) or --key FILE")
    key = PrivateKey.load(path)
    if args.json:
        print(json.dumps({"address": key.address.hex(), "public_key": key.public_key.hex()}))
    else:
        print(key.address.hex())


def cmd_keys_list(args: argparse.Namespace) -> None:
    directory = _keyring(args)
    rows = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            rows.append((path.stem, PrivateKey.load(path).address.hex()))
        except KeyFileError as exc:
            rows.append((path.stem, f"unreadable: {exc}"))
    if args.json:
        print(json.dumps([{"name": n, "address": a} for n, a in rows]))
        return
    if not rows:
        print(f"no keys in {directory}; create one with `appchaind keys add NAME`")
        return
    width = max(len(n) for n, _ in rows)
    print(f"{'NAME'.ljust(width)}  ADDRESS")
    for name, address in rows:
        print(f"{name.ljust(width)}  {address}")


def cmd_localnet_init(args: argparse.Namespace) -> None:
    try:
        nodes = init_localnet(
            Path(args.dir), args.validators, base_port=args.base_port,
            chain_id=args.chain_id, force=args.force,
        )  # fmt: skip
    except (ValueError, FileExistsError) as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote a {len(nodes)}-validator localnet (chain id {args.chain_id}) to {args.dir}")
    _print_localnet(Path(args.dir))


def cmd_start(args: argparse.Namespace) -> None:
    from appchaind.node.run import start_node

    start_node(Path(args.home))


def cmd_localnet_start(args: argparse.Namespace) -> None:
    from appchaind.localnet.live import start_localnet

    try:
        code = start_localnet(Path(args.dir), duration_s=args.seconds, traders=args.traders)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if code:
        raise SystemExit(code)


def cmd_builder(args: argparse.Namespace) -> None:
    import trio

    from appchaind.builder import Builder
    from appchaind.rpc.views import QUOTE_UNIT

    try:
        builder = Builder(
            Path(args.home), PrivateKey.load(Path(args.key)), node=args.node,
            value_per_tx=to_units(args.value_per_tx, QUOTE_UNIT, "--value-per-tx"),
            max_txs=args.max_txs, fee_share_ppm=round(args.fee_share * 10_000),
        )  # fmt: skip
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(builder.run)
            started = trio.current_time()
            while args.seconds is None or trio.current_time() - started < args.seconds:
                await trio.sleep(2)
                s = builder.stats
                print(
                    f"builder: height {s.last_height}, bids sent {s.bids_sent} for {s.heights} "
                    f"heights, last value {s.last_value / 1_000_000} quote, pool {s.pool} txs, "
                    f"{s.txs_received} received" + (f"; {s.errors[-1]}" if s.errors else ""),
                    flush=True,
                )
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except KeyboardInterrupt:
        pass


def cmd_localnet_show(args: argparse.Namespace) -> None:
    _print_localnet(Path(args.dir))


def _node_config_overrides(settings: list[str]) -> dict[str, dict[str, Any]]:
    """``SECTION.KEY=VALUE`` settings as config overrides; VALUE is read as TOML (a number,
    true/false, a quoted string) or else taken as a plain string."""
    overrides: dict[str, dict[str, Any]] = {}
    for setting in settings:
        name, sep, text = setting.partition("=")
        section, dot, key = name.strip().partition(".")
        if not sep or not dot or not section or not key:
            raise UsageError(
                f"--node-config takes SECTION.KEY=VALUE (e.g. mempool.max_txs=50), got {setting!r}"
            )
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        overrides.setdefault(section, {})[key] = value
    return overrides


def cmd_bench_load(args: argparse.Namespace) -> None:
    import os
    import signal

    from appchaind.localnet.load import LoadError, LoadOptions, OrderMix, default_senders, run_load

    def stop(signum: int, frame: object) -> None:
        # As Ctrl-C (trio turns SIGINT into KeyboardInterrupt at a safe point): the run
        # stops where it is and its localnet, senders and builder are stopped on the
        # way out (a plain SIGTERM left four nodes running).
        os.kill(os.getpid(), signal.SIGINT)

    # A run started in the background by a shell (`appchaind bench load ... &`, nohup, a
    # CI step) inherits SIGINT ignored, and then Python raises no KeyboardInterrupt for
    # it: SIGTERM would do nothing and the run would go on for its whole duration.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop)

    try:
        options = LoadOptions(
            accounts=args.accounts, rate=args.rate, duration_s=args.duration,
            senders=args.senders or default_senders(), mix=OrderMix.parse(args.mix),
            grace_s=args.grace,
            seed=args.seed,
            builder=args.builder,
        )  # fmt: skip
        report = run_load(
            options,
            directory=None if args.dir is None else Path(args.dir),
            validators=args.validators,
            config_overrides=_node_config_overrides(args.node_config),
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except (ValueError, FileNotFoundError, LoadError) as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        print("bench load: stopped; the localnet and the senders are stopped", file=sys.stderr)
        raise SystemExit(130) from None
    print(json.dumps(report.to_json()) if args.json else report.render())


def cmd_bench_soak(args: argparse.Namespace) -> None:
    from appchaind.localnet.soak import run_soak

    if not 0 < args.seconds <= 86_400:
        raise UsageError(f"--seconds must be in (0, 86400], got {args.seconds:g}")
    try:
        kinds = tuple(k for k in args.faults.split(",") if k) if args.faults else None
        report = run_soak(
            args.seconds, args.seed, lambda line: print(line, file=sys.stderr), args.hosts, kinds
        )
    except RuntimeError as exc:
        raise UsageError(str(exc)) from None
    print(report.line())
    if not report.ok:
        print(
            f"soak FAILED: lost {report.lost[:5]}, divergent heights {report.divergences[:5]}, "
            f"double-signs {report.double_signs}; replay with: {report.replay()}",
            file=sys.stderr,
        )
        raise SystemExit(1)


def _print_localnet(directory: Path) -> None:
    try:
        nodes = load_localnet(directory)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    print(f"{'NODE':6}  {'P2P':>5}  {'RPC':>5}  {'HTTP':>5}  NODE ID")
    for n in nodes:
        print(f"{n.name:6}  {n.p2p_port:>5}  {n.rpc_port:>5}  {n.http_port:>5}  {n.node_id}")
    accounts = sorted((directory / "accounts").glob("*.json"))
    print("funded accounts (key files):")
    for path in accounts:
        print(f"  {path.stem:10}  {PrivateKey.load(path).address.hex()}  {path}")


# ---------------------------------------------------------------------------- parser


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def _add_keyring(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--keyring-dir", default=str(DEFAULT_KEYRING), metavar="DIR",
        help=f"where named keys live (default: {DEFAULT_KEYRING})",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="appchaind",
        description="Validator daemon for a perpetual-futures exchange chain.",
        epilog="Run `appchaind COMMAND --help` for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("version", help="print the version", description="Print the version.")
    p.set_defaults(func=cmd_version)

    p = sub.add_parser(
        "init", help="create a node home (keys, config.toml, genesis.json)",
        description="Create a node home: node and validator keys (0600), a documented "
        "config.toml and a single-validator genesis.json with the demo markets.",
    )  # fmt: skip
    p.add_argument("--home", required=True, help="the node's home directory")
    p.add_argument("--moniker", default="node", help="a human-readable node name")
    p.add_argument("--chain-id", default="appchain-local", help="the chain id for the genesis")
    p.add_argument("--force", action="store_true", help="replace existing keys (new identity!)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "start",
        help="run a node",
        description="Run the node whose home is HOME until SIGINT/SIGTERM, which stop it cleanly.",
    )
    p.add_argument("--home", required=True, help="the node's home directory")
    p.set_defaults(func=cmd_start)

    p = sub.add_parser(
        "config", help="check a home's configuration", description="Configuration tools."
    )
    config_sub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    config_sub.required = True
    c = config_sub.add_parser(
        "check", help="validate config.toml, genesis.json and keys",
        description="Validate HOME's config.toml, genesis.json and node key; print the genesis hash.",
    )  # fmt: skip
    c.add_argument("--home", required=True, help="the node's home directory")
    c.set_defaults(func=cmd_config_check)

    p = sub.add_parser(
        "keys", help="create and show account keys", description="Account keys (ed25519)."
    )
    keys_sub = p.add_subparsers(dest="keys_command", metavar="SUBCOMMAND")
    keys_sub.required = True
    k = keys_sub.add_parser(
        "add", help="create a key", description="Create a new key file (mode 0600)."
    )
    k.add_argument("name", help="the key's name, e.g. alice")
    k.add_argument("--force", action="store_true", help="replace an existing key of that name")
    _add_keyring(k)
    _add_json(k)
    k.set_defaults(func=cmd_keys_add)
    k = keys_sub.add_parser(
        "show", help="print a key's address",
        description="Print the address of a named key or of a key file.",
    )  # fmt: skip
    k.add_argument("name", nargs="?", help="a key name from `keys list`")
    k.add_argument("--key", metavar="FILE", help="a key file instead of a name")
    _add_keyring(k)
    _add_json(k)
    k.set_defaults(func=cmd_keys_show)
    k = keys_sub.add_parser("list", help="list keys", description="List the keys in the keyring.")
    _add_keyring(k)
    _add_json(k)
    k.set_defaults(func=cmd_keys_list)

    p = sub.add_parser(
        "localnet", help="a local network of validators on loopback",
        description="Create and inspect a local network of validators on loopback.",
    )  # fmt: skip
    ln_sub = p.add_subparsers(dest="localnet_command", metavar="SUBCOMMAND")
    ln_sub.required = True
    ln = ln_sub.add_parser(
        "init", help="write the homes of an N-validator localnet",
        description="Write DIR/node0 .. DIR/node{N-1}, one shared genesis with BTC-PERP and "
        "ETH-PERP, and funded account keys in DIR/accounts/. Node i uses ports "
        "P+10i (p2p), P+10i+1 (RPC), P+10i+2 (HTTP).",
    )  # fmt: skip
    ln.add_argument("--dir", required=True, help="where to write the localnet")
    ln.add_argument("--validators", type=int, default=4, help="number of validators (default 4)")
    ln.add_argument(
        "--base-port",
        type=int,
        default=DEFAULT_BASE_PORT,
        help=f"first port (default {DEFAULT_BASE_PORT})",
    )
    ln.add_argument(
        "--chain-id", default="appchain-local", help="chain id (default appchain-local)"
    )
    ln.add_argument("--force", action="store_true", help="replace an existing localnet in DIR")
    ln.set_defaults(func=cmd_localnet_init)
    ln = ln_sub.add_parser(
        "start",
        help="run every node of a localnet, with a live status line",
        description="Start every node of the localnet in DIR as its own process and print one "
        "status line per second (height, block interval, tx/s, peers, rounds) until Ctrl-C, "
        "which stops them all.",
    )
    ln.add_argument("--dir", required=True, help="the localnet directory")
    ln.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    ln.add_argument(
        "--traders", action="store_true",
        help="run the demo traders (market maker, takers, a leveraged trader) and show "
        "trading figures (submit->commit latency, oracle and mid, open interest, liquidations)",
    )  # fmt: skip
    ln.set_defaults(func=cmd_localnet_start)
    ln = ln_sub.add_parser(
        "show", help="list a localnet's nodes, ports and accounts",
        description="List a localnet's nodes, ports and funded accounts.",
    )  # fmt: skip
    ln.add_argument("--dir", required=True, help="the localnet directory")
    ln.set_defaults(func=cmd_localnet_show)
    add_staking_commands(*add_trading_commands(sub))

    p = sub.add_parser(
        "builder", help="build blocks and bid for them (proposer-builder separation)",
        description="Join HOME's chain as a p2p peer, collect gossiped txs, and after every "
        "block send each validator a bid for the next one, signed with --key (a registered, "
        "bonded builder: `appchaind tx builder register`). Prints a status line every 2 s.",
    )  # fmt: skip
    p.add_argument(
        "--home", required=True, help="a node home of the chain (genesis, config, peers)"
    )
    p.add_argument("--key", required=True, metavar="FILE", help="the builder account's key file")
    p.add_argument("--node", metavar="HOST:PORT", help="RPC address to follow (default: HOME's)")
    p.add_argument(
        "--value-per-tx", default="0.001", help="bid value per tx carried, quote (default 0.001)"
    )
    p.add_argument(
        "--fee-share", type=float, default=50.0, metavar="PERCENT",
        help="share of the taker fees the block's orders would pay added to the bid "
        "(default 50)",
    )  # fmt: skip
    p.add_argument("--max-txs", type=int, default=2000, help="txs per block at most (default 2000)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=cmd_builder)

    p = sub.add_parser(
        "bench", help="benchmarks against a localnet", description="Benchmarks against a localnet."
    )
    bench_sub = p.add_subparsers(dest="bench_command", metavar="SUBCOMMAND")
    bench_sub.required = True
    b = bench_sub.add_parser(
        "load", help="offer signed orders at a paced rate and measure submit->commit",
        description="Create a temporary localnet (or join the running one in --dir), fund "
        "--accounts accounts from the faucet, and submit signed orders (by default 60% "
        "limits resting near the oracle price, 30% cancels of them, 10% crossing IOC) at "
        "--rate orders/s for --duration seconds from --senders processes, round robin over "
        "the validators' RPC ports (broadcast_tx sync), each at its scheduled time whatever "
        "the earlier answers. Prints the offered and committed rates, submit->commit latency "
        "p50/p90/p99 (commit times from the blocks stream), refusals by reason, accepted txs "
        "never committed, blocks, mean block interval and txs per block. Loopback only.",
    )  # fmt: skip
    where = b.add_mutually_exclusive_group()
    where.add_argument("--dir", help="join the running localnet in DIR instead of creating one")
    where.add_argument(
        "--validators", type=int, default=4,
        help="validators of the temporary localnet (default 4)",
    )  # fmt: skip
    b.add_argument("--accounts", type=int, default=400, help="funded accounts (default 400)")
    b.add_argument("--rate", type=float, default=500.0, help="orders/s offered (default 500)")
    b.add_argument(
        "--duration", type=float, default=10.0, help="seconds of offered load (default 10)"
    )
    b.add_argument(
        "--senders", type=int, default=None,
        help="sender processes (default: the core count, 2 to 8)",
    )  # fmt: skip
    b.add_argument(
        "--mix", default="limit=60,cancel=30,ioc=10",
        help="order kinds' weights (default limit=60,cancel=30,ioc=10)",
    )  # fmt: skip
    b.add_argument(
        "--grace", type=float, default=10.0,
        help="seconds to wait after the last submission for accepted txs to commit (default 10)",
    )  # fmt: skip
    b.add_argument(
        "--seed", type=int, default=None, help="seed of the order flow (default: random)"
    )
    b.add_argument(
        "--builder", action="store_true",
        help="register the localnet's builder account and run `appchaind builder` during "
        "the load (reports the blocks it won and why proposers built their own): compare "
        "the latency with and without it at the same --rate",
    )  # fmt: skip
    b.add_argument(
        "--node-config", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="a config.toml setting for the temporary localnet's nodes (repeatable), e.g. "
        "mempool.max_txs=50",
    )  # fmt: skip
    _add_json(b)
    b.set_defaults(func=cmd_bench_load)
    b = bench_sub.add_parser(
        "soak", help="a fault campaign on a localnet under load (kill -9, pauses, delay, loss)",
        description="Start a 4-validator localnet (each validator on its own network host "
        "where allowed, see --hosts, dialling its peers through a fault-injecting proxy), "
        "submit txs all along, and for --seconds kill -9 and restart, or pause (SIGSTOP) "
        "and resume, one validator at a time, delay its links or make them lossy (stalls "
        "and cuts), skew its clock, take two down at once, fill its disk (as root), or "
        "(on separate hosts) isolate one, split them 2-2, flap a link or "
        "limit its bandwidth, drawn from --seed; then check that every tx reported committed is on every "
        "node, all nodes hold the same blocks, no block carries double-sign evidence, and "
        "the chain resumes. Ends with one 'soak: ...' line; exits 1 on a loss, a divergence "
        "or a double sign, with the command that replays the seed.",
    )  # fmt: skip
    b.add_argument("--seconds", type=float, default=600.0, help="seconds of faults (default 600)")
    b.add_argument("--seed", type=int, default=None, help="the faults' seed (default: random)")
    b.add_argument(
        "--hosts", choices=("auto", "netns", "loopback"), default="auto",
        help="validators on separate network hosts (Linux network namespaces: needs root; "
        "adds isolation, 2-2 splits, flapping links and bandwidth limits), on loopback, or "
        "the first where this machine allows it (default)",
    )  # fmt: skip
    b.add_argument(
        "--faults", default=None, metavar="KIND,...",
        help="draw only these fault kinds: kill, pause, skew, pair, delay, loss, disk (as "
        "root), and on separate hosts isolate, split, flap, bandwidth (default: all that "
        "this machine allows)",
    )  # fmt: skip
    b.set_defaults(func=cmd_bench_soak)
    return parser


_USER_ERRORS: tuple[type[BaseException], ...] = (
    UsageError, ConfigError, KeyFileError, StoreError, UnitError, StartupError, DoubleSignRefused,
    RpcError, argparse.ArgumentTypeError,
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except _USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except TxFailed:
        return 1  # the tx's result (with its code and log) is already printed
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
