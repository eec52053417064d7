"""Exchange state and events as plain maps for the RPC port and the HTTP JSON port.

This is the decimal edge (docs/design.md, "Units"): prices, sizes and amounts leave as exact
decimal strings ("65000.1", "0.5", "12.34"), computed from integer ticks, lots and quote
micro-units with :func:`appchaind.chain.units.from_units`; order ids, heights and codes stay
integers; addresses and hashes are lowercase hex. Sides are "buy"/"sell".

Every function here only reads state; call it from the node's trio thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING, Any

import msgpack

from appchaind.chain import types
from appchaind.chain.units import QUOTE_MICRO, from_units
from appchaind.exchange import rewards
from appchaind.exchange.staking import validator_view
from config.genesis import MarketParams
from margin import health
from orderbook import ORDER_FIELDS

if TYPE_CHECKING:
    from appchaind.exchange.app import ExchangeApp

__all__ = [
    "QUOTE_UNIT",
    "quote",
    "side_name",
    "event_view",
    "events_view",
    "account_view",
    "book_levels",
    "markets_view",
    "validators_view",
    "delegations_view",
    "pack_tx_events",
    "unpack_tx_events",
    "block_json",
]

#: One micro-unit of the quote asset, as a decimal string.
QUOTE_UNIT = str(Decimal(1) / QUOTE_MICRO)
_PRICE_KEYS = frozenset(("price", "bankruptcy_price", "previous", "trigger_price"))
_SIZE_KEYS = frozenset(("size", "filled", "remaining", "maker_remaining"))
_QUOTE_KEYS = frozenset(
    ("amount", "maker_fee", "taker_fee", "bond", "to_proposer", "to_insurance_fund", "stake")
)
_SIDE_KEYS = frozenset(("side", "taker_side"))
#: Tx events kept in the tx index (fills and order status changes are what traders ask).
_MAX_INDEXED_EVENTS_BYTES = 32 * 1024
_O = {name: i for i, name in enumerate(ORDER_FIELDS)}


def quote(micro: int) -> str:
    """Quote micro-units as a decimal string."""
    return from_units(micro, QUOTE_UNIT)


def side_name(side: int) -> str:
    return "buy" if side else "sell"


def _ratio_ppm(ppm: int) -> str:
    return from_units(ppm, "0.000001")


def event_view(
    kind: str, attributes: dict[str, Any], markets: list[MarketParams]
) -> dict[str, Any]:
    """One application event in edge units (bytes, such as addresses, as hex)."""
    market_id = attributes.get("market")
    params = (
        markets[market_id] if type(market_id) is int and 0 <= market_id < len(markets) else None
    )
    out: dict[str, Any] = {"kind": kind}
    for key, value in attributes.items():
        if key == "market" and params is not None:
            out[key] = params.symbol
        elif type(value) is bytes:
            out[key] = value.hex()
        elif type(value) is not int:
            out[key] = value
        elif key in _SIDE_KEYS:
            out[key] = side_name(value)
        elif key in _PRICE_KEYS and params is not None:
            out[key] = from_units(value, params.tick_size)
        elif key in _SIZE_KEYS and params is not None:
            out[key] = from_units(value, params.lot_size)
        elif key in _QUOTE_KEYS:
            out[key] = quote(value)
        elif key == "rate_ppm":
            out["rate"] = _ratio_ppm(value)
        else:
            out[key] = value
    return out


def events_view(
    events: Sequence[tuple[str, dict[str, Any]]], markets: list[MarketParams]
) -> list[dict[str, Any]]:
    return [event_view(kind, attributes, markets) for kind, attributes in events]


def pack_tx_events(events: Sequence[tuple[str, dict[str, Any]]]) -> bytes:
    """A tx's events for the tx index: msgpack, bytes as hex, at most 32 KiB (later events
    are dropped whole when a tx produced more, and a final ``truncated`` event says so)."""
    if not events:
        return b""
    items = [
        [kind, {k: (v.hex() if type(v) is bytes else v) for k, v in attributes.items()}]
        for kind, attributes in events
    ]
    whole: bytes = msgpack.packb(items, use_bin_type=True)
    if len(whole) <= _MAX_INDEXED_EVENTS_BYTES:
        return whole  # the common case: packed once
    kept: list[Any] = []
    size = 0
    for item in items:
        size += len(msgpack.packb(item, use_bin_type=True))
        if size > _MAX_INDEXED_EVENTS_BYTES:
            kept.append(["truncated", {"events": len(events)}])
            break
        kept.append(item)
    data: bytes = msgpack.packb(kept, use_bin_type=True)
    return data


def unpack_tx_events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    if not data:
        return []
    return [(kind, attributes) for kind, attributes in msgpack.unpackb(data, raw=False)]


# ---------------------------------------------------------------------------- state


def _decimal_ratio(numerator: int, denominator: int, unit: str, scale: str = "1") -> str:
    """numerator × scale / denominator, rounded half-even to a multiple of ``unit``, as a
    decimal string (for display figures such as an average entry price, never for state)."""
    with localcontext() as ctx:
        ctx.prec = 60
        value = Decimal(numerator) * Decimal(scale) / Decimal(denominator)
        return from_units(int((value / Decimal(unit)).to_integral_value()), unit)


def _order_view(record: tuple[Any, ...], params: MarketParams) -> dict[str, Any]:
    return {
        "market": params.symbol,
        "order_id": record[_O["order_id"]],
        "client_id": record[_O["client_id"]],
        "side": side_name(record[_O["side"]]),
        "type": "limit",
        "price": from_units(record[_O["price"]], params.tick_size),
        "size": from_units(record[_O["size"]], params.lot_size),
        "time_in_force": ("gtc", "post-only", "ioc", "fok")[record[_O["time_in_force"]]],
        "reduce_only": bool(record[_O["flags"]] & 1),
        "good_til_block": record[_O["good_til_block"]],
    }


_CONDITIONAL_TYPES = ("stop-market", "stop-limit", "take-profit-market", "take-profit-limit")


def account_view(exchange: ExchangeApp, address: bytes) -> dict[str, Any]:
    """Balance, positions (entry price, unrealised PnL), open orders (resting and
    conditional), net collateral, free collateral and margin ratio (maintenance
    requirement / net collateral; liquidation when it exceeds 1)."""
    account = exchange.account(address)
    doc: dict[str, Any] = {"address": address.hex(), "height": exchange.height}
    if account is None:
        return {
            **doc, "exists": False, "balance": "0", "net_collateral": "0",
            "free_collateral": "0", "initial_margin": "0", "maintenance_margin": "0",
            "margin_ratio": "0", "positions": [], "open_orders": [],
        }  # fmt: skip
    markets = exchange.markets
    state = health(account, markets)
    positions = []
    for market_id in account.markets():
        position = account.positions[market_id]
        market = markets[market_id]
        params = market.params
        value = position.size * market.oracle_price * market.quantum
        positions.append(
            {
                "market": params.symbol,
                "side": "long" if position.size > 0 else "short",
                "size": from_units(position.size, params.lot_size),
                "entry_price": _decimal_ratio(
                    position.cost,
                    position.size * market.quantum,
                    str(Decimal(params.tick_size) / 100),
                    params.tick_size,
                ),
                "oracle_price": from_units(market.oracle_price, params.tick_size),
                "notional": quote(abs(value)),
                "unrealised_pnl": quote(value - position.cost),
            }
        )
    orders = []
    for market_id, book in enumerate(exchange.books):
        params = markets[market_id].params
        for order_id in book.order_ids_of(address):
            record = book.order(order_id)
            if record is not None:
                orders.append(_order_view(record, params))
        for c in book.conditional_orders():
            if c.owner == address:
                orders.append(
                    {
                        "market": params.symbol, "order_id": c.order_id, "client_id": c.client_id,
                        "side": side_name(c.side), "type": _CONDITIONAL_TYPES[c.kind],
                        "price": from_units(c.price, params.tick_size),
                        "trigger_price": from_units(c.trigger_price, params.tick_size),
                        "size": from_units(c.size, params.lot_size),
                        "time_in_force": ("gtc", "post-only", "ioc", "fok")[c.time_in_force],
                        "reduce_only": bool(c.flags & 1), "good_til_block": c.good_til_block,
                    }
                )  # fmt: skip
    ratio = "0" if state.maintenance == 0 else (
        "inf" if state.net <= 0 else _decimal_ratio(state.maintenance, state.net, "0.0001")
    )  # fmt: skip
    return {
        **doc,
        "exists": True,
        "balance": quote(account.balance),
        "net_collateral": quote(state.net),
        "free_collateral": quote(state.free_collateral),
        "initial_margin": quote(state.initial),
        "maintenance_margin": quote(state.maintenance),
        "margin_ratio": ratio,
        "positions": positions,
        "open_orders": orders,
    }


def book_levels(
    exchange: ExchangeApp, market_id: int, depth: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(bids, asks) as (price ticks, size lots), best first."""
    book = exchange.books[market_id]
    return book.depth(1, depth), book.depth(0, depth)


