"""The staking commands of the CLI (issue 17): ``tx staking create-validator | delegate |
undelegate | edit | unjail | withdraw-rewards`` and ``query validators | validator |
delegations``.

Amounts are decimal quote units (the staking token is the quote asset); a commission is a
decimal fraction (``0.05`` is 5%). A validator is named by its operator's address (the
account that created it; a genesis validator's operator is its consensus key's address);
``query validator`` also takes a consensus address. Like the trading commands, each talks
to ``--node``'s RPC port, prints tables or ``--json``, and exits with status 1 when a tx
fails.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from appchaind.chain.crypto import PrivateKey
from appchaind.chain.units import UnitError, to_units
from appchaind.client.cli import (
    SubParsers,
    _address_arg,
    _common,
    _key,
    _print_json,
    _report_tx,
    _run,
    _table,
    _tx_common,
)
from appchaind.client.library import Client
from appchaind.exchange.staking import key_signature
from appchaind.exchange.txs import (
    CreateValidator,
    Delegate,
    EditValidator,
    Undelegate,
    Unjail,
    WithdrawRewards,
)
from appchaind.home import HomePaths

__all__ = ["add_staking_commands"]

_QUOTE_UNIT = "0.000001"


def _quote(text: str, what: str = "--amount") -> int:
    units = to_units(text, _QUOTE_UNIT, what)
    if units <= 0:
        raise UnitError(f"{what} must be positive, got {text}")
    return units


def _commission(text: str) -> int:
    """A decimal fraction as ppm: "0.05" -> 50000."""
    ppm = to_units(text, "0.000001", "--commission")
    if not 0 <= ppm <= 1_000_000:
        raise UnitError(f"--commission must be from 0 to 1 (a fraction), got {text}")
    return ppm


def _operator(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise UnitError(
            f"--validator must be an operator address (40 hex characters), got {text!r}"
        )
    return raw


def _consensus_key(args: argparse.Namespace) -> PrivateKey:
    if args.validator_key:
        return PrivateKey.load(Path(args.validator_key))
    if args.home:
        return PrivateKey.load(HomePaths(Path(args.home)).validator_key)
    raise argparse.ArgumentTypeError(
        "create-validator needs the consensus key: --home HOME (its validator_key.json) or "
        "--validator-key FILE"
    )


async def _find(c: Client, address: str) -> dict[str, Any] | None:
    """The validator whose operator or consensus address is ``address``, or None."""
    wanted = address.lower()
    for v in (await c.request("validators"))["validators"]:
        if wanted in (v["operator"], v["consensus_address"]):
            return dict(v)
    return None


def cmd_staking(args: argparse.Namespace) -> None:
    key, wait = _key(args), not args.no_wait
    command = args.staking_command

    async def work(c: Client) -> None:
        body: object
        if command == "create-validator":
            consensus = _consensus_key(args)
            body = CreateValidator(
                consensus.public_key,
                key_signature(consensus, (await c.status())["chain_id"], key.address),
                args.moniker, args.details, _commission(args.commission), _quote(args.amount),
            )  # fmt: skip
        elif command == "unjail":
            body = Unjail()
        elif command == "withdraw-rewards":
            for operator in await _owing(c, key.address.hex(), args):
                _report_tx(args, await c.submit(key, WithdrawRewards(operator), wait=wait))
            return
        elif command == "delegate":
            body = Delegate(_operator(args.validator), _quote(args.amount))
        elif command == "undelegate":
            operator = _operator(args.validator)
            if args.all:
                found = await c.request("delegations", {"address": key.address.hex()})
                values = [
                    d["value"] for d in found["delegations"] if d["validator"] == operator.hex()
                ]
                if not values:
                    raise UnitError(f"{key.address.hex()} has no delegation to {operator.hex()}")
                body = Undelegate(operator, _quote(values[0]))
            else:
                body = Undelegate(operator, _quote(args.amount))
        else:
            current = await _find(c, key.address.hex())
            if current is None or current["operator"] != key.address.hex():
                raise UnitError(f"{key.address.hex()} operates no validator; create one first")
            body = EditValidator(
                current["moniker"] if args.moniker is None else args.moniker,
                current["details"] if args.details is None else args.details,
                _commission(current["commission"] if args.commission is None else args.commission),
            )
        _report_tx(args, await c.submit(key, body, wait=wait))

    _run(args, work)


async def _owing(c: Client, address: str, args: argparse.Namespace) -> list[bytes]:
    """The validators to withdraw ``address``'s rewards from: ``--validator``, or with
    ``--all`` every validator that owes it something (its delegations' rewards, and its
    own validator's commission)."""
    if not args.all:
        return [_operator(args.validator)]
    doc = await c.request("delegations", {"address": address})
    owing = [
        d["validator"] for d in doc["delegations"] if to_units(d["rewards"], _QUOTE_UNIT, "rewards")
    ]
    if to_units(doc["commission"], _QUOTE_UNIT, "commission") and address not in owing:
        owing.append(address)
    if not owing:
        raise UnitError(f"no validator owes {address} rewards yet")
    return [bytes.fromhex(operator) for operator in sorted(owing)]


def cmd_query_validators(args: argparse.Namespace) -> None:
    async def work(c: Client) -> None:
        doc = await c.request("validators")
        if args.json:
            _print_json(doc)
            return
        rows = doc["validators"]
        in_set = sum(1 for v in rows if v["power"])
        print(
            f"validators at height {doc['height']}: {len(rows)}, {in_set} in the set, "
            f"total power {doc['total_power']}"
        )
        if rows:
            _table(
                [[v["operator"], v["moniker"], v["power"], v["stake"], v["self_bond"],
                  v["commission"], _conduct(v), v["missed_blocks"], v["consensus_address"]]
                 for v in rows],
                ["OPERATOR", "MONIKER", "POWER", "STAKE", "SELF-BOND", "COMMISSION", "STATUS",
                 f"MISSED/{doc['downtime_window']}", "CONSENSUS"],
            )  # fmt: skip

    _run(args, work)


def _conduct(v: dict[str, Any]) -> str:
    if v["tombstoned"]:
        return "tombstoned"
    if v["jailed"]:
        return f"jailed until {v['jailed_until']}"
    return "active" if v["power"] else "-"


def cmd_query_validator(args: argparse.Namespace) -> None:
    async def work(c: Client) -> None:
        found = await _find(c, args.address)
        if found is None:
            raise UnitError(f"no validator has operator or consensus address {args.address}")
        if args.json:
            _print_json(found)
            return
        for name, value in found.items():
            print(f"{name:18} {value}")

    _run(args, work)


def cmd_query_delegations(args: argparse.Namespace) -> None:
    address = _address_arg(args)

    async def work(c: Client) -> None:
        doc = await c.request("delegations", {"address": address})
        if args.json:
            _print_json(doc)
            return
        print(f"stake of {doc['address']} at height {doc['height']}")
        if doc["delegations"]:
            _table(
                [[d["validator"], d["moniker"], d["value"], d["rewards"]]
                 for d in doc["delegations"]],
                ["VALIDATOR", "MONIKER", "VALUE", "REWARDS"],
            )  # fmt: skip
        if to_units(doc["commission"], _QUOTE_UNIT, "commission"):
            print(f"commission owed to it as a validator's operator: {doc['commission']}")
        if doc["unbonding"]:
            print("unbonding:")
            _table(
                [[u["validator"], u["amount"], u["release_height"]] for u in doc["unbonding"]],
                ["VALIDATOR", "AMOUNT", "RELEASE HEIGHT"],
            )

    _run(args, work)


def add_staking_commands(tx_sub: SubParsers, q_sub: SubParsers) -> None:
    """Adds ``tx staking ...`` and the staking queries."""
    s = tx_sub.add_parser("staking", help="create a validator, delegate, undelegate, edit, "
                          "unjail, withdraw rewards",
                          description="Proof of stake: bond quote collateral to validators; "
                          "the most powerful (stake / power_unit) form the validator set.")  # fmt: skip
    s_sub = s.add_subparsers(dest="staking_command", metavar="SUBCOMMAND")
    s_sub.required = True
    t = s_sub.add_parser("create-validator", help="make your account a validator's operator",
                         description="Create a validator operated by --key's account that "
                         "signs with the consensus key of --home (or --validator-key), "
                         "bonding --amount (quote units, at least the chain's min_self_bond) "
                         "of your free collateral as its self-bond. It joins the set two "
                         "blocks after the tx's block if its power ranks.")  # fmt: skip
    t.add_argument("--home", help="the validator node's home (its validator_key.json)")
    t.add_argument("--validator-key", metavar="FILE", help="the consensus key file instead")
    t.add_argument("--moniker", required=True, help="the validator's name (1-64 ASCII chars)")
    t.add_argument("--details", default="", help="a website or contact (at most 256 chars)")
    t.add_argument("--commission", default="0", help="fraction of rewards kept, e.g. 0.05")
    t.add_argument("--amount", required=True, help="self-bond in quote units, e.g. 10")
    _tx_common(t)
    t.set_defaults(func=cmd_staking)
    t = s_sub.add_parser("delegate", help="bond stake to a validator",
                         description="Bond --amount (quote units) of your free collateral to "
                         "the validator whose operator is --validator.")  # fmt: skip
    t.add_argument("--validator", required=True, metavar="OPERATOR", help="operator address")
    t.add_argument("--amount", required=True, help="amount in quote units")
    _tx_common(t)
    t.set_defaults(func=cmd_staking)
    t = s_sub.add_parser("undelegate", help="take stake off a validator (after a delay)",
                         description="Take --amount (or --all) of your stake off --validator: "
                         "it stops counting at once and returns to your balance after the "
                         "chain's stake_unbonding_blocks.")  # fmt: skip
    t.add_argument("--validator", required=True, metavar="OPERATOR", help="operator address")
    amount = t.add_mutually_exclusive_group(required=True)
    amount.add_argument("--amount", help="amount in quote units")
    amount.add_argument("--all", action="store_true", help="your whole delegation")
    _tx_common(t)
    t.set_defaults(func=cmd_staking)
    t = s_sub.add_parser("edit", help="change your validator's description or commission",
                         description="Change the moniker, details or commission of the "
                         "validator --key operates (what you leave out stays).")  # fmt: skip
    t.add_argument("--moniker", help="a new name")
    t.add_argument("--details", help="new details")
    t.add_argument("--commission", help="a new commission, e.g. 0.1")
    _tx_common(t)
    t.set_defaults(func=cmd_staking)
    t = s_sub.add_parser("unjail", help="return your jailed validator to the set",
                         description="Return the validator --key operates, jailed for missing "
                         "blocks, to the validators the set is chosen from: once its jail "
                         "term is over (query validators shows until when) and if its "
                         "self-bond still meets the chain's min_self_bond. It rejoins two "
                         "blocks after the tx's block. A tombstoned validator never can.")  # fmt: skip
    _tx_common(t)
    t.set_defaults(func=cmd_staking)
    t = s_sub.add_parser("withdraw-rewards", help="collect your staking rewards",
                         description="Pay your account the rewards a validator owes you: "
                         "your delegation's share of the trading fees and builders' bids "
                         "it earned, and its commission if you operate it. --all collects "
                         "from every validator that owes you something, one tx each. "
                         "(Delegating or undelegating also pays that validator's rewards.)")  # fmt: skip
    owner = t.add_mutually_exclusive_group(required=True)
    owner.add_argument("--validator", metavar="OPERATOR", help="operator address")
    owner.add_argument("--all", action="store_true", help="every validator that owes you")
    _tx_common(t)
    t.set_defaults(func=cmd_staking)

    q = q_sub.add_parser("validators", help="validators: power, stake, commission, jailed",
                         description="Every validator, the most powerful first: voting power "
                         "(0: outside the set), stake, self-bond, commission, jailed (until "
                         "when) or tombstoned, blocks missed of the downtime window, keys.")  # fmt: skip
    _common(q, key=False)
    q.set_defaults(func=cmd_query_validators)
    q = q_sub.add_parser("validator", help="one validator",
                         description="The validator with operator or consensus ADDRESS.")  # fmt: skip
    q.add_argument("address", help="operator or consensus address (hex)")
    _common(q, key=False)
    q.set_defaults(func=cmd_query_validator)
    q = q_sub.add_parser("delegations", help="an account's stake, rewards and unbonding",
                         description="The delegations of ADDRESS (or --key's account) with "
                         "the rewards each has earned and not yet been paid, what of its "
                         "stake is unbonding, and the commission owed to it if it operates "
                         "a validator.")  # fmt: skip
    q.add_argument("address", nargs="?", help="the account address (hex)")
    _common(q, key=True)
    q.set_defaults(func=cmd_query_delegations)
