"""The exchange's rules as a plain Python model: an executable specification of
:class:`appchaind.exchange.ExchangeApp`, written for a reader, not for speed.

(long because: a specification is read top to bottom as one model, its rules in the order
a block runs them; split over files, the reader would chase one state through many.)

It takes the application's inputs (the genesis, then decided blocks: height, time, decoded
signed txs, and decided oracle prices or the previous commit's oracle votes) and gives its
outputs: one result per tx (code, log, events), the block's own events, and the state
(:meth:`Exchange.state_summary`). It does not compute the app hash: how the state is
committed to is not a rule of the exchange.

Units, as everywhere in appchaind: prices in ticks, sizes in lots, collateral in integer
micro-units of the quote asset, fractions in parts per million. A position of ``s`` lots at
``p`` ticks is worth ``s × p × quantum`` micro-units. Every rounding goes against the
trader: margin requirements, fees and funding owed round up; rebates, funding received and
payouts round down.

Nothing is cached: every number is computed from the state when a rule needs it. A book is
a list of resting orders in arrival order; matching sorts the crossing makers by price,
and the sort is stable, so arrival order is time priority.

A block runs as :meth:`Exchange.finalize_block` reads:

1. ``update_oracle``: decided prices, or the stake-weighted median of the votes;
2. the txs through ``deliver_tx``: cancels first, then post-only limit orders, then the
   rest, block order kept inside each class;
3. ``expire_orders``, then per market ``fire_triggers``, then per market
   ``sample_premium_and_fund``;
4. ``liquidate_accounts`` (capped, from a start seeded by the previous block hash);
5. ``reduce_only_upkeep``;
6. ``distribute_fees``: the fee pool's new part handed to the validators as rewards (the
   spec has no staking txs: its validators are the genesis set, each with a stake of its
   power × ``power_unit``; how a validator shares its reward is staking's, not the
   exchange's).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, field
from hashlib import sha256
from typing import Any, NamedTuple

from appchaind.chain import codec
from appchaind.chain.codes import Code
from appchaind.chain.crypto import address_of
from appchaind.chain.events import Event
from appchaind.chain.types import Tx
from appchaind.exchange.oracle import MAX_REPORT_RATIO, decode_vote
from appchaind.exchange.txs import (
    CancelAll,
    CancelOrder,
    Faucet,
    PlaceOrder,
    ReplaceOrder,
    Transfer,
    Withdraw,
)
from config.genesis import Genesis, MarketParams

PPM = 1_000_000
#: The funding index counts millionths of a micro-unit per lot.
FUNDING_SCALE = PPM
#: Prices (and order sizes) must be above 0 and below this.
MAX_PRICE = 1 << 62

SELL, BUY = 0, 1
GTC, POST_ONLY, IOC, FOK = 0, 1, 2, 3
LIMIT, MARKET, STOP_MARKET, STOP_LIMIT, TAKE_PROFIT_MARKET, TAKE_PROFIT_LIMIT = range(6)
#: A conditional order's kind: 0 stop-market, 1 stop-limit, 2 take-profit-market,
#: 3 take-profit-limit.
TRIGGER_KIND = {STOP_MARKET: 0, STOP_LIMIT: 1, TAKE_PROFIT_MARKET: 2, TAKE_PROFIT_LIMIT: 3}
#: The client id that ``order`` events give orders leaving the book (not the order's own).
NO_CLIENT_ID = -1
OK = (Code.OK, "")
NOT_FOUND = (Code.ORDER_NOT_FOUND, "no such open order of yours in this market")
DUPLICATE_CLIENT_ID = (
    Code.DUPLICATE_CLIENT_ID,
    "you already have an open order with this client id in this market",
)


# ====================================================================== state


@dataclass
class Position:
    size: int  # lots, long > 0; a closed position is deleted
    funding_index: int  # the market's funding index when the position last settled
    cost: int  # signed micro-units paid for the current size (long > 0): ADL's profit


@dataclass
class Account:
    address: bytes
    balance: int  # micro-units; negative while the positions are worth more
    positions: dict[int, Position] = field(default_factory=dict)
    nonces: list[int] = field(default_factory=list)  # ascending, the most recent ones


@dataclass(eq=False)
class Order:
    """A resting limit order (fields in the app's record order); ``size``: lots left."""

    order_id: int
    owner: bytes
    side: int
    price: int
    time_in_force: int
    reduce_only: bool
    client_id: int
    good_til_block: int  # 0: none; else the last height at which it may rest
    size: int


@dataclass(eq=False)
class Conditional:
    """A stop or take-profit order waiting for the oracle to reach ``trigger_price``."""

    order_id: int
    owner: bytes
    side: int
    kind: int  # a TRIGGER_KIND value
    trigger_price: int
    price: int  # the limit price of the *_LIMIT kinds
    size: int
    time_in_force: int
    reduce_only: bool
    client_id: int
    good_til_block: int

    @property
    def fires_on_rise(self) -> bool:
        """Buy stops and sell take-profits fire when the oracle rises to the trigger;
        sell stops and buy take-profits when it falls to it."""
        return (self.kind in (0, 1)) == (self.side == BUY)


@dataclass
class Market:
    params: MarketParams
    oracle_price: int
    funding_index: int = 0  # micro-units per lot × FUNDING_SCALE, cumulative
    premium_sum: int = 0  # ppm, over the blocks since the last funding tick
    premium_samples: int = 0
    last_funding_rate_ppm: int = 0
    book: list[Order] = field(default_factory=list)  # resting orders, arrival order
    conditionals: list[Conditional] = field(default_factory=list)

    @property
    def market_id(self) -> int:
        return self.params.market_id

    @property
    def quantum(self) -> int:
        return self.params.quantum

    def open_orders(self, owner: bytes) -> list[Order | Conditional]:
        """The owner's resting and conditional orders here, by ascending order id."""
        orders = [o for o in [*self.book, *self.conditionals] if o.owner == owner]
        return sorted(orders, key=lambda o: o.order_id)

    def remove(self, order: Order | Conditional) -> None:
        if isinstance(order, Order):
            self.book.remove(order)
        else:
            self.conditionals.remove(order)


class Health(NamedTuple):
    """An account at the oracle prices: net collateral and requirements (micro-units)."""

    net: int
    initial: int
    maintenance: int


@dataclass
class Result:
    """A tx's outcome: ``code`` 0 if applied; ``log`` says what was wrong."""

    code: int
    log: str = ""
    events: list[Event] = field(default_factory=list)


class Fill(NamedTuple):
    maker: Order
    size: int
    maker_remaining: int  # what the maker still has resting after this fill


class Removal(NamedTuple):
    order: Order
    status: str  # "self_trade" or "vetoed"
    size: int


class Match(NamedTuple):
    """Where a taker's walk through the book comes to (nothing applied yet)."""

    fills: list[Fill]
    removals: list[Removal]
    remaining: int  # lots not filled
    stopped: bool  # it reached max_makers_per_taker with crossing makers left


# ====================================================================== arithmetic


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def requirement(size: int, market: Market, ppm: int) -> int:
    """A margin requirement: |size| × oracle × quantum × ppm / 1e6, rounded up."""
    return ceil_div(abs(size) * market.oracle_price * market.quantum * ppm, PPM)


def fee(notional: int, ppm: int) -> int:
    """A charge (ppm >= 0) rounds up; a rebate (ppm < 0) rounds down."""
    return ceil_div(notional * ppm, PPM) if ppm >= 0 else -(notional * -ppm // PPM)


def funding_owed(position: Position, market: Market) -> int:
    """What the position owes since it last settled (negative: is owed), rounded up."""
    return ceil_div(position.size * (market.funding_index - position.funding_index), FUNDING_SCALE)


def position_size(account: Account, market_id: int) -> int:
    position = account.positions.get(market_id)
    return 0 if position is None else position.size


def only_reduces(held: int, new_size: int) -> bool:
    """Moving a position from ``held`` to ``new_size`` lots only shrinks it."""
    if held > 0:
        return 0 <= new_size < held
    if held < 0:
        return held < new_size <= 0
    return False


def reduces(side: int, held: int) -> bool:
    """An order on ``side`` goes against a position of ``held`` lots."""
    return held < 0 if side == BUY else held > 0


def maker_after(market: Market, maker: Order, lots: int, held: int, cash: int) -> tuple[int, int]:
    """The maker's position and cash after filling ``lots`` at its price, with its fee."""
    notional = maker.price * lots * market.quantum
    paid = fee(notional, market.params.maker_fee_ppm)
    if maker.side == BUY:
        return held + lots, cash - notional - paid
    return held - lots, cash + notional - paid


def execution_class(body: object) -> int:
    """Within a block: cancels (0) first, then post-only limit orders (1), then the rest."""
    if type(body) in (CancelOrder, CancelAll):
        return 0
    order = body.order if type(body) is ReplaceOrder else body
    if type(order) is PlaceOrder and order.time_in_force == POST_ONLY and order.order_type == LIMIT:
        return 1
    return 2


# ====================================================================== the exchange


class Exchange:
    """The whole state of the exchange, and the rules that move it."""

    def __init__(self, genesis: Genesis) -> None:
        self.params = genesis.params
        self.chain_id = genesis.chain_id
        self.height = 0
        self.time_ms = genesis.genesis_time_ms
        self.next_order_id = 1  # ids of orders, and the sequence of fired conditional orders
        self.markets = [Market(p, p.initial_oracle_price) for p in genesis.markets]
        self.accounts = {a.address: Account(a.address, a.balance) for a in genesis.accounts}
        self.insurance_fund = genesis.insurance_fund
        self.fee_pool = 0
        #: The part of the fee pool handed to the validators as rewards.
        self.rewards_allocated = 0
        self.validators = genesis.validators
        self.withdrawn = 0
        self.faucet_total = 0
        self.genesis_total = genesis.insurance_fund + sum(a.balance for a in genesis.accounts)
        #: Accounts whose position moved in this block (reduce-only upkeep looks at them).
        self.position_changed: set[bytes] = set()
        #: What happened so far in the tx being delivered, or at the end of the block.
        self.events: list[Event] = []

    def emit(self, kind: str, **attributes: Any) -> None:
        self.events.append(Event(kind, attributes))

    def emit_order(self, market: Market, order_id: int, owner: bytes, client_id: int,
                   status: str, size: int) -> None:  # fmt: skip
        self.emit("order", market=market.market_id, order_id=order_id, owner=owner,
                  client_id=client_id, status=status, size=size)  # fmt: skip

    def emit_removed(
        self, market: Market, order: Order | Conditional, status: str, size: int
    ) -> None:
        """An order left the book (cancelled, expired, self_trade, vetoed, resized)."""
        self.emit_order(market, order.order_id, order.owner, NO_CLIENT_ID, status, size)

    # ------------------------------------------------------------------ margin

    def health(self, account: Account) -> Health:
        """Net collateral = balance + Σ size × oracle × quantum − unsettled funding;
        requirements = Σ over markets, each rounded up."""
        net, initial, maintenance = account.balance, 0, 0
        for market_id, position in account.positions.items():
            market = self.markets[market_id]
            net += position.size * market.oracle_price * market.quantum
            net -= funding_owed(position, market)
            initial += requirement(position.size, market, market.params.initial_margin_ppm)
            maintenance += requirement(position.size, market, market.params.maintenance_margin_ppm)
        return Health(net, initial, maintenance)

    def health_after(self, account: Account, market_id: int, new_size: int, cash: int) -> Health:
        """The health if the position in ``market_id`` were ``new_size`` lots and the
        balance moved by ``cash`` (a prospective fill; funding owed stays what it is)."""
        now = self.health(account)
        market = self.markets[market_id]
        held = position_size(account, market_id)
        im, mm = market.params.initial_margin_ppm, market.params.maintenance_margin_ppm
        return Health(
            now.net + cash + (new_size - held) * market.oracle_price * market.quantum,
            now.initial - requirement(held, market, im) + requirement(new_size, market, im),
            now.maintenance - requirement(held, market, mm) + requirement(new_size, market, mm),
        )

    def free_collateral(self, account: Account) -> int:
        """What may leave the account: net collateral minus the initial requirement."""
        state = self.health(account)
        return state.net - state.initial

    def liquidatable(self, account: Account) -> bool:
        """Strictly below maintenance margin."""
        state = self.health(account)
        return state.net < state.maintenance

    def bankruptcy_price(self, account: Account, market_id: int, close_size: int) -> int:
        """The price at which closing ``close_size`` lots (signed like the position) uses up
        the share of the net collateral that their maintenance requirement stands for;
        rounded in the account's favour (a long's up, a short's down); at least 1 tick."""
        state = self.health(account)
        market = self.markets[market_id]
        closed = requirement(close_size, market, market.params.maintenance_margin_ppm)
        scale = (state.maintenance or 1) * abs(close_size) * market.quantum
        share = state.net * closed // scale
        return max(
            market.oracle_price - share if close_size > 0 else market.oracle_price + share, 1
        )

    # ------------------------------------------------------------------ money

    def open_account(self, address: bytes, amount: int) -> Account:
        account = self.accounts.setdefault(address, Account(address, 0))
        account.balance += amount
        return account

    def settle_funding(self, account: Account) -> int:
        """Every position pays what it owes into the insurance fund (or is paid from it)
        and restarts at its market's index. Returns what the account paid. (Settlement is
        lazy, so receivers may settle before payers: the fund can go below zero.)"""
        paid = 0
        for market_id, position in account.positions.items():
            paid += funding_owed(position, self.markets[market_id])
            position.funding_index = self.markets[market_id].funding_index
        account.balance -= paid
        self.insurance_fund += paid
        return paid

    def settle_funding_and_say(self, account: Account) -> None:
        paid = self.settle_funding(account)
        if paid:
            self.emit("funding_payment", account=account.address, amount=paid)

    def trade(
        self, account: Account, market: Market, delta: int, price: int, paid_fee: int
    ) -> None:
        """The account buys ``delta`` lots (sells, if negative) at ``price`` ticks and pays
        ``paid_fee``. The position's cost grows with it, shrinks pro rata (truncated toward
        zero) when it is reduced, and restarts at the trade's value when it flips."""
        notional = delta * price * market.quantum
        account.balance -= notional + paid_fee
        position = account.positions.get(market.market_id)
        if position is None:
            account.positions[market.market_id] = Position(delta, market.funding_index, notional)
        elif position.size + delta == 0:
            del account.positions[market.market_id]
        else:
            held, new_size = position.size, position.size + delta
            if (held > 0) == (delta > 0):
                position.cost += notional
            elif (held > 0) == (new_size > 0):
                kept = abs(position.cost) * abs(new_size) // abs(held)
                position.cost = kept if position.cost >= 0 else -kept
            else:
                position.cost = new_size * price * market.quantum
            position.size = new_size
        self.position_changed.add(account.address)

    def settle_fill(self, market: Market, taker: Account, taker_side: int, fill: Fill,
                    taker_fee_ppm: int, liquidation: bool) -> tuple[int, int]:  # fmt: skip
        """Exchange the fill's lots at the maker's price; fees into the fee pool (a
        liquidation's fill pays the maker no rebate: its taker pays no fee, and the fee
        pool, the stakers', must not shrink). An account whose position in this market has
        unsettled funding settles all of it first."""
        maker = self.accounts[fill.maker.owner]
        notional = fill.maker.price * fill.size * market.quantum
        maker_ppm = market.params.maker_fee_ppm
        maker_fee = fee(notional, 0 if liquidation and maker_ppm < 0 else maker_ppm)
        taker_fee = fee(notional, taker_fee_ppm)
        for account in (maker, taker):
            position = account.positions.get(market.market_id)
            if position is not None and position.funding_index != market.funding_index:
                self.settle_funding(account)
        delta = fill.size if taker_side == BUY else -fill.size
        self.trade(taker, market, delta, fill.maker.price, taker_fee)
        self.trade(maker, market, -delta, fill.maker.price, maker_fee)
        self.fee_pool += maker_fee + taker_fee
        return maker_fee, taker_fee

    def charge_to_insurance(self, account: Account, amount: int) -> None:
        """A liquidation fee into the fund (negative: the fund covers a shortfall)."""
        account.balance -= amount
        self.insurance_fund += amount

    # ------------------------------------------------------------------ blocks

    def finalize_block(
        self,
        height: int,
        time_ms: int,
        txs: list[Tx],
        *,
        prev_block_hash: bytes = b"",
        oracle_prices: list[int] | None = None,
        oracle_votes: list[tuple[int, bytes]] | None = None,
        total_power: int | None = None,
    ) -> tuple[list[Result], list[Event]]:
        """Execute a decided block: one result per tx (block order), and the block's own
        events."""
        assert height == self.height + 1
        self.height, self.time_ms = height, time_ms
        self.events = []
        self.update_oracle(oracle_prices, oracle_votes, total_power)
        block_events = self.events
        results: list[Result | None] = [None] * len(txs)
        for wanted in (0, 1, 2):
            for i, tx in enumerate(txs):
                if execution_class(tx.body) == wanted:
                    self.events = []
                    results[i] = self.deliver_tx(tx)
        self.events = block_events
        self.expire_orders()
        for market in self.markets:
            self.fire_triggers(market)
        for market in self.markets:
            self.sample_premium_and_fund(market)
        self.liquidate_accounts(prev_block_hash)
        self.reduce_only_upkeep()
        self.distribute_fees()
        return [r for r in results if r is not None], block_events

    def distribute_fees(self) -> None:
        """The fees not yet handed out go to the validators pro rata to stake, each share
        rounded down; the remainder waits for the next block. The fees stay in the fee
        pool until the stakers collect them (never in these blocks)."""
        new = self.fee_pool - self.rewards_allocated
        stakes = [v.power * self.params.power_unit for v in self.validators if v.power > 0]
        if new <= 0 or not stakes:
            return
        given = sum(new * stake // sum(stakes) for stake in stakes)
        self.rewards_allocated += given
        if given:
            self.emit("rewards_distributed", amount=given, validators=len(stakes))

    # ------------------------------------------------------------------ oracle

    def update_oracle(self, decided: list[int] | None, votes: list[tuple[int, bytes]] | None,
                      total_power: int | None) -> None:  # fmt: skip
        """Decided prices (clamped into range), else the votes' stake-weighted median of
        each market at least 2/3 of the power reported, moved at most max_oracle_move_ppm;
        else nothing moves. An ``oracle`` event for each price that changed."""
        if decided is not None:
            total, rows = 0, [(min(max(p, 1), MAX_PRICE - 1), 0) for p in decided]
        elif votes:
            total = total_power if total_power is not None else sum(p for p, _ in votes)
            rows = self.oracle_median(votes, total)
        else:
            return
        for market, (price, reported) in zip(self.markets, rows, strict=True):
            if price != market.oracle_price:
                self.emit("oracle", market=market.market_id, price=price,
                          previous=market.oracle_price, reported_power=reported,
                          total_power=total)  # fmt: skip
                market.oracle_price = price

    def oracle_median(
        self, votes: list[tuple[int, bytes]], total_power: int
    ) -> list[tuple[int, int]]:
        """Per market: (new price, reported power). The median is the lowest price at which
        the reports' cumulative power reaches half of the reported power."""
        current = [m.oracle_price for m in self.markets]
        reports: list[list[tuple[int, int]]] = [[] for _ in current]
        for power, extension in votes:
            for market_id, price in valid_oracle_vote(extension, current) if power > 0 else []:
                reports[market_id].append((price, power))
        rows = []
        for market, previous, entries in zip(self.markets, current, reports, strict=True):
            reported = sum(power for _, power in entries)
            price = previous
            if entries and 3 * reported >= 2 * total_power:
                cumulative = 0
                for candidate, power in sorted(entries):
                    cumulative += power
                    if 2 * cumulative >= reported:
                        price = candidate
                        break
                move = previous * market.params.max_oracle_move_ppm // PPM
                price = max(1, previous - move, min(previous + move, price))
            rows.append((price, reported))
        return rows

    # ------------------------------------------------------------------ txs

    def envelope_problem(self, tx: Tx) -> Result | None:
        params = self.params
        if tx.chain_id != self.chain_id:
            return Result(
                Code.WRONG_CHAIN, f"tx is for chain {tx.chain_id!r}, this is {self.chain_id!r}"
            )
        last = self.height + params.max_tx_lifetime_blocks
        if not self.height <= tx.expiry_height <= last:
            return Result(
                Code.EXPIRED,
                f"expiry_height {tx.expiry_height} must be in [{self.height}, {last}] at "
                f"height {self.height}",
            )
        low = self.time_ms - params.nonce_window_past_ms
        high = self.time_ms + params.nonce_window_future_ms
        if not low <= tx.nonce <= high:
            return Result(
                Code.NONCE_OUT_OF_WINDOW,
                f"nonce {tx.nonce} is outside [{low}, {high}] (block time ± window); "
                "use the current time in milliseconds",
            )
        return None

    def nonce_refusal(self, account: Account, nonce: int) -> str | None:
        """A nonce must be new to the account and, once it keeps max_recent_nonces of them,
        above the smallest kept (which it then replaces)."""
        kept = self.params.max_recent_nonces
        if nonce in account.nonces:
            return f"nonce {nonce} was already used by this account (replayed tx)"
        if len(account.nonces) >= kept and nonce < account.nonces[0]:
            return (
                f"nonce {nonce} is older than the account's {kept} most recent "
                f"nonces (smallest kept: {account.nonces[0]}); use a fresh timestamp"
            )
        return None

    def deliver_tx(self, tx: Tx) -> Result:
        """Envelope, sender (a faucet tx opens an account), nonce (recorded even if the
        body then fails), funding of the sender's positions, body."""
        problem = self.envelope_problem(tx)
        if problem is not None:
            return problem
        body, address = tx.body, address_of(tx.sender)
        account = self.accounts.get(address)
        if account is None:
            if not (type(body) is Faucet and self.params.faucet_enabled):
                return Result(Code.UNKNOWN_ACCOUNT, "the sender has no account; fund it first")
            account = self.open_account(address, 0)
        refusal = self.nonce_refusal(account, tx.nonce)
        if refusal is not None:
            return Result(Code.NONCE_REPLAYED, refusal)
        account.nonces = sorted([*account.nonces, tx.nonce])[-self.params.max_recent_nonces :]
        if account.positions:
            self.settle_funding_and_say(account)
        rules = {
            PlaceOrder: self.place_order, CancelOrder: self.cancel_order,
            CancelAll: self.cancel_all, ReplaceOrder: self.replace_order,
            Transfer: self.apply_transfer, Withdraw: self.apply_withdrawal,
            Faucet: self.apply_faucet,
        }  # fmt: skip
        rule = rules.get(type(body))
        if rule is None:
            return Result(Code.MALFORMED, f"unknown tx kind {type(body).__name__}")
        code, log = rule(account, body)
        return Result(code, log, self.events)

    # ------------------------------------------------------------------ orders

    def price_band(self, market: Market) -> tuple[int, int]:
        """Acceptable limit prices: the oracle ± price_band_ppm (low rounded up, high down).
        They are also the protection prices of market orders: a sell's low, a buy's high."""
        band, oracle = market.params.price_band_ppm, market.oracle_price
        low = max(1, ceil_div(oracle * (PPM - band), PPM))
        high = min(MAX_PRICE - 1, oracle * (PPM + band) // PPM)
        return low, high

    def under_order_cap(self, market: Market, owner: bytes, replacing: bool) -> bool:
        """Resting plus conditional orders per account and market are capped (a
        replacement's old order does not count)."""
        return len(market.open_orders(owner)) - replacing < self.params.max_open_orders_per_account

    def client_id_in_use(self, market: Market, owner: bytes, client_id: int) -> bool:
        return any(o.client_id == client_id for o in market.open_orders(owner))

    def place_order(
        self, account: Account, order: PlaceOrder, dry_run: bool = False
    ) -> tuple[int, str]:
        """Check an order and place it. ``dry_run`` (a replacement's first step): only the
        checks that do not need the book to take the order; no order id is used."""
        if order.market_id >= len(self.markets):
            return Code.UNKNOWN_MARKET, f"market {order.market_id} does not exist"
        market = self.markets[order.market_id]
        if order.side > 1:
            return Code.INVALID_ORDER, "side must be 0 (sell) or 1 (buy)"
        if not 0 < order.size < MAX_PRICE:
            return Code.INVALID_ORDER, "size must be at least one lot"
        if order.time_in_force > FOK or order.order_type > TAKE_PROFIT_LIMIT:
            return Code.INVALID_ORDER, "unknown time in force or order type"
        if order.good_til_block and order.good_til_block < self.height:
            return Code.INVALID_ORDER, f"good_til_block {order.good_til_block} has already passed"
        price, tif = order.price, order.time_in_force
        if order.order_type == LIMIT:
            low, high = self.price_band(market)
            if not low <= price <= high:
                return (
                    Code.PRICE_OUTSIDE_BAND,
                    f"price {price} is outside the band [{low}, {high}] around the oracle "
                    f"{market.oracle_price}",
                )
        elif order.order_type in (STOP_LIMIT, TAKE_PROFIT_LIMIT):
            if not 0 < price < MAX_PRICE:
                return Code.INVALID_ORDER, "limit price must be a positive number of ticks"
        else:  # the market kinds: at once (IOC, or FOK), bounded by the protection price
            tif, price = max(tif, IOC), self.price_band(market)[order.side]
        order_id = self.next_order_id
        if not dry_run:
            self.next_order_id += 1
        if order.order_type >= STOP_MARKET:
            return self.place_conditional(account, market, order, order_id, tif, dry_run)
        return self.submit_order(
            account, market, order_id, order.side, price, order.size, tif, order.reduce_only,
            order.client_id, order.good_til_block, dry_run,
        )  # fmt: skip

    def place_conditional(self, account: Account, market: Market, order: PlaceOrder,
                          order_id: int, tif: int, dry_run: bool) -> tuple[int, str]:  # fmt: skip
        """Hold a stop / take-profit order. Neither margin nor reduce-only is checked until
        it fires."""
        if not 0 < order.trigger_price < MAX_PRICE:
            return Code.INVALID_ORDER, "trigger_price must be a positive number of ticks"
        if not self.under_order_cap(market, account.address, dry_run):
            return Code.TOO_MANY_OPEN_ORDERS, "open order limit reached in this market"
        if dry_run:
            return OK
        if self.client_id_in_use(market, account.address, order.client_id):
            return DUPLICATE_CLIENT_ID
        market.conditionals.append(
            Conditional(
                order_id, account.address, order.side, TRIGGER_KIND[order.order_type],
                order.trigger_price, order.price, order.size, tif, order.reduce_only,
                order.client_id, order.good_til_block,
            )
        )  # fmt: skip
        self.emit_order(
            market, order_id, account.address, order.client_id, "conditional", order.size
        )
        return OK

    def submit_order(
        self, account: Account, market: Market, order_id: int, side: int, price: int, size: int,
        tif: int, reduce_only: bool, client_id: int, good_til_block: int, dry_run: bool = False,
    ) -> tuple[int, str]:  # fmt: skip
        """Reduce-only, the open-order cap and initial margin; then the book: a duplicate
        client id or a post-only order that would take is refused, the order matches, and
        what is left rests (GTC, post-only) or is cancelled (IOC, FOK, the maker limit)."""
        held = position_size(account, market.market_id)
        if reduce_only:
            if not reduces(side, held):
                return Code.REDUCE_ONLY_REJECTED, "reduce-only order would not reduce your position"
            size = min(size, abs(held))
        if tif < IOC and not self.under_order_cap(market, account.address, dry_run):
            return Code.TOO_MANY_OPEN_ORDERS, "open order limit reached in this market"
        # Unless it only reduces the position, the order must leave the account at or above
        # initial margin if it filled in full at its limit price, paying the taker fee.
        new_size = held + size if side == BUY else held - size
        if not only_reduces(held, new_size):
            notional = price * size * market.quantum
            cash = notional if side == SELL else -notional
            after = self.health_after(
                account, market.market_id, new_size, cash - fee(notional, market.params.taker_fee_ppm)
            )  # fmt: skip
            if after.net < after.initial:
                return (
                    Code.INSUFFICIENT_MARGIN,
                    f"filled in full at {price} ticks this order would leave net collateral "
                    f"{after.net} below the initial margin {after.initial} (micro-units)",
                )
        if dry_run:
            return OK

        def say(status: str, lots: int) -> None:
            self.emit_order(market, order_id, account.address, client_id, status, lots)

        crosses = bool(self.crossing_makers(market, side, price))
        refusal = None
        if tif < IOC and self.client_id_in_use(market, account.address, client_id):
            refusal = DUPLICATE_CLIENT_ID
        elif crosses and tif == POST_ONLY:
            refusal = (Code.POST_ONLY_WOULD_TAKE, "post-only order would take liquidity")
        match = self.match_order(market, account.address, side, price, size)
        # (A fill-or-kill order that crosses nothing is cancelled with code 0, not refused:
        # the app's book plans a FOK taker's fills only when the book crosses it.)
        if refusal is None and tif == FOK and crosses and match.remaining:
            refusal = (Code.FOK_NOT_FILLED, "fill-or-kill order could not fill completely")
        if refusal is not None:
            say("rejected", size)
            return refusal
        self.apply_match(market, match, account, order_id, side, market.params.taker_fee_ppm)
        if not match.remaining:
            say("filled", 0)
        elif match.stopped or tif >= IOC:
            say("cancelled", 0)
        else:
            market.book.append(Order(order_id, account.address, side, price, tif, reduce_only,
                                     client_id, good_til_block, match.remaining))  # fmt: skip
            say("resting", match.remaining)
        return OK

    # ------------------------------------------------------------------ matching

    def crossing_makers(self, market: Market, taker_side: int, limit: int) -> list[Order]:
        """The resting orders a taker on ``taker_side`` with limit price ``limit`` reaches:
        best price first, then oldest first (the sort is stable)."""
        if taker_side == BUY:
            return sorted((o for o in market.book if o.side == SELL and o.price <= limit),
                          key=lambda o: o.price)  # fmt: skip
        return sorted((o for o in market.book if o.side == BUY and o.price >= limit),
                      key=lambda o: -o.price)  # fmt: skip

    def match_order(self, market: Market, taker: bytes, side: int, limit: int, size: int) -> Match:
        """Price-time priority; every maker reached counts against max_makers_per_taker.
        Self-trade prevention expires the maker: a maker of the taker's own account leaves
        the book unfilled. Any other maker fills only what :meth:`maker_allowance` allows;
        one allowed less than the fill is removed ("vetoed") after filling what it was."""
        fills: list[Fill] = []
        removals: list[Removal] = []
        remaining, makers_left = size, self.params.max_makers_per_taker
        for maker in self.crossing_makers(market, side, limit):
            if makers_left == 0:
                return Match(fills, removals, remaining, stopped=True)
            makers_left -= 1
            if maker.owner == taker:
                removals.append(Removal(maker, "self_trade", maker.size))
                continue
            lots = min(maker.size, remaining)
            allowed = self.maker_allowance(market, maker, lots, fills)
            if allowed == lots:
                fills.append(Fill(maker, lots, maker.size - lots))
            else:
                if allowed:
                    fills.append(Fill(maker, allowed, 0))
                removals.append(Removal(maker, "vetoed", maker.size - allowed))
            remaining -= allowed
            if not remaining:
                break
        return Match(fills, removals, remaining, stopped=False)

    def maker_allowance(self, market: Market, maker: Order, lots: int, earlier: list[Fill]) -> int:
        """How many of ``lots`` the maker may fill: all, or none if the fill would leave its
        account below initial margin without only reducing its position; a reduce-only
        maker never beyond its position, nor on the wrong side. The taker's earlier fills
        with the same account count as if they were settled."""
        account = self.accounts[maker.owner]
        held, cash = position_size(account, market.market_id), 0
        for fill in earlier:
            if fill.maker.owner == maker.owner:
                held, cash = maker_after(market, fill.maker, fill.size, held, cash)
        if maker.reduce_only:
            if not reduces(maker.side, held):
                return 0
            lots = min(lots, abs(held))
        new_size, cash = maker_after(market, maker, lots, held, cash)
        if not only_reduces(held, new_size):
            after = self.health_after(account, market.market_id, new_size, cash)
            if after.net < after.initial:
                return 0
        return lots

    def apply_match(self, market: Market, match: Match, taker: Account, taker_order_id: int,
                    side: int, taker_fee_ppm: int, liquidation: bool = False) -> None:  # fmt: skip
        """Take the filled and removed makers out of the book and settle the fills. Events:
        fills then removals for an order, removals then fills for a liquidation."""
        for fill in match.fills:
            fill.maker.size -= fill.size
        for removal in match.removals:
            removal.order.size = 0
        market.book = [o for o in market.book if o.size > 0]
        if not liquidation:
            self.say_fills(market, match, taker, taker_order_id, side, taker_fee_ppm, False)
        for removal in match.removals:
            self.emit_removed(market, removal.order, removal.status, removal.size)
        if liquidation:
            self.say_fills(market, match, taker, taker_order_id, side, taker_fee_ppm, True)

    def say_fills(self, market: Market, match: Match, taker: Account, taker_order_id: int,
                  side: int, taker_fee_ppm: int, liquidation: bool) -> None:  # fmt: skip
        for fill in match.fills:
            maker_fee, taker_fee = self.settle_fill(
                market, taker, side, fill, taker_fee_ppm, liquidation
            )
            self.emit(
                "fill", market=market.market_id, maker_order_id=fill.maker.order_id,
                maker=fill.maker.owner, taker_order_id=taker_order_id, taker=taker.address,
                taker_side=side, price=fill.maker.price, size=fill.size,
                maker_remaining=fill.maker_remaining, maker_fee=maker_fee, taker_fee=taker_fee,
                liquidation=liquidation,
            )  # fmt: skip

    # ------------------------------------------------------------------ cancels, replace

    def find_order(self, market: Market, owner: bytes, order_id: int, client_id: int,
                   by_client_id: bool) -> Order | Conditional | None:  # fmt: skip
        """The owner's open order (resting or conditional) by order id or by client id."""
        for order in market.open_orders(owner):
            if (order.client_id == client_id) if by_client_id else (order.order_id == order_id):
                return order
        return None

    def cancel_order(self, account: Account, body: CancelOrder) -> tuple[int, str]:
        if body.market_id >= len(self.markets):
            return Code.UNKNOWN_MARKET, f"market {body.market_id} does not exist"
        market = self.markets[body.market_id]
        order = self.find_order(market, account.address, body.order_id, body.client_id,
                                body.by_client_id)  # fmt: skip
        if order is None:
            return NOT_FOUND
        market.remove(order)
        self.emit_removed(market, order, "cancelled", order.size)
        return OK

    def cancel_everything(self, market: Market, owner: bytes) -> None:
        """Cancel every open order of ``owner`` in ``market``, by ascending order id."""
        for order in market.open_orders(owner):
            market.remove(order)
            self.emit_removed(market, order, "cancelled", order.size)

    def cancel_all(self, account: Account, body: CancelAll) -> tuple[int, str]:
        if body.all_markets:
            markets = self.markets
        elif body.market_id < len(self.markets):
            markets = [self.markets[body.market_id]]
        else:
            return Code.UNKNOWN_MARKET, f"market {body.market_id} does not exist"
        for market in markets:
            self.cancel_everything(market, account.address)
        return OK

    def replace_order(self, account: Account, body: ReplaceOrder) -> tuple[int, str]:
        """Shrinking a resting limit order, all else equal, keeps its time priority (an
        amend). Otherwise every check that does not need the book runs first, with the old
        order in place (a refusal leaves it); then the old order is cancelled and the new
        one placed (a refusal by the book leaves the old one cancelled)."""
        new = body.order
        if new.market_id >= len(self.markets):
            return Code.UNKNOWN_MARKET, f"market {new.market_id} does not exist"
        market = self.markets[new.market_id]
        old = self.find_order(market, account.address, body.order_id, body.client_id,
                              body.by_client_id)  # fmt: skip
        if old is None:
            return NOT_FOUND
        if (
            isinstance(old, Order)
            and new.order_type == LIMIT
            and (new.side, new.price, new.time_in_force, new.reduce_only, new.client_id, new.good_til_block)
            == (old.side, old.price, old.time_in_force, old.reduce_only, old.client_id, old.good_til_block)
            and 0 < new.size <= old.size
        ):  # fmt: skip
            old.size = new.size
            self.emit_order(
                market, old.order_id, account.address, new.client_id, "resized", new.size
            )
            return OK
        code, log = self.place_order(account, new, dry_run=True)
        if code:
            return code, log + " (the order to replace is left as it was)"
        market.remove(old)
        self.emit_removed(market, old, "cancelled", old.size)
        code, log = self.place_order(account, new)
        return code, log + " (the replaced order stays cancelled)" if code else log

    # ------------------------------------------------------------------ transfers

    def apply_transfer(self, account: Account, body: Transfer) -> tuple[int, str]:
        """Free collateral to another account (opened if new)."""
        free = self.free_collateral(account)
        if body.amount > free:
            return (
                Code.INSUFFICIENT_FREE_COLLATERAL,
                f"transfer of {body.amount} micro-units exceeds the free collateral of {max(free, 0)}",
            )
        account.balance -= body.amount
        self.open_account(body.recipient, body.amount)
        self.emit("transfer", sender=account.address, recipient=body.recipient, amount=body.amount)
        return OK

    def apply_withdrawal(self, account: Account, body: Withdraw) -> tuple[int, str]:
        """Free collateral off the chain."""
        free = self.free_collateral(account)
        if body.amount > free:
            return (
                Code.INSUFFICIENT_FREE_COLLATERAL,
                f"withdrawal of {body.amount} micro-units exceeds the free collateral of {max(free, 0)}",
            )
        account.balance -= body.amount
        self.withdrawn += body.amount
        self.emit("withdraw", sender=account.address, amount=body.amount)
        return OK

    def apply_faucet(self, account: Account, body: Faucet) -> tuple[int, str]:
        """Mint to the sender, on chains with a faucet, at most faucet_max_amount a tx."""
        if not self.params.faucet_enabled:
            return Code.FAUCET_DISABLED, "this chain has no faucet"
        if not 0 < body.amount <= self.params.faucet_max_amount:
            return (
                Code.INVALID_ORDER,
                f"faucet amount must be 1 to {self.params.faucet_max_amount} micro-units",
            )
        account.balance += body.amount
        self.faucet_total += body.amount
        self.emit("faucet", recipient=account.address, amount=body.amount)
        return OK

    # ------------------------------------------------------------------ end of block

    def expire_orders(self) -> None:
        """An order (resting or conditional) is good through its good_til_block."""
        for market in self.markets:
            orders = [*market.book, *market.conditionals]
            expiring = [o for o in orders if 0 < o.good_til_block <= self.height]
            for order in sorted(expiring, key=lambda o: (o.good_til_block, o.order_id)):
                market.remove(order)
                self.emit_removed(market, order, "expired", order.size)

    def fire_triggers(self, market: Market) -> None:
        """Orders firing on a rise (trigger <= oracle) by ascending trigger then id, then
        orders firing on a fall (trigger >= oracle) by descending trigger then id. Each goes
        through :meth:`submit_order` under its own id: market kinds as IOC (FOK if it was
        FOK) at the protection price, limit kinds with their price and time in force. Each
        takes a fresh sequence number: it rests behind orders placed before it fired."""
        price = market.oracle_price
        rising = [c for c in market.conditionals if c.fires_on_rise and c.trigger_price <= price]
        falling = [
            c for c in market.conditionals if not c.fires_on_rise and c.trigger_price >= price
        ]
        fired = sorted(rising, key=lambda c: (c.trigger_price, c.order_id))
        fired += sorted(falling, key=lambda c: (-c.trigger_price, c.order_id))
        for order in fired:
            market.conditionals.remove(order)
        for order in fired:
            self.emit_order(market, order.order_id, order.owner, order.client_id, "triggered",
                            order.size)  # fmt: skip
            account = self.accounts[order.owner]
            if account.positions:
                self.settle_funding_and_say(account)
            if order.kind in (0, 2):  # the market kinds
                limit = self.price_band(market)[order.side]
                tif = FOK if order.time_in_force == FOK else IOC
            else:
                limit, tif = order.price, order.time_in_force
            self.next_order_id += 1
            code, log = self.submit_order(
                account, market, order.order_id, order.side, limit, order.size, tif,
                order.reduce_only, order.client_id, order.good_til_block,
            )  # fmt: skip
            if code:
                self.emit("order", market=market.market_id, order_id=order.order_id,
                          owner=order.owner, client_id=order.client_id, status="rejected",
                          size=order.size, code=int(code), reason=log)  # fmt: skip

    def impact_price(self, market: Market, taker_side: int) -> int | None:
        """The average price (ticks) a taker on ``taker_side`` pays for the fewest whole
        lots costing at least impact_notional, rounded to understate the premium (a sell's
        down, a buy's up); None if the book is too thin."""
        target = ceil_div(market.params.impact_notional, market.quantum)  # tick-lots
        size = cost = 0
        for maker in self.crossing_makers(market, taker_side, MAX_PRICE if taker_side else 0):
            needed = ceil_div(target - cost, maker.price)
            if needed <= maker.size:
                size, cost = size + needed, cost + needed * maker.price
                return ceil_div(cost, size) if taker_side == BUY else cost // size
            size, cost = size + maker.size, cost + maker.size * maker.price
        return None

    def sample_premium_and_fund(self, market: Market) -> None:
        """Every block, a premium sample: how far the impact bid is above the oracle or the
        impact ask below it, in ppm of the oracle (truncated), else 0. Every
        funding_interval_blocks, a funding tick: the rate is the samples' mean (truncated
        toward zero, clamped to ±max_funding_rate_ppm), the index moves by rate × oracle ×
        quantum, and the samples start again."""
        oracle = market.oracle_price
        impact_bid, impact_ask = self.impact_price(market, SELL), self.impact_price(market, BUY)
        premium = 0
        if impact_bid is not None and impact_bid > oracle:
            premium = (impact_bid - oracle) * PPM // oracle
        elif impact_ask is not None and impact_ask < oracle:
            premium = -((oracle - impact_ask) * PPM // oracle)
        market.premium_sum += premium
        market.premium_samples += 1
        if self.height % market.params.funding_interval_blocks:
            return
        mean = abs(market.premium_sum) // market.premium_samples
        cap = market.params.max_funding_rate_ppm
        rate = max(-cap, min(cap, mean if market.premium_sum >= 0 else -mean))
        step = rate * oracle * market.quantum
        market.funding_index += step
        market.premium_sum = market.premium_samples = 0
        market.last_funding_rate_ppm = rate
        self.emit("funding", market=market.market_id, rate_ppm=rate,
                  index=market.funding_index, index_step=step)  # fmt: skip

    # ------------------------------------------------------------------ liquidation

    def liquidate_accounts(self, prev_block_hash: bytes) -> None:
        """Every account below maintenance margin, by address, starting at a place seeded
        by the previous block hash and the height: at most max_liquidations_per_block of
        them (the others wait for a later block)."""
        found = sorted(
            a for a, acc in self.accounts.items() if acc.positions and self.liquidatable(acc)
        )
        if not found:
            return
        seed = sha256(b"liquidation" + prev_block_hash + self.height.to_bytes(8, "big")).digest()
        start = int.from_bytes(seed[:8], "big") % len(found)
        for address in (found[start:] + found[:start])[: self.params.max_liquidations_per_block]:
            self.liquidate(self.accounts[address])

    def liquidate(self, account: Account) -> None:
        """Settle funding; cancel every open order; then per position (ascending market),
        while the account is below maintenance and the per-account notional budget lasts
        (at least one lot a position): (1) into the book no worse than the bankruptcy
        price, a fee taken from the surplus; (2) if the fund has money, on into the book at
        prices the fund can cover, no worse than the protection price, the fund paying the
        shortfall; (3) what is left is deleveraged. A flat account left below zero is
        covered by the fund, as far as it goes."""
        self.settle_funding_and_say(account)
        for market in self.markets:
            self.cancel_everything(market, account.address)
        budget = self.params.max_liquidation_notional_per_account
        for market_id in sorted(account.positions):
            if budget <= 0 or not self.liquidatable(account):
                break
            market = self.markets[market_id]
            held = account.positions[market_id].size
            lot_value = market.oracle_price * market.quantum
            close = min(abs(held), max(1, budget // lot_value))
            budget -= close * lot_value
            side = SELL if held > 0 else BUY
            bankrupt_at = self.bankruptcy_price(account, market_id, close if held > 0 else -close)
            limit = min(bankrupt_at, MAX_PRICE - 1)
            remaining = close - self.liquidation_order(account, market, side, limit, close,
                                                       bankrupt_at, "book")  # fmt: skip
            if remaining and self.insurance_fund > 0:
                room = self.insurance_fund // (remaining * market.quantum)  # ticks it covers
                if side == SELL:
                    limit = max(bankrupt_at - room, self.price_band(market)[SELL])
                    usable = limit < bankrupt_at
                else:
                    limit = min(bankrupt_at + room, self.price_band(market)[BUY])
                    usable = limit > bankrupt_at
                if usable:
                    remaining -= self.liquidation_order(account, market, side, limit, remaining,
                                                        bankrupt_at, "insurance")  # fmt: skip
            if remaining:
                self.deleverage(account, market, remaining if held > 0 else -remaining)
        if not account.positions and account.balance < 0 and self.insurance_fund > 0:
            cover = min(-account.balance, self.insurance_fund)
            self.charge_to_insurance(account, -cover)
            self.emit("insurance_cover", account=account.address, amount=cover)

    def liquidation_order(self, account: Account, market: Market, side: int, limit: int,
                          size: int, bankrupt_at: int, step: str) -> int:  # fmt: skip
        """An IOC order without taker fee (makers still pass their margin check); returns
        the lots filled. Fills at or better than the bankruptcy price pay the liquidation
        fee, at most their surplus over it, into the fund; worse ones are topped up by it."""
        order_id = self.next_order_id
        self.next_order_id += 1
        match = self.match_order(market, account.address, side, max(1, limit), size)
        self.apply_match(market, match, account, order_id, side, 0, liquidation=True)
        fee_total = cover_total = 0
        for fill in match.fills:
            price, lots = fill.maker.price, fill.size
            edge = price - bankrupt_at if side == SELL else bankrupt_at - price
            if edge >= 0:
                liquidation_fee = fee(
                    price * lots * market.quantum, market.params.liquidation_fee_ppm
                )
                fee_total += min(liquidation_fee, edge * lots * market.quantum)
            else:
                cover_total += -edge * lots * market.quantum
        if fee_total:
            self.charge_to_insurance(account, fee_total)
            self.emit("liquidation_fee", account=account.address, amount=fee_total)
        if cover_total:
            self.charge_to_insurance(account, -cover_total)
            self.emit("insurance_cover", account=account.address, amount=cover_total)
        filled = sum(fill.size for fill in match.fills)
        self.emit("liquidation", account=account.address, market=market.market_id, size=size,
                  bankruptcy_price=bankrupt_at, step=step, filled=filled,
                  remaining=size - filled)  # fmt: skip
        return filled

    def deleveraging_ranking(self, market: Market, longs: bool, exclude: bytes) -> list[Account]:
        """Holders of the given side, most deleveraged first: by unrealised profit ×
        notional ÷ net collateral, highest first (accounts at or below zero collateral
        last, by profit), ties by address."""
        ranked = []
        for address, account in self.accounts.items():
            position = account.positions.get(market.market_id)
            if address == exclude or position is None or (position.size > 0) != longs:
                continue
            value = position.size * market.oracle_price * market.quantum
            profit, net = value - position.cost, self.health(account).net
            if net > 0:
                ranked.append((0, -(profit * abs(value) // net), address))
            else:
                ranked.append((1, -profit, address))
        return [self.accounts[address] for _, _, address in sorted(ranked)]

    def deleverage(self, account: Account, market: Market, signed: int) -> None:
        """Close ``signed`` lots against the opposite side's ranking at the bankruptcy
        price, without fees (both sides settle their funding first)."""
        bankrupt_at = self.bankruptcy_price(account, market.market_id, signed)
        ranking = self.deleveraging_ranking(market, longs=signed < 0, exclude=account.address)
        remaining = abs(signed)
        self.emit("liquidation", account=account.address, market=market.market_id, size=remaining,
                  bankruptcy_price=bankrupt_at, step="adl", filled=remaining, remaining=0)  # fmt: skip
        for counterparty in ranking:
            take = min(remaining, abs(counterparty.positions[market.market_id].size))
            seller, buyer = (account, counterparty) if signed > 0 else (counterparty, account)
            self.settle_funding(seller)
            self.settle_funding(buyer)
            self.trade(buyer, market, take, bankrupt_at, 0)
            self.trade(seller, market, -take, bankrupt_at, 0)
            self.emit("adl", market=market.market_id, account=account.address,
                      counterparty=counterparty.address, price=bankrupt_at, size=take)  # fmt: skip
            remaining -= take
            if not remaining:
                break

    # ------------------------------------------------------------------ reduce-only upkeep

    def reduce_only_upkeep(self) -> None:
        """For every account whose position moved in this block (by address), in every
        market, each reduce-only order (resting or conditional, by id) shrinks to the
        position, and is cancelled if the position is flat or on the order's side."""
        for address in sorted(self.position_changed):
            for market in self.markets:
                held = position_size(self.accounts[address], market.market_id)
                for order in market.open_orders(address):
                    keep = min(order.size, abs(held)) if reduces(order.side, held) else 0
                    if order.reduce_only and keep < order.size:
                        order.size = keep
                        if not keep:
                            market.remove(order)
                        self.emit_removed(market, order, "resized" if keep else "cancelled", keep)
        self.position_changed = set()

    # ------------------------------------------------------------------ the state

    def state_summary(self) -> dict[str, Any]:
        """The whole state, canonically: orders in the app's record form, resting orders
        in priority order (bids, then asks, best first), conditional orders rising kind
        then falling kind, each in firing order."""
        markets = []
        for market in self.markets:
            resting = self.crossing_makers(market, SELL, 0) + self.crossing_makers(
                market, BUY, MAX_PRICE
            )
            rising = [c for c in market.conditionals if c.fires_on_rise]
            falling = [c for c in market.conditionals if not c.fires_on_rise]
            conditional = sorted(rising, key=lambda c: (c.trigger_price, c.order_id))
            conditional += sorted(falling, key=lambda c: (-c.trigger_price, c.order_id))
            markets.append({
                "oracle_price": market.oracle_price,
                "funding_index": market.funding_index,
                "premium_sum": market.premium_sum,
                "premium_samples": market.premium_samples,
                "last_funding_rate_ppm": market.last_funding_rate_ppm,
                "orders": [astuple(o) for o in resting],
                "conditional": [astuple(c) for c in conditional],
            })  # fmt: skip
        accounts = {
            address: {
                "balance": account.balance,
                "positions": [(m, *astuple(p)) for m, p in sorted(account.positions.items())],
                "nonces": list(account.nonces),
            }
            for address, account in sorted(self.accounts.items())
        }
        return {
            "height": self.height, "time_ms": self.time_ms, "next_order_id": self.next_order_id,
            "insurance_fund": self.insurance_fund, "fee_pool": self.fee_pool,
            "withdrawn": self.withdrawn, "faucet_total": self.faucet_total,
            "genesis_total": self.genesis_total, "markets": markets, "accounts": accounts,
        }  # fmt: skip


def valid_oracle_vote(extension: bytes, current: list[int]) -> list[tuple[int, int]]:
    """A validator's (market, price) reports, or [] if it reported nothing or its
    extension is invalid: not canonical, markets not each once ascending, an unknown
    market, a price out of range or more than MAX_REPORT_RATIO away from the current one."""
    if not extension:
        return []
    try:
        reports = [(e.market_id, e.price) for e in decode_vote(extension).prices]
    except codec.CodecError:
        return []
    markets = [m for m, _ in reports]
    if markets != sorted(set(markets)) or any(m >= len(current) for m in markets):
        return []
    for market_id, price in reports:
        reference = current[market_id]
        if not 0 < price < MAX_PRICE:
            return []
        if price * MAX_REPORT_RATIO < reference or price > reference * MAX_REPORT_RATIO:
            return []
    return reports