def levels_view(levels: list[tuple[int, int]], params: MarketParams) -> list[list[str]]:
    return [
        [from_units(price, params.tick_size), from_units(size, params.lot_size)]
        for price, size in levels
    ]


def markets_view(exchange: ExchangeApp) -> list[dict[str, Any]]:
    """Every market: parameters, oracle price, funding rate, open interest, best prices."""
    out = []
    for market, figures in zip(exchange.markets, exchange.statistics().markets, strict=True):
        p = market.params
        bid, ask = figures.best_bid, figures.best_ask
        mid = None
        if bid is not None and ask is not None:
            mid = _decimal_ratio(bid + ask, 2, str(Decimal(p.tick_size) / 10), p.tick_size)
        out.append(
            {
                "market": p.symbol,
                "market_id": p.market_id,
                "tick_size": p.tick_size,
                "lot_size": p.lot_size,
                "quantum": p.quantum,
                "oracle_price": from_units(figures.oracle_price, p.tick_size),
                "best_bid": None if bid is None else from_units(bid, p.tick_size),
                "best_ask": None if ask is None else from_units(ask, p.tick_size),
                "mid_price": mid,
                "funding_rate": _ratio_ppm(figures.funding_rate_ppm),
                "open_interest": from_units(figures.open_interest, p.lot_size),
                "initial_margin": _ratio_ppm(p.initial_margin_ppm),
                "maintenance_margin": _ratio_ppm(p.maintenance_margin_ppm),
                "maker_fee": _ratio_ppm(p.maker_fee_ppm),
                "taker_fee": _ratio_ppm(p.taker_fee_ppm),
                "price_band": _ratio_ppm(p.price_band_ppm),
            }
        )
    return out


