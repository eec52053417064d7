"""``genesis.json``: the chain's first state, validated, with a hash every node agrees on.

The JSON is the operator's edge (decimal strings for prices, sizes and
balances); :func:`parse_genesis` turns it into :class:`Genesis`, a canonical
message of integers, whose SHA-256 is the genesis hash. Whitespace or key
order in the JSON does not change the hash; any change of meaning does.

Units: prices in ticks, sizes in lots, collateral in micro-units of the quote
asset, fractions in parts per million (ppm), times in Unix milliseconds.
"""

from __future__ import annotations

import calendar
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from appchaind.chain import codec, crypto
from appchaind.chain.codec import I64, U32, U64, MaxItems, PubKey, Str, message
from appchaind.chain.types import MAX_CHAIN_ID_CHARS, ChainId, Validator
from appchaind.chain.units import QUOTE_MICRO, UnitError, normalize, to_units
from config.node_config import ConfigError

__all__ = [
    "ChainParams",
    "MarketParams",
    "GenesisAccount",
    "GenesisValidator",
    "Genesis",
    "parse_genesis",
    "load_genesis",
    "genesis_to_json",
    "PPM",
    "MAX_INCLUSION_TXS",
    "MAX_INCLUSION_BYTES",
]

PPM = 1_000_000
MAX_MARKETS = 256
#: The largest ``max_inclusion_txs`` and ``max_inclusion_bytes`` a chain may set: with
#: prices for every market, an inclusion list this large still fits a vote extension.
MAX_INCLUSION_TXS = 256
MAX_INCLUSION_BYTES = 48 * 1024
MAX_GENESIS_ACCOUNTS = 1_000_000
#: The most validators a chain's set may hold (``max_validators``), as many as a genesis.
MAX_VALIDATORS = 10_000
#: The most stake, in micro-units, the genesis validators may hold together (and the
#: most voting power a set may have: CometBFT's bound, 2**63 / 8).
MAX_TOTAL_POWER = 2**60
QUOTE_UNIT = "0.000001"

Symbol = Annotated[str, Str(20, min_len=3, ascii=True)]
DecimalText = Annotated[str, Str(40, min_len=1, ascii=True)]
Name = Annotated[str, Str(64, ascii=True)]
Address = codec.Address


@message
class ChainParams:
    """Chain-wide rules. Times in milliseconds, amounts in quote micro-units.

    ``max_inclusion_txs`` and ``max_inclusion_bytes`` bound a validator's inclusion list
    (the txs of its mempool that it lists in its precommit's vote extension, which the
    next block must execute if no block carried them): at most that many txs, of at most
    that many bytes in total. Every validator refuses a precommit whose list breaks them,
    so they are chain rules, at most :data:`MAX_INCLUSION_TXS` and
    :data:`MAX_INCLUSION_BYTES` (a vote extension must fit in 64 KiB with its prices).

    Staking (:mod:`appchaind.exchange.staking`): a validator's voting power is its bonded
    stake in micro-units divided by ``power_unit`` (rounded down); the set is the
    ``max_validators`` most powerful validators with at least ``min_validator_power``
    and a self-bond (at least ``min_self_bond``); undelegated stake returns to its
    owner ``stake_unbonding_blocks`` blocks later. A genesis validator's power is backed
    by a self-bond of power × ``power_unit``.

    Accountability (:mod:`appchaind.exchange.accountability`): a validator whose duplicate
    votes are committed as evidence loses ``slash_double_sign_ppm`` of its stake and is
    tombstoned (out of the set for good); one that missed more than
    ``downtime_max_missed`` of the last ``downtime_window`` commits loses
    ``slash_downtime_ppm`` (may be 0) and is jailed for ``downtime_jail_blocks`` blocks,
    after which its operator's Unjail returns it.

    Rewards (:mod:`appchaind.exchange.rewards`): a validator may lower its commission at
    any time, but raise it by at most ``commission_max_rise_ppm`` (may be 0: never) and
    only ``commission_rise_blocks`` blocks after its last rise, so that its delegators
    can leave before a large rise takes their rewards.
    """

    max_tx_bytes: U32
    max_block_txs: U32
    max_block_bytes: U32
    nonce_window_past_ms: U64
    nonce_window_future_ms: U64
    max_recent_nonces: U32
    max_tx_lifetime_blocks: U32
    max_open_orders_per_account: U32
    max_makers_per_taker: U32
    max_liquidations_per_block: U32
    max_liquidation_notional_per_account: U64
    min_builder_bond: U64
    builder_unbonding_blocks: U32
    min_builder_bid: U64
    builder_bid_proposer_ppm: U32
    faucet_enabled: bool
    faucet_max_amount: U64
    max_inclusion_txs: U32
    max_inclusion_bytes: U32
    power_unit: U64
    min_self_bond: U64
    max_validators: U32
    min_validator_power: U32
    stake_unbonding_blocks: U32
    slash_double_sign_ppm: U32
    slash_downtime_ppm: U32
    downtime_window: U32
    downtime_max_missed: U32
    downtime_jail_blocks: U32
    commission_max_rise_ppm: U32
    commission_rise_blocks: U32


