"""Running the same blocks through the executable spec (spec/exchange.py) and the
application, and saying exactly where they part.

After every block, both must agree on every tx result (code, log, events, in order), on
the block's own events, and on the whole state: :func:`app_state` reads the application's
state through its public views into the canonical form of
:meth:`spec.exchange.Exchange.state_summary`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from appchaind.chain.events import Event
from appchaind.chain.types import Tx
from appchaind.exchange import ExchangeApp
from margin.accounts import decode_nonces
from spec.exchange import Exchange, Result


@dataclass
class Block:
    """One decided block: exactly what both implementations are given."""

    height: int
    time_ms: int
    txs: list[Tx]
    prev_block_hash: bytes = b""
    oracle_prices: list[int] | None = None
    oracle_votes: list[tuple[int, bytes]] | None = None
    total_power: int | None = None
    labels: list[str] = field(default_factory=list)  # what each tx is, for messages


class Disagreement(AssertionError):
    """The spec and the application differ; the message says where, first difference first."""


def app_state(app: ExchangeApp) -> dict[str, Any]:
    """The application's state in the form of ``Exchange.state_summary()``."""
    clearing = app.clearing
    markets = []
    for market in app.markets:
        book = app.books[market.market_id]
        markets.append(
            {
                "oracle_price": market.oracle_price,
                "funding_index": market.funding_index,
                "premium_sum": market.premium_sum,
                "premium_samples": market.premium_samples,
                "last_funding_rate_ppm": market.last_funding_rate_ppm,
                "orders": [tuple(record) for record in book.resting_orders()],
                "conditional": [tuple(c.record()) for c in book.conditional_orders()],
            }
        )
    accounts = {}
    for address in sorted(clearing.accounts):
        account = app.account(address)
        assert account is not None
        accounts[address] = {
            "balance": account.balance,
            "positions": [
                (
                    m,
                    account.positions[m].size,
                    account.positions[m].funding_index,
                    account.positions[m].cost,
                )
                for m in account.markets()
            ],  # fmt: skip
            # the committed form (the incrementally spliced bytes), decoded
            "nonces": decode_nonces(account.encoded_nonces),
        }
    return {
        "height": app.height,
        "time_ms": app.time_ms,
        "next_order_id": app.next_order_id,
        "insurance_fund": clearing.insurance_fund,
        "fee_pool": clearing.fee_pool,
        "withdrawn": clearing.withdrawn,
        "faucet_total": clearing.faucet_total,
        "genesis_total": clearing.genesis_total,
        "markets": markets,
        "accounts": accounts,
    }


def differences(app: Any, spec: Any, path: str = "") -> list[str]:
    """Every path where two nested values differ, as "path: app ... spec ..." lines."""
    if isinstance(app, dict) and isinstance(spec, dict):
        out = []
        for key in sorted(set(app) | set(spec), key=repr):
            where = f"{path}[{_short(key)}]"
            if key not in spec:
                out.append(f"{where}: only in the app: {_short(app[key])}")
            elif key not in app:
                out.append(f"{where}: only in the spec: {_short(spec[key])}")
            else:
                out.extend(differences(app[key], spec[key], where))
        return out
    if isinstance(app, list | tuple) and isinstance(spec, list | tuple) and len(app) == len(spec):
        out = []
        for i, (a, s) in enumerate(zip(app, spec, strict=True)):
            out.extend(differences(a, s, f"{path}[{i}]"))
        return out
    if app != spec:
        return [f"{path}: app {_short(app)} != spec {_short(spec)}"]
    return []


def _short(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()[:8]
    if isinstance(value, Event):
        inner = ", ".join(f"{k}={_short(v)}" for k, v in value.attributes.items())
        return f"{value.kind}({inner})"
    if isinstance(value, list | tuple):
        inner = ", ".join(_short(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_short(k)}: {_short(v)}" for k, v in value.items()) + "}"
    return repr(value)


def run_block(app: ExchangeApp, spec: Exchange, block: Block) -> tuple[list[Result], list[Event]]:
    """Execute ``block`` in both; raise :class:`Disagreement` at the first difference.
    Returns the spec's tx results and block events."""
    result = app.execute_block(
        block.height,
        block.time_ms,
        block.txs,
        prev_block_hash=block.prev_block_hash,
        oracle_votes=block.oracle_votes,
        total_power=block.total_power,
        oracle_prices=block.oracle_prices,
        signatures_verified=True,
    )
    app.commit()
    spec_results, spec_events = spec.finalize_block(
        block.height,
        block.time_ms,
        block.txs,
        prev_block_hash=block.prev_block_hash,
        oracle_prices=block.oracle_prices,
        oracle_votes=block.oracle_votes,
        total_power=block.total_power,
    )
    problems = []
    for i, (ours, theirs) in enumerate(zip(result.tx_results, spec_results, strict=True)):
        label = block.labels[i] if i < len(block.labels) else type(block.txs[i].body).__name__
        app_view = {"code": int(ours.code), "log": ours.log, "events": list(ours.events)}
        spec_view = {"code": int(theirs.code), "log": theirs.log, "events": theirs.events}
        problems.extend(f"tx {i} ({label}){line}" for line in differences(app_view, spec_view))
    problems.extend(f"block events{line}" for line in differences(result.events, spec_events))
    problems.extend(f"state{line}" for line in differences(app_state(app), spec.state_summary()))
    if problems:
        shown = "\n  ".join(problems[:25])
        more = f"\n  ... and {len(problems) - 25} more" if len(problems) > 25 else ""
        txs = "\n  ".join(
            f"{i}: {label} {tx.body!r}"
            for i, (label, tx) in enumerate(zip(block.labels, block.txs, strict=False))
        )
        raise Disagreement(
            f"spec and app differ after block {block.height}:\n  {shown}{more}\n"
            f"the block's txs (sender, kind, envelope flaw, body):\n  {txs}"
        )
    check_spec_invariants(spec)
    return spec_results, spec_events


def check_spec_invariants(spec: Exchange) -> None:
    """Quote conservation and zero net position per market, in the spec itself."""
    balances = sum(a.balance for a in spec.accounts.values())
    assert (
        balances + spec.insurance_fund + spec.fee_pool + spec.withdrawn
        == spec.genesis_total + spec.faucet_total
    )
    for market in spec.markets:
        assert sum(a.positions[market.market_id].size for a in spec.accounts.values()
                   if market.market_id in a.positions) == 0  # fmt: skip