def builders_view(exchange: ExchangeApp) -> dict[str, Any]:
    """The registered block builders in address order: bond and unbonding amounts (quote),
    release heights, winning bids paid."""
    builders = []
    for address in sorted(exchange.builders):
        b = exchange.builders[address]
        builders.append(
            {
                "address": address.hex(),
                "public_key": b.public_key.hex(),
                "name": b.name,
                "bond": quote(b.bond),
                "unbonding": [
                    {"release_height": height, "amount": quote(amount)}
                    for height, amount in b.unbonding
                ],
                "bids_won": b.bids_won,
                "paid": quote(b.paid),
            }
        )
    return {"height": exchange.height, "builders": builders}


def validators_view(exchange: ExchangeApp) -> dict[str, Any]:
    """Every validator of the staking state, the most powerful first (then by operator):
    stake and self-bond in quote, commission as a fraction, ``power`` the voting power
    consensus was last given (0: outside the set; an update takes effect two heights
    after its block); ``jailed`` (for downtime until ``jailed_until``, then until an
    Unjail; or tombstoned), ``tombstoned`` (for duplicate votes, for good),
    ``missed_blocks`` of the last ``downtime_window`` and ``slashed`` in quote;
    ``commission_owed`` (quote) not yet paid to the operator and ``commission_raised_at``
    the height of its last commission rise (0: never)."""
    staking = exchange.staking
    rows = []
    for operator in sorted(staking.validators):
        row = validator_view(staking, staking.validators[operator])
        row["stake"] = quote(row["stake"])
        row["self_bond"] = quote(row["self_bond"])
        row["slashed"] = quote(row["slashed"])
        row["commission_owed"] = quote(row["commission_owed"])
        row["commission"] = _ratio_ppm(row.pop("commission_ppm"))
        rows.append(row)
    rows.sort(key=lambda r: -int(r["power"]))
    return {
        "height": exchange.height,
        "total_power": sum(int(r["power"]) for r in rows),
        "downtime_window": exchange.params.downtime_window,
        "validators": rows,
    }