@message
class MarketParams:
    """One perpetual market. ``quantum`` is the notional, in quote micro-units, of one
    lot at a price of one tick: notional = ticks × lots × quantum."""

    market_id: U32
    symbol: Symbol
    tick_size: DecimalText
    lot_size: DecimalText
    quantum: U64
    initial_margin_ppm: U32
    maintenance_margin_ppm: U32
    maker_fee_ppm: I64
    taker_fee_ppm: I64
    liquidation_fee_ppm: U32
    funding_interval_blocks: U32
    max_funding_rate_ppm: U32
    impact_notional: U64
    price_band_ppm: U32
    max_oracle_move_ppm: U32
    initial_oracle_price: U64


@message
class GenesisAccount:
    address: Address
    balance: U64


@message
class GenesisValidator:
    name: Name
    public_key: PubKey
    power: U64


@message
class Genesis:
    chain_id: ChainId
    genesis_time_ms: U64
    validators: Annotated[tuple[GenesisValidator, ...], MaxItems(MAX_VALIDATORS)]
    params: ChainParams
    markets: Annotated[tuple[MarketParams, ...], MaxItems(MAX_MARKETS)]
    accounts: Annotated[tuple[GenesisAccount, ...], MaxItems(MAX_GENESIS_ACCOUNTS)]
    insurance_fund: U64

    def hash(self) -> bytes:
        """The genesis hash: SHA-256 of the canonical encoding."""
        return crypto.sha256(codec.encode(self))

    def validator_set(self) -> tuple[Validator, ...]:
        return tuple(Validator(v.public_key, v.power) for v in self.validators)

    def market(self, symbol: str) -> MarketParams | None:
        for m in self.markets:
            if m.symbol == symbol:
                return m
        return None