def delegations_view(exchange: ExchangeApp, address: bytes) -> dict[str, Any]:
    """``address``'s stake: its delegations (value and rewards not yet paid, in quote, by
    validator operator), what is unbonding (amount, release height), in validator then
    height order, and the commission owed to it if it operates a validator."""
    staking = exchange.staking
    delegations = []
    for key in sorted(k for k in staking.delegations if k[20:] == address):
        validator = staking.validators[key[:20]]
        shares = staking.delegations[key]
        owed, _ = rewards.owed(staking, validator, address)
        delegations.append(
            {
                "validator": key[:20].hex(),
                "moniker": validator.moniker,
                "shares": shares,
                "value": quote(validator.value_of(shares)),
                "rewards": quote(owed),
            }
        )
    operated = staking.validators.get(address)
    unbonding = [
        {"validator": operator.hex(), "release_height": height, "amount": quote(amount)}
        for height, operator, amount in staking.unbonding_of(address)
    ]
    return {
        "height": exchange.height,
        "address": address.hex(),
        "delegations": delegations,
        "unbonding": unbonding,
        "commission": quote(0 if operated is None else operated.commission_owed),
    }


def tx_index_view(
    tx_hash: bytes, height: int, index: int, code: int, log: str, events: bytes,
    markets: list[MarketParams],
) -> dict[str, Any]:  # fmt: skip
    """A committed tx's result with its fills and events in edge units."""
    decoded = events_view(unpack_tx_events(events), markets)
    return {
        "tx_hash": tx_hash.hex(),
        "height": height,
        "index": index,
        "code": code,
        "log": log,
        "fills": [e for e in decoded if e["kind"] == "fill"],
        "events": decoded,
    }


def block_summary(block: types.Block, hashes: Sequence[bytes], forced: int) -> dict[str, Any]:
    """A committed block in the ``blocks`` stream: ``tx_hashes`` are ``hashes``, those of
    its txs then of the ``forced`` txs of inclusion lists executed after them (every tx
    the block committed)."""
    h = block.header
    return {
        "height": h.height,
        "hash": block.block_id().hex(),
        "time_ms": h.time_ms,
        "proposer": h.proposer.hex(),
        "app_hash": h.app_hash.hex(),
        "txs": len(block.txs),
        "forced_txs": forced,
        "tx_hashes": [tx_hash.hex() for tx_hash in hashes],
    }


def block_json(block: types.Block, forced_txs: Sequence[bytes] = ()) -> dict[str, Any]:
    """A block as JSON (``GET /block/{height}`` and the RPC ``block`` method): header
    fields and hashes in hex, txs in hex with their hashes, the forced txs (of inclusion
    lists, executed after the block's own: ``forced_txs``) likewise, evidence, the last
    commit's signers."""
    h = block.header
    return {
        "height": h.height,
        "hash": block.block_id().hex(),
        "header": {
            "chain_id": h.chain_id,
            "height": h.height,
            "time_ms": h.time_ms,
            "last_block_id": h.last_block_id.hex(),
            "last_commit_hash": h.last_commit_hash.hex(),
            "data_hash": h.data_hash.hex(),
            "validators_hash": h.validators_hash.hex(),
            "next_validators_hash": h.next_validators_hash.hex(),
            "app_hash": h.app_hash.hex(),
            "proposer": h.proposer.hex(),
            "evidence_hash": h.evidence_hash.hex(),
        },
        "txs": [tx.hex() for tx in block.txs],
        "tx_hashes": [types.tx_hash(tx).hex() for tx in block.txs],
        "forced_txs": [tx.hex() for tx in forced_txs],
        "forced_tx_hashes": [types.tx_hash(tx).hex() for tx in forced_txs],
        "evidence": [
            {
                "validator": e.vote_a.validator.hex(),
                "height": e.vote_a.height,
                "round": e.vote_a.round,
            }
            for e in block.evidence
        ],
        "last_commit": None
        if block.last_commit is None
        else {
            "height": block.last_commit.height,
            "round": block.last_commit.round,
            "block_hash": block.last_commit.block_hash.hex(),
            "signed": sum(1 for s in block.last_commit.signatures if s.flag == types.COMMIT_BLOCK),
            "signers": [
                s.validator.hex()
                for s in block.last_commit.signatures
                if s.flag == types.COMMIT_BLOCK
            ],
            "validators": len(block.last_commit.signatures),
        },
    }