DEFAULT_PARAMS: dict[str, Any] = {
    "max_tx_bytes": 16 * 1024,
    "max_block_txs": 10_000,
    "max_block_bytes": 4 * 1024 * 1024,
    "nonce_window_past_ms": 24 * 3600 * 1000,
    "nonce_window_future_ms": 3600 * 1000,
    "max_recent_nonces": 100,
    "max_tx_lifetime_blocks": 1_000,
    "max_open_orders_per_account": 200,
    "max_makers_per_taker": 1_000,
    "max_liquidations_per_block": 50,
    "max_liquidation_notional_per_account": "1000000",
    "min_builder_bond": "1000",
    "builder_unbonding_blocks": 100,
    "min_builder_bid": "0.01",
    "builder_bid_proposer_ppm": 500_000,
    "faucet_enabled": False,
    "faucet_max_amount": "100000",
    "max_inclusion_txs": 32,
    "max_inclusion_bytes": 16 * 1024,
    # One unit of voting power per whole quote unit bonded.
    "power_unit": "1",
    "min_self_bond": "1",
    "max_validators": 100,
    "min_validator_power": 1,
    # Longer than the consensus evidence window (100 heights), so that stake bonded when
    # an infraction was committed is still there when its evidence is.
    "stake_unbonding_blocks": 1_000,
    # Duplicate votes cost 5% of the stake and the validator's place for good. Missing more
    # than 95% of the last 1,000 commits (signing less than 5%, as the Cosmos Hub's
    # min_signed_per_window) costs 0.01% and 600 blocks in jail: a commit holds the
    # precommits its proposer had when it decided (the first +2/3), so an honest but slow
    # validator is often left out of one, and a tighter rule would jail it.
    "slash_double_sign_ppm": 50_000,
    "slash_downtime_ppm": 100,
    "downtime_window": 1_000,
    "downtime_max_missed": 950,
    "downtime_jail_blocks": 600,
    # A commission rises by at most one percentage point at a time, at most once per
    # 10,000 blocks (about three hours at one block a second): a delegator sees a rise
    # coming long before the next one.
    "commission_max_rise_ppm": 10_000,
    "commission_rise_blocks": 10_000,
}
#: Params that may be 0 (every other integer param is at least 1).
_ZERO_PARAMS = (
    "slash_double_sign_ppm", "slash_downtime_ppm", "downtime_max_missed",
    "commission_max_rise_ppm",
)  # fmt: skip
#: The longest downtime window: each validator keeps a bit per block of it in the state.
MAX_DOWNTIME_WINDOW = 100_000
#: Params given as decimal quote amounts in JSON and stored as micro-units.
_QUOTE_PARAMS = (
    "max_liquidation_notional_per_account", "min_builder_bond", "min_builder_bid",
    "faucet_max_amount", "power_unit", "min_self_bond",
)  # fmt: skip

_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?Z$")


class _Reader:
    """Reads typed values out of parsed JSON, raising ConfigError that names the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where} {problem}")

    def obj(self, value: Any, where: str, keys: set[str], required: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be an object, got {json.dumps(value)[:60]}")
        for k in value:
            if k not in keys:
                raise self.fail(
                    f"{where}.{k}" if where else k,
                    f"is not a known key; allowed: {', '.join(sorted(keys))}",
                )
        for k in sorted(required):
            if k not in value:
                raise self.fail(f"{where}.{k}" if where else k, "is missing")
        return value

    def integer(self, value: Any, where: str, lo: int, hi: int) -> int:
        if type(value) is not int:
            raise self.fail(where, f"= {json.dumps(value)} must be an integer from {lo} to {hi}")
        if not lo <= value <= hi:
            raise self.fail(where, f"= {value} is out of range; allowed {lo} to {hi}")
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if type(value) is not bool:
            raise self.fail(where, f"= {json.dumps(value)} must be true or false")
        return value

    def text(self, value: Any, where: str, max_len: int) -> str:
        if type(value) is not str or not value or len(value) > max_len or not value.isascii():
            raise self.fail(
                where, f"= {json.dumps(value)} must be an ASCII string of 1 to {max_len} characters"
            )
        return value

    def amount(self, value: Any, where: str, unit: str, lo: int = 0, hi: int = 2**64 - 1) -> int:
        try:
            units = to_units(value, unit, where)
        except UnitError as exc:
            raise self.fail(where, f"= {json.dumps(value)}: {exc}") from None
        if not lo <= units <= hi:
            raise self.fail(where, f"= {json.dumps(value)} is out of range")
        return units

    def hex_bytes(self, value: Any, where: str, n: int) -> bytes:
        if type(value) is not str or len(value) != 2 * n:
            raise self.fail(where, f"= {json.dumps(value)} must be {2 * n} hex characters")
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise self.fail(
                where, f"= {json.dumps(value)} must be {2 * n} hex characters"
            ) from None


def _parse_time(r: _Reader, value: Any) -> int:
    if type(value) is not str or not (m := _RFC3339.match(value)):
        raise r.fail(
            "genesis_time",
            f'= {json.dumps(value)} must be RFC 3339 UTC like "2026-11-26T00:00:00Z"',
        )
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    millis = int((m.group(7) or "0").ljust(3, "0"))
    try:
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
        if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 60):
            raise ValueError
    except (ValueError, OverflowError):
        raise r.fail(
            "genesis_time", f"= {json.dumps(value)} is not a valid date and time"
        ) from None
    return seconds * 1000 + millis


def _parse_params(r: _Reader, raw: Any) -> ChainParams:
    raw = r.obj(raw if raw is not None else {}, "params", set(DEFAULT_PARAMS), set())
    merged = {**DEFAULT_PARAMS, **raw}
    values: dict[str, Any] = {}
    for name, value in merged.items():
        where = f"params.{name}"
        if name in _QUOTE_PARAMS:
            values[name] = r.amount(value, where, QUOTE_UNIT)
        elif name == "faucet_enabled":
            values[name] = r.boolean(value, where)
        else:
            lo = 0 if name in _ZERO_PARAMS else 1
            values[name] = r.integer(value, where, lo, 2**32 - 1 if "ms" not in name else 2**63)
    if values["builder_bid_proposer_ppm"] > 1_000_000:
        raise r.fail(
            "params.builder_bid_proposer_ppm",
            f"= {values['builder_bid_proposer_ppm']} is out of range; allowed 1 to 1000000 "
            "(the proposer's share of a winning bid in ppm; the insurance fund gets the rest)",
        )
    for name, most in (
        ("max_inclusion_txs", MAX_INCLUSION_TXS),
        ("max_inclusion_bytes", MAX_INCLUSION_BYTES),
    ):
        if values[name] > most:
            raise r.fail(
                f"params.{name}",
                f"= {values[name]} is out of range; allowed 1 to {most} (an inclusion list "
                "travels in a vote extension, at most 64 KiB with the prices)",
            )
    if values["power_unit"] < 1:
        raise r.fail(
            "params.power_unit",
            f"= {json.dumps(merged['power_unit'])} must be at least 0.000001 (the stake, in "
            "quote, of one unit of voting power)",
        )
    if values["max_validators"] > MAX_VALIDATORS:
        raise r.fail(
            "params.max_validators",
            f"= {values['max_validators']} is out of range; allowed 1 to {MAX_VALIDATORS}",
        )
    for name in ("slash_double_sign_ppm", "slash_downtime_ppm"):
        if values[name] > 1_000_000:
            raise r.fail(
                f"params.{name}",
                f"= {values[name]} is out of range; allowed 0 to 1000000 (the share of the "
                "stake slashed, in ppm)",
            )
    if values["commission_max_rise_ppm"] > 1_000_000:
        raise r.fail(
            "params.commission_max_rise_ppm",
            f"= {values['commission_max_rise_ppm']} is out of range; allowed 0 to 1000000 "
            "(the most a validator's commission may rise at once, in ppm)",
        )
    if values["downtime_window"] > MAX_DOWNTIME_WINDOW:
        raise r.fail(
            "params.downtime_window",
            f"= {values['downtime_window']} is out of range; allowed 1 to {MAX_DOWNTIME_WINDOW}",
        )
    if values["downtime_max_missed"] >= values["downtime_window"]:
        raise r.fail(
            "params.downtime_max_missed",
            f"= {values['downtime_max_missed']} must be below params.downtime_window = "
            f"{values['downtime_window']} (a validator is jailed for missing more than this "
            "many of the window's commits)",
        )
    if values["max_tx_bytes"] > 64 * 1024:
        raise r.fail(
            "params.max_tx_bytes", f"= {values['max_tx_bytes']} is out of range; allowed 1 to 65536"
        )
    return ChainParams(**values)


_MARKET_KEYS = {
    "symbol", "tick_size", "lot_size", "initial_margin_ppm", "maintenance_margin_ppm",
    "maker_fee_ppm", "taker_fee_ppm", "liquidation_fee_ppm", "funding_interval_blocks",
    "max_funding_rate_ppm", "impact_notional", "price_band_ppm", "max_oracle_move_ppm",
    "initial_oracle_price",
}  # fmt: skip
_SYMBOL = re.compile(r"^[A-Z0-9]{1,12}-PERP$")


def _parse_market(r: _Reader, raw: Any, index: int) -> MarketParams:
    w = f"markets[{index}]"
    raw = r.obj(raw, w, _MARKET_KEYS, _MARKET_KEYS)
    symbol = r.text(raw["symbol"], f"{w}.symbol", 20)
    if not _SYMBOL.match(symbol):
        raise r.fail(
            f"{w}.symbol",
            f'= "{symbol}" must look like "BTC-PERP" (capitals and digits, then -PERP)',
        )
    tick = raw["tick_size"]
    lot = raw["lot_size"]
    # The smallest notional step (one tick times one lot) must be a whole number of micro-units.
    for where, text in ((f"{w}.tick_size", tick), (f"{w}.lot_size", lot)):
        r.amount(text, where, "0.000000000001", lo=1)
    quantum_micro = (
        Decimal(normalize(tick, "tick_size")) * Decimal(normalize(lot, "lot_size")) * QUOTE_MICRO
    )
    if quantum_micro != quantum_micro.to_integral_value():
        raise r.fail(
            w,
            f"tick_size × lot_size is {format(quantum_micro.normalize(), 'f')} micro-units of quote; "
            "it must be a whole number (make the tick or the lot larger)",
        )
    quantum = int(quantum_micro)
    ppm = PPM
    im = r.integer(raw["initial_margin_ppm"], f"{w}.initial_margin_ppm", 1, ppm)
    mm = r.integer(raw["maintenance_margin_ppm"], f"{w}.maintenance_margin_ppm", 1, ppm)
    if mm >= im:
        raise r.fail(
            f"{w}.maintenance_margin_ppm", f"= {mm} must be less than initial_margin_ppm = {im}"
        )
    taker = r.integer(raw["taker_fee_ppm"], f"{w}.taker_fee_ppm", 0, 100_000)
    maker = r.integer(raw["maker_fee_ppm"], f"{w}.maker_fee_ppm", -taker, 100_000)
    liq_fee = r.integer(raw["liquidation_fee_ppm"], f"{w}.liquidation_fee_ppm", 0, mm)
    normalized_tick = normalize(tick, "tick_size")
    price = r.amount(
        raw["initial_oracle_price"], f"{w}.initial_oracle_price", normalized_tick, lo=1
    )
    return MarketParams(
        market_id=index,
        symbol=symbol,
        tick_size=normalized_tick,
        lot_size=normalize(lot, "lot_size"),
        quantum=quantum,
        initial_margin_ppm=im,
        maintenance_margin_ppm=mm,
        maker_fee_ppm=maker,
        taker_fee_ppm=taker,
        liquidation_fee_ppm=liq_fee,
        funding_interval_blocks=r.integer(
            raw["funding_interval_blocks"], f"{w}.funding_interval_blocks", 1, 10_000_000
        ),
        max_funding_rate_ppm=r.integer(
            raw["max_funding_rate_ppm"], f"{w}.max_funding_rate_ppm", 0, ppm
        ),
        impact_notional=r.amount(raw["impact_notional"], f"{w}.impact_notional", QUOTE_UNIT, lo=1),
        price_band_ppm=r.integer(raw["price_band_ppm"], f"{w}.price_band_ppm", 1, ppm),
        max_oracle_move_ppm=r.integer(
            raw["max_oracle_move_ppm"], f"{w}.max_oracle_move_ppm", 1, ppm
        ),
        initial_oracle_price=price,
    )


def parse_genesis(doc: Any, source: str = "genesis.json") -> Genesis:
    """Validates parsed genesis JSON. Raises ConfigError with a one-line message naming the key."""
    r = _Reader(source)
    top_keys = {
        "chain_id",
        "genesis_time",
        "validators",
        "params",
        "markets",
        "accounts",
        "insurance_fund",
    }
    doc = r.obj(doc, "", top_keys, top_keys - {"params", "insurance_fund"})
    chain_id = r.text(doc["chain_id"], "chain_id", MAX_CHAIN_ID_CHARS)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", chain_id):
        raise r.fail("chain_id", f'= "{chain_id}" may hold only letters, digits, ".", "_" and "-"')
    genesis_time_ms = _parse_time(r, doc["genesis_time"])

    raw_validators = doc["validators"]
    if not isinstance(raw_validators, list) or not raw_validators:
        raise r.fail("validators", "must be a non-empty list")
    validators = []
    seen_keys: set[bytes] = set()
    for i, raw in enumerate(raw_validators):
        w = f"validators[{i}]"
        raw = r.obj(raw, w, {"name", "public_key", "power"}, {"public_key", "power"})
        public_key = r.hex_bytes(raw["public_key"], f"{w}.public_key", 32)
        if public_key in seen_keys:
            raise r.fail(f"{w}.public_key", "appears twice; each validator needs its own key")
        seen_keys.add(public_key)
        power = r.integer(raw["power"], f"{w}.power", 1, 2**50)
        name = raw.get("name", f"validator{i}")
        validators.append(GenesisValidator(r.text(name, f"{w}.name", 64), public_key, power))

    params = _parse_params(r, doc.get("params"))
    _check_genesis_stake(r, validators, params)

    raw_markets = doc["markets"]
    if not isinstance(raw_markets, list) or not 1 <= len(raw_markets) <= MAX_MARKETS:
        raise r.fail("markets", f"must be a list of 1 to {MAX_MARKETS} markets")
    markets = tuple(_parse_market(r, m, i) for i, m in enumerate(raw_markets))
    symbols = [m.symbol for m in markets]
    for i, s in enumerate(symbols):
        if s in symbols[:i]:
            raise r.fail(f"markets[{i}].symbol", f'= "{s}" is listed twice')

    raw_accounts = doc["accounts"]
    if not isinstance(raw_accounts, list):
        raise r.fail("accounts", "must be a list")
    accounts = []
    seen_addresses: set[bytes] = set()
    for i, raw in enumerate(raw_accounts):
        w = f"accounts[{i}]"
        raw = r.obj(raw, w, {"address", "balance", "name"}, {"address", "balance"})
        address = r.hex_bytes(raw["address"], f"{w}.address", 20)
        if address in seen_addresses:
            raise r.fail(f"{w}.address", "appears twice")
        seen_addresses.add(address)
        accounts.append(
            GenesisAccount(address, r.amount(raw["balance"], f"{w}.balance", QUOTE_UNIT))
        )
    # Canonical order: by address, so the same set of accounts always hashes the same.
    accounts.sort(key=lambda a: a.address)
    insurance = r.amount(doc.get("insurance_fund", "0"), "insurance_fund", QUOTE_UNIT)
    return Genesis(
        chain_id=chain_id,
        genesis_time_ms=genesis_time_ms,
        validators=tuple(validators),
        params=params,
        markets=markets,
        accounts=tuple(accounts),
        insurance_fund=insurance,
    )


def _check_genesis_stake(
    r: _Reader, validators: list[GenesisValidator], params: ChainParams
) -> None:
    """The genesis validators are a set the staking rules would choose: at most
    ``max_validators``, each with at least ``min_validator_power`` and a self-bond (its
    power × ``power_unit``) of at least ``min_self_bond``."""
    if len(validators) > params.max_validators:
        raise r.fail(
            "validators",
            f"lists {len(validators)} validators, more than params.max_validators = "
            f"{params.max_validators}",
        )
    total = 0
    for i, v in enumerate(validators):
        if v.power < params.min_validator_power:
            raise r.fail(
                f"validators[{i}].power",
                f"= {v.power} is below params.min_validator_power = {params.min_validator_power}",
            )
        bond = v.power * params.power_unit
        if bond < params.min_self_bond:
            raise r.fail(
                f"validators[{i}].power",
                f"= {v.power} is backed by a self-bond of {bond} micro-units (power × "
                f"params.power_unit), below params.min_self_bond = {params.min_self_bond}",
            )
        total += bond
    if total > MAX_TOTAL_POWER:
        raise r.fail(
            "validators",
            f"hold {total} micro-units of stake (power × params.power_unit), more than "
            f"{MAX_TOTAL_POWER}",
        )


def load_genesis(path: Path) -> Genesis:
    """Reads and validates a genesis file. Raises ConfigError with a one-line message."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    return parse_genesis(doc, str(path))


def genesis_to_json(doc: dict[str, Any]) -> str:
    """Pretty JSON text for a genesis document (validated first)."""
    parse_genesis(doc)
    return json.dumps(doc, indent=2) + "\n"
