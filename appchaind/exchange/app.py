"""The exchange application: the state machine every validator replicates.

It composes one :class:`orderbook.OrderBook` per market with the margin engine
(:class:`margin.ClearingHouse`) behind the ABCI++-shaped interface of DESIGN.md:

``check_tx(tx_bytes)``                      mempool admission (reads state, changes nothing)
``prepare_proposal(candidates, ...)``       the local builder's ordered tx list
``process_proposal(txs)``                   every validator's accept / reject of a block
``extend_vote(height)``                     this validator's oracle prices (wall clock here only)
``verify_vote_extension(extension)``        bounds check of another validator's prices
``finalize_block(height, time_ms, txs, …)`` execute a decided block: results, events, app hash
``commit(batch=None)``                      persist what the block changed, in one write batch

A block runs as: oracle update (from the previous commit's vote extensions, or decided
prices) → the txs, cancels first, then post-only orders, then everything else (relative
order kept inside each class, whatever the builder did) → expiry → conditional triggers →
funding premium sample and, every funding interval, the funding tick → liquidations
(capped, seeded start) → reduce-only upkeep → app hash.

Pure: integers and bytes, no clock, no I/O except the store in ``__init__``/``commit``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Sequence
from hashlib import sha256
from typing import Any, Final, cast

import msgpack

from appchaind import codec
from appchaind.crypto import address_of
from appchaind.exchange import oracle
from appchaind.exchange.commitment import (
    ACCOUNT_PREFIX,
    CONDITIONAL_PREFIX,
    GLOBAL_KEY,
    MARKET_PREFIX,
    META_KEY,
    ORDER_PREFIX,
    StateCommitment,
    account_key,
    conditional_key,
    market_key,
    order_key,
)
from appchaind.exchange.results import (
    BlockResult,
    Code,
    Event,
    PendingEvent,
    TxResult,
    expand_events,
)
from appchaind.exchange.statistics import ExchangeStatistics, MarketStatistics
from appchaind.exchange.txs import (
    CancelAll,
    CancelOrder,
    Faucet,
    OrderType,
    PlaceOrder,
    ReplaceOrder,
    Transfer,
    Withdraw,
)
from appchaind.store import Store, WriteBatch
from appchaind.types import Tx
from config.genesis import Genesis
from margin import (
    Account,
    ClearingError,
    ClearingHouse,
    MarketState,
    NonceError,
    fee,
    funding_tick,
    premium_ppm,
    sample_premium,
)
from margin.liquidator import Liquidator
from margin.makers import maker_check
from margin.markets import protection_price
from orderbook import (
    MAX_PRICE,
    ORDER_FIELDS,
    ConditionalOrder,
    Fill,
    Id,
    OrderBook,
    OrderFlag,
    Outcome,
    Reason,
    Side,
    TimeInForce,
)

__all__ = ["ExchangeApp", "StateError"]

_REDUCE_ONLY: Final = int(OrderFlag.REDUCE_ONLY)
# Positions of the fields of an orderbook.OrderRecord (literal, so that indexing the
# record is typed per field).
_O_ID: Final = 0
_O_OWNER: Final = 1
_O_SIDE: Final = 2
_O_PRICE: Final = 3
_O_TIF: Final = 4
_O_FLAGS: Final = 5
_O_CLIENT: Final = 6
_O_GTB: Final = 7
_O_SIZE: Final = 8
assert ORDER_FIELDS == (
    "order_id", "owner", "side", "price", "time_in_force", "flags", "client_id",
    "good_til_block", "size",
)  # fmt: skip
_IOC: Final = int(TimeInForce.IOC)
_FOK: Final = int(TimeInForce.FOK)
_POST_ONLY: Final = int(TimeInForce.POST_ONLY)
_RESTING: Final = Outcome.RESTING
_FILLED: Final = Outcome.FILLED

#: Execution classes of the within-block ordering rule.
_CANCELS: Final = 0
_POST_ONLY_ORDERS: Final = 1
_OTHERS: Final = 2

_REASON_STATUS: Final = {
    int(Reason.CANCELLED): "cancelled",
    int(Reason.SELF_TRADE): "self_trade",
    int(Reason.VETOED): "vetoed",
    int(Reason.EXPIRED): "expired",
    int(Reason.TRIGGERED): "triggered",
}
_REJECTIONS: Final = {
    Outcome.REJECTED_POST_ONLY: (Code.POST_ONLY_WOULD_TAKE, "post-only order would take liquidity"),
    Outcome.REJECTED_FOK: (Code.FOK_NOT_FILLED, "fill-or-kill order could not fill completely"),
    Outcome.REJECTED_DUPLICATE_ORDER_ID: (Code.INVALID_ORDER, "order id already open"),
    Outcome.REJECTED_DUPLICATE_CLIENT_ID: (
        Code.DUPLICATE_CLIENT_ID,
        "you already have an open order with this client id in this market",
    ),
    Outcome.REJECTED_INVALID: (Code.INVALID_ORDER, "invalid price or size"),
}
_CONDITIONAL_KIND: Final = {
    OrderType.STOP_MARKET: 0,
    OrderType.STOP_LIMIT: 1,
    OrderType.TAKE_PROFIT_MARKET: 2,
    OrderType.TAKE_PROFIT_LIMIT: 3,
}
_SIGNATURE_CACHE_LIMIT: Final = 200_000
_OK: Final = (0, "")
# Plain ints for the hot path (enum attribute access is slow on Python 3.11).
_LIMIT: Final = int(OrderType.LIMIT)
_STOP_MARKET: Final = int(OrderType.STOP_MARKET)
_TAKE_PROFIT_LIMIT: Final = int(OrderType.TAKE_PROFIT_LIMIT)
_LIMIT_KINDS: Final = (int(OrderType.STOP_LIMIT), int(OrderType.TAKE_PROFIT_LIMIT))
_UNKNOWN_MARKET: Final = int(Code.UNKNOWN_MARKET)
_INVALID_ORDER: Final = int(Code.INVALID_ORDER)
_PRICE_OUTSIDE_BAND: Final = int(Code.PRICE_OUTSIDE_BAND)
_REDUCE_ONLY_REJECTED: Final = int(Code.REDUCE_ONLY_REJECTED)
_TOO_MANY_OPEN_ORDERS: Final = int(Code.TOO_MANY_OPEN_ORDERS)
_INSUFFICIENT_MARGIN: Final = int(Code.INSUFFICIENT_MARGIN)
_MAX_PRICE: Final = MAX_PRICE
# The tx body classes (of a Python module) as compiled-module constants: no globals lookup.
_PLACE_ORDER: Final = PlaceOrder
_CANCEL_ORDER: Final = CancelOrder
_CANCEL_ALL: Final = CancelAll
_REPLACE_ORDER: Final = ReplaceOrder


class StateError(Exception):
    """The stored state is unusable (e.g. its app hash does not match its contents)."""


def _pack(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)


class ExchangeApp:
    """The replicated exchange state machine of one validator.

    ``store`` (optional) is the node's LevelDB: the state is loaded from its ``s/`` keys
    when present (a restart), else built from ``genesis``. ``price_source`` feeds
    :meth:`extend_vote` (a :class:`~appchaind.exchange.oracle.SimulatedFeed` or
    :class:`~appchaind.exchange.oracle.FilePriceSource`); validators without one report no
    prices.
    """

    def __init__(
        self,
        genesis: Genesis,
        store: Store | None = None,
        *,
        price_source: oracle.PriceSource | None = None,
    ) -> None:
        self.genesis = genesis
        self.params = genesis.params
        self.chain_id = genesis.chain_id
        self.store = store
        self.price_source = price_source
        self.markets = [MarketState(p) for p in genesis.markets]
        self.clearing = ClearingHouse(self.markets, genesis.insurance_fund)
        self.liquidator = Liquidator(
            self.clearing,
            self.params.max_liquidations_per_block,
            self.params.max_liquidation_notional_per_account,
        )
        self._scratch: dict[bytes, list[int]] = {}
        self.books = [
            OrderBook(
                maker_check(self.clearing, m, self._scratch), self.params.max_makers_per_taker
            )
            for m in self.markets
        ]
        self.height = 0
        self.time_ms = genesis.genesis_time_ms
        self.next_order_id = 1
        self.app_hash = b""
        self._commitment = StateCommitment()
        #: Per market: ids of the orders (resting or conditional) changed since the last
        #: commitment update.
        self._dirty_orders: list[dict[int, None]] = [{} for _ in self.markets]
        #: Per market: ids of every conditional order in the committed state, so a changed
        #: order that never was conditional costs no conditional-key lookup.
        self._stored_conditionals: list[dict[int, None]] = [{} for _ in self.markets]
        #: Per market: the time priority of resting orders whose priority is not their id
        #: (triggered conditional orders rest behind orders placed before they fired).
        self._rest_seq: list[dict[int, int]] = [{} for _ in self.markets]
        self._reduce_only: dict[bytes, dict[int, None]] = {}
        self._verified: dict[bytes, bool] = {}
        self._addresses: dict[bytes, bytes] = {}
        #: Sender public key -> its account, for senders whose account exists (accounts
        #: are never removed or replaced once the state is loaded): one dict lookup per tx.
        self._senders: dict[bytes, Account] = {}
        self._max_open_orders = self.params.max_open_orders_per_account
        self._max_recent_nonces = self.params.max_recent_nonces
        self._bands: list[tuple[int, int]] = []
        #: (chain id, first and last acceptable expiry height, first and last acceptable
        #: nonce) of the block being executed (:meth:`_check_envelope`'s rules, precomputed).
        self._envelope_bounds: tuple[str, int, int, int, int] = ("", 0, -1, 0, -1)
        self._handlers: dict[
            type, Callable[[Account, Any, list[PendingEvent]], tuple[int, str]]
        ] = {
            PlaceOrder: self._place_order,
            CancelOrder: self._cancel_order,
            CancelAll: self._cancel_all,
            ReplaceOrder: self._replace_order,
            Transfer: self._transfer,
            Withdraw: self._withdraw,
            Faucet: self._faucet,
        }
        if store is not None and store.get(META_KEY) is not None:
            self._load(store)
        else:
            self._init_genesis()

    # ================================================================== state lifecycle

    def _init_genesis(self) -> None:
        clearing = self.clearing
        for entry in self.genesis.accounts:
            clearing.open_account(entry.address, entry.balance)
            clearing.genesis_total += entry.balance
        self.app_hash = self._update_commitment()

    def _load(self, store: Store) -> None:
        """Rebuild accounts, markets and books from the store (a restart)."""
        meta = store.get(META_KEY)
        assert meta is not None
        height, stored_hash = _unpack(meta)
        clearing = self.clearing
        resting: list[list[tuple[int, tuple[Any, ...]]]] = [[] for _ in self.markets]
        committed: list[tuple[bytes, bytes]] = []
        for suffix, value in store.iterate(b"s/"):
            key = b"s/" + suffix
            if key == META_KEY:
                continue
            committed.append((key, value))
            record = _unpack(value)
            if key == GLOBAL_KEY:
                (
                    self.height, self.time_ms, self.next_order_id, clearing.insurance_fund,
                    clearing.fee_pool, clearing.withdrawn, clearing.faucet_total,
                    clearing.genesis_total,
                ) = record  # fmt: skip
            elif key.startswith(MARKET_PREFIX):
                self.markets[int.from_bytes(key[4:8], "big")].restore(record)
            elif key.startswith(ACCOUNT_PREFIX):
                try:
                    account = Account.from_record(key[4:], record)
                except ValueError as exc:
                    raise StateError(
                        f"stored account {key[4:].hex()} is unreadable ({exc}): the data "
                        "directory is damaged or was written by another version"
                    ) from exc
                clearing.restore_account(account)
            elif key.startswith(ORDER_PREFIX):
                market_id = int.from_bytes(key[4:8], "big")
                seq, *fields = record
                resting[market_id].append((seq, tuple(fields)))
            elif key.startswith(CONDITIONAL_PREFIX):
                market_id = int.from_bytes(key[4:8], "big")
                order = ConditionalOrder(*record)
                self.books[market_id].add_conditional(order)
                self._stored_conditionals[market_id][order.order_id] = None
                if order.flags & _REDUCE_ONLY:
                    self._reduce_only.setdefault(order.owner, {})[market_id] = None
        for market_id, orders in enumerate(resting):
            orders.sort()
            book = self.books[market_id]
            for seq, fields in orders:
                book.insert_resting(fields)
                if seq != fields[_O_ID]:
                    self._rest_seq[market_id][fields[_O_ID]] = seq
                if fields[_O_FLAGS] & _REDUCE_ONLY:
                    self._reduce_only.setdefault(fields[_O_OWNER], {})[market_id] = None
        self._commitment = StateCommitment(committed)
        clearing.take_touched()
        clearing.take_position_changed()
        self.app_hash = self._commitment.app_hash()
        if self.height != height or self.app_hash != stored_hash:
            raise StateError(
                f"stored state at height {height} hashes to {self.app_hash.hex()}, but "
                f"{stored_hash.hex()} was committed; the data directory is damaged"
            )

    def _update_commitment(self) -> bytes:
        """Rehash what changed since the last block and stage it for :meth:`commit`."""
        commitment = self._commitment
        clearing = self.clearing
        accounts = clearing.accounts
        packb = msgpack.Packer(use_bin_type=True).pack
        for address in clearing.take_touched():
            account = accounts.get(address)
            if account is None:
                commitment.delete(account_key(address))
            else:
                commitment.put(account_key(address), packb(account.record()))
        for market_id, dirty in enumerate(self._dirty_orders):
            if not dirty:
                continue
            book = self.books[market_id]
            triggers = book.triggers
            rest_seq = self._rest_seq[market_id]
            stored_conditionals = self._stored_conditionals[market_id]
            # order_key(market_id, order_id) is the market's prefix + the id as u64
            prefix = order_key(market_id, 0)[:-8]
            for order_id in dirty:
                order = book.resting(order_id)
                if order is None:
                    commitment.delete(prefix + order_id.to_bytes(8, "big"))
                    if rest_seq:
                        rest_seq.pop(order_id, None)
                else:
                    priority = rest_seq.get(order_id, order_id) if rest_seq else order_id
                    commitment.put(
                        prefix + order_id.to_bytes(8, "big"), packb(order.stored(priority))
                    )
                if not stored_conditionals and not len(triggers):
                    continue
                conditional = triggers.get(order_id)
                if conditional is not None:
                    commitment.put(
                        conditional_key(market_id, order_id), packb(list(conditional.record()))
                    )
                    stored_conditionals[order_id] = None
                elif order_id in stored_conditionals:
                    commitment.delete(conditional_key(market_id, order_id))
                    del stored_conditionals[order_id]
            dirty.clear()
        for market in self.markets:
            commitment.put(market_key(market.market_id), _pack(market.record()))
        commitment.put(
            GLOBAL_KEY,
            _pack(
                [
                    self.height, self.time_ms, self.next_order_id, clearing.insurance_fund,
                    clearing.fee_pool, clearing.withdrawn, clearing.faucet_total,
                    clearing.genesis_total,
                ]
            ),
        )  # fmt: skip
        return commitment.app_hash()

    def commit(self, batch: WriteBatch | None = None) -> bytes:
        """Persist what the last block(s) changed. With ``batch`` (the node's batch holding
        the block itself), the writes are added to it and the node writes it; otherwise the
        app writes its own batch to its store, synced. Returns the app hash."""
        target = batch if batch is not None else WriteBatch()
        for key, value in self._commitment.take_writes().items():
            if value is None:
                target.delete(key)
            else:
                target.put(key, value)
        target.put(META_KEY, _pack([self.height, self.app_hash]))
        if batch is None and self.store is not None:
            self.store.write(target)
        return self.app_hash

    # ================================================================== mempool / proposals

    def _decode(self, tx: bytes | Tx, verified: bool) -> tuple[Tx | None, TxResult | None]:
        """A decoded :class:`Tx` is trusted if ``verified``, else its signature is checked;
        raw bytes are decoded and their signature looked up in the verdict cache (filled
        by :meth:`trust_signatures`) or checked, whatever ``verified`` says."""
        if isinstance(tx, Tx):
            if not verified and not tx.verify_signature():
                return None, TxResult(Code.BAD_SIGNATURE, "signature does not match the sender")
            return tx, None
        if len(tx) > self.params.max_tx_bytes:
            return None, TxResult(Code.MALFORMED, f"tx is {len(tx)} bytes, more than allowed")
        try:
            decoded = codec.decode(Tx, tx, max_bytes=self.params.max_tx_bytes)
        except codec.CodecError as exc:
            return None, TxResult(Code.MALFORMED, f"not a valid tx: {exc}")
        digest = sha256(tx).digest()
        verdict = self._verified.get(digest)
        if verdict is None:
            verdict = decoded.verify_signature()
            self._remember_signature(digest, verdict)
        if not verdict:
            return None, TxResult(Code.BAD_SIGNATURE, "signature does not match the sender")
        return decoded, None

    def trust_signatures(self, digests: Iterable[bytes]) -> None:
        """Record that the txs with these SHA-256 digests (of their canonical bytes) carry
        valid signatures: the node verified them, once, on its worker threads (mempool
        admission or a proposal's check), so :meth:`check_tx`, :meth:`process_proposal`
        and :meth:`finalize_block` do not verify them again. The verdicts share the
        bounded signature cache with the app's own."""
        trusted = dict.fromkeys(digests, True)
        cache = self._verified
        if len(cache) + len(trusted) > _SIGNATURE_CACHE_LIMIT:
            for stale in list(cache)[: _SIGNATURE_CACHE_LIMIT // 2]:
                del cache[stale]
        cache.update(trusted)

    def _remember_signature(self, digest: bytes, verdict: bool) -> None:
        cache = self._verified
        if len(cache) >= _SIGNATURE_CACHE_LIMIT:
            for stale in list(cache)[: _SIGNATURE_CACHE_LIMIT // 2]:
                del cache[stale]
        cache[digest] = verdict

    def check_tx(self, tx: bytes) -> TxResult:
        """Mempool admission against the last committed state; mutates nothing (but the
        signature-verdict cache). The mempool keeps its own view of pending nonces."""
        decoded, error = self._decode(tx, False)
        if error is not None:
            return error
        assert decoded is not None
        problem = self._check_envelope(decoded, self.height + 1, self.time_ms, read_only=True)
        return TxResult(Code.OK) if problem is None else problem

    def prepare_proposal(
        self, candidates: Sequence[bytes], max_txs: int | None = None, max_bytes: int | None = None
    ) -> list[bytes]:
        """The local builder's block: candidates that pass :meth:`check_tx`, without
        duplicates, within the limits, in execution-class order (cancels, post-only, rest)."""
        max_txs = min(max_txs or self.params.max_block_txs, self.params.max_block_txs)
        max_bytes = min(max_bytes or self.params.max_block_bytes, self.params.max_block_bytes)
        chosen: list[tuple[int, int, bytes]] = []
        seen: dict[bytes, None] = {}
        total = 0
        for tx in candidates:
            if len(chosen) >= max_txs:
                break
            if tx in seen or total + len(tx) > max_bytes:
                continue
            decoded, error = self._decode(tx, False)
            if error is not None or decoded is None:
                continue
            if self._check_envelope(decoded, self.height + 1, self.time_ms, read_only=True):
                continue
            seen[tx] = None
            total += len(tx)
            chosen.append((_execution_class(decoded.body), len(chosen), tx))
        chosen.sort()
        return [tx for _, _, tx in chosen]

    def process_proposal(self, txs: Sequence[bytes]) -> tuple[bool, str]:
        """Every validator's check of a proposed block: within the limits, every tx a
        canonical, correctly signed envelope for this chain. The execution order is
        enforced by :meth:`finalize_block`, not trusted."""
        if len(txs) > self.params.max_block_txs:
            return False, f"{len(txs)} txs, more than {self.params.max_block_txs}"
        if sum(len(tx) for tx in txs) > self.params.max_block_bytes:
            return False, "block bytes exceed max_block_bytes"
        for i, tx in enumerate(txs):
            decoded, error = self._decode(tx, False)
            if error is not None:
                return False, f"tx {i}: {error.log}"
            assert decoded is not None
            if decoded.chain_id != self.chain_id:
                return False, f"tx {i}: chain id {decoded.chain_id!r}"
        return True, ""

    # ================================================================== oracle

    def extend_vote(self, height: int) -> bytes:
        """This validator's oracle prices for the precommit at ``height`` (b"" if it has no
        price source). The only place the wall clock may be read (by the source)."""
        if self.price_source is None:
            return b""
        prices = {m: p for m, p in self.price_source.prices().items() if 0 <= m < len(self.markets)}
        return oracle.encode_vote(prices) if prices else b""

    def verify_vote_extension(self, extension: bytes, height: int = 0) -> bool:
        """Bounds-check another validator's extension against the current prices."""
        return oracle.verify_extension(extension, self.oracle_prices()) is None

    def oracle_prices(self) -> list[int]:
        return [m.oracle_price for m in self.markets]

    def _update_oracle(
        self,
        votes: Sequence[tuple[int, bytes]] | None,
        total_power: int | None,
        decided: Sequence[int] | None,
        events: list[PendingEvent],
    ) -> bool:
        """Move the oracle prices for this block; True if any price changed."""
        if decided is not None:
            rows = [
                (max(1, min(p, MAX_PRICE - 1)), m.oracle_price, 0)
                for p, m in zip(decided, self.markets, strict=True)
            ]
            total = 0
        elif votes:
            total = total_power if total_power is not None else sum(p for p, _ in votes)
            rows = oracle.aggregate(
                votes,
                total,
                self.oracle_prices(),
                [m.params.max_oracle_move_ppm for m in self.markets],
            )
        else:
            return False
        moved = False
        for market, (price, previous, reported) in zip(self.markets, rows, strict=True):
            if price != previous:
                moved = True
                market.oracle_price = price
                events.append(
                    Event(
                        "oracle",
                        {
                            "market": market.market_id, "price": price, "previous": previous,
                            "reported_power": reported, "total_power": total,
                        },
                    )
                )  # fmt: skip
        return moved

    # ================================================================== blocks

    def finalize_block(
        self,
        height: int,
        time_ms: int,
        txs: Sequence[bytes | Tx],
        *,
        prev_block_hash: bytes = b"",
        oracle_votes: Sequence[tuple[int, bytes]] | None = None,
        total_power: int | None = None,
        oracle_prices: Sequence[int] | None = None,
        signatures_verified: bool = False,
    ) -> BlockResult:
        """Execute the decided block at ``height`` (= last height + 1).

        ``txs`` are raw tx bytes or decoded :class:`Tx`, mixed as the caller has them:
        ``signatures_verified`` says the decoded ones' signatures were already checked;
        raw bytes are decoded here and their signatures found in the verdict cache
        (:meth:`trust_signatures`) or checked. Oracle input: ``oracle_votes`` =
        (voting power, vote extension) of the previous height's extended commit with
        ``total_power`` the validator set's power, or ``oracle_prices`` = decided prices per
        market (tests, replays). ``prev_block_hash`` seeds the liquidation start.
        Returns one result per tx, in block order, and the app hash after the block.

        Python's cyclic garbage collector is paused while the block executes: the block
        creates no reference cycles (reference counting frees what it drops), but it
        allocates tens of thousands of objects that live on (results, events, resting
        orders), and collecting every 700 allocations would rescan the whole state many
        times per block. Collection resumes when the block is done.
        """
        collecting = gc.isenabled()
        if collecting:
            gc.disable()
        try:
            return self._execute_block(
                height, time_ms, txs, prev_block_hash, oracle_votes, total_power,
                oracle_prices, signatures_verified,
            )  # fmt: skip
        finally:
            if collecting:
                gc.enable()

    def _execute_block(
        self,
        height: int,
        time_ms: int,
        txs: Sequence[bytes | Tx],
        prev_block_hash: bytes,
        oracle_votes: Sequence[tuple[int, bytes]] | None,
        total_power: int | None,
        oracle_prices: Sequence[int] | None,
        signatures_verified: bool,
    ) -> BlockResult:
        if height != self.height + 1:
            raise ValueError(f"finalize_block({height}) after height {self.height}")
        self.height = height
        self.time_ms = time_ms
        params = self.params
        self._envelope_bounds = (
            self.chain_id, height, height + params.max_tx_lifetime_blocks,
            time_ms - params.nonce_window_past_ms, time_ms + params.nonce_window_future_ms,
        )  # fmt: skip
        block_events: list[PendingEvent] = []
        if self._update_oracle(oracle_votes, total_power, oracle_prices, block_events):
            # Cached healths are exact at unchanged prices and funding indexes (every
            # account change updates or drops its entry), so they survive other blocks.
            self.clearing.prices_changed()
        self._refresh_bands()
        decoded: list[Tx | None]
        results: list[TxResult | None] = [None] * len(txs)
        if signatures_verified and all(type(tx) is Tx for tx in txs):
            decoded = cast(list[Tx | None], list(txs))
        else:
            decoded = []
            for i, raw in enumerate(txs):
                tx, results[i] = self._decode(raw, signatures_verified)
                decoded.append(tx)
        classes = [_OTHERS if tx is None else _execution_class(tx.body) for tx in decoded]
        # One pass per execution class, in block order inside each (a stable sort by class).
        count = len(decoded)
        for wanted in (_CANCELS, _POST_ONLY_ORDERS, _OTHERS):
            for i in range(count):
                if classes[i] == wanted:
                    tx = decoded[i]
                    if tx is not None:
                        results[i] = self._deliver(tx)
        self._end_block(prev_block_hash, block_events)
        self.app_hash = self._update_commitment()
        return BlockResult(
            height, cast(list[TxResult], results), expand_events(block_events), self.app_hash
        )

    def _check_envelope(
        self, tx: Tx, height: int, time_ms: int, *, read_only: bool
    ) -> TxResult | None:
        """Why the envelope cannot be applied at (height, time_ms), or None."""
        params = self.params
        if tx.chain_id != self.chain_id:
            return TxResult(
                Code.WRONG_CHAIN, f"tx is for chain {tx.chain_id!r}, this is {self.chain_id!r}"
            )
        if not height <= tx.expiry_height <= height + params.max_tx_lifetime_blocks:
            return TxResult(
                Code.EXPIRED,
                f"expiry_height {tx.expiry_height} must be in [{height}, "
                f"{height + params.max_tx_lifetime_blocks}] at height {height}",
            )
        nonce = tx.nonce
        if (
            not time_ms - params.nonce_window_past_ms
            <= nonce
            <= time_ms + params.nonce_window_future_ms
        ):
            return TxResult(
                Code.NONCE_OUT_OF_WINDOW,
                f"nonce {nonce} is outside [{time_ms - params.nonce_window_past_ms}, "
                f"{time_ms + params.nonce_window_future_ms}] (block time ± window); "
                "use the current time in milliseconds",
            )
        if read_only:
            account = self.clearing.accounts.get(self._address_of(tx.sender))
            if account is None:
                if type(tx.body) is Faucet and params.faucet_enabled:
                    return None
                return TxResult(Code.UNKNOWN_ACCOUNT, "the sender has no account; fund it first")
            problem = account.check_nonce(nonce, params.max_recent_nonces)
            if problem is not None:
                return TxResult(Code.NONCE_REPLAYED, problem)
        return None

    def _address_of(self, public_key: bytes) -> bytes:
        address = self._addresses.get(public_key)
        if address is None:
            if len(self._addresses) >= _SIGNATURE_CACHE_LIMIT:
                self._addresses.clear()
            address = self._addresses[public_key] = address_of(public_key)
        return address

    def _deliver(self, tx: Tx) -> TxResult:
        nonce = tx.nonce
        chain_id, first_expiry, last_expiry, first_nonce, last_nonce = self._envelope_bounds
        if (
            tx.chain_id != chain_id
            or not first_expiry <= tx.expiry_height <= last_expiry
            or not first_nonce <= nonce <= last_nonce
        ):
            # Out of the fast-path bounds: the full check says why (it finds a problem for
            # every tx these bounds refuse; if it ever did not, the tx simply goes on).
            problem = self._check_envelope(tx, self.height, self.time_ms, read_only=False)
            if problem is not None:
                return problem
        clearing = self.clearing
        body = tx.body
        account = self._senders.get(tx.sender)
        if account is None:
            account = self._sender_account(tx.sender, type(body) is Faucet)
            if account is None:
                return TxResult(Code.UNKNOWN_ACCOUNT, "the sender has no account; fund it first")
        try:
            account.accept_nonce(nonce, self._max_recent_nonces)
        except NonceError as exc:
            return TxResult(Code.NONCE_REPLAYED, str(exc))
        clearing.touch(account)
        events: list[PendingEvent] = []
        if account.positions and not clearing.funding_settled(account):
            self._settle_funding(account, events)
        if type(body) is _PLACE_ORDER:
            code, log = self._place_order(account, body, events)
        elif type(body) is _CANCEL_ORDER:
            code, log = self._cancel_order(account, body, events)
        else:
            handler = self._handlers.get(type(body))
            if handler is None:
                return TxResult(Code.MALFORMED, f"unknown tx kind {type(body).__name__}")
            code, log = handler(account, body, events)
        return TxResult(code, log, events)

    def _sender_account(self, public_key: bytes, faucet: bool) -> Account | None:
        """The sender's account (opened empty for a faucet tx on a chain with a faucet), or
        None; remembered in ``_senders`` once it exists."""
        address = self._address_of(public_key)
        account = self.clearing.accounts.get(address)
        if account is None:
            if not (faucet and self.params.faucet_enabled):
                return None
            account = self.clearing.open_account(address, 0)
        if len(self._senders) >= _SIGNATURE_CACHE_LIMIT:
            self._senders.clear()
        self._senders[public_key] = account
        return account

    def _settle_funding(self, account: Account, events: list[PendingEvent]) -> None:
        paid = self.clearing.settle_funding(account)
        if paid:
            events.append(Event("funding_payment", {"account": account.address, "amount": paid}))

    # ================================================================== orders

    def _place_order(
        self,
        account: Account,
        body: PlaceOrder,
        events: list[PendingEvent],
        replacing: bool = False,
    ) -> tuple[int, str]:
        """Check and place an order. ``replacing``: a dry run for a replacement (the order
        to replace is still open and counts against the cap): every check that does not need
        the book to take the order, and nothing is mutated."""
        market_id = body.market_id
        if market_id >= len(self.markets):
            return _UNKNOWN_MARKET, f"market {market_id} does not exist"
        side = body.side
        size = body.size
        tif = body.time_in_force
        order_type = body.order_type
        if side > 1:
            return _INVALID_ORDER, "side must be 0 (sell) or 1 (buy)"
        if not 0 < size < _MAX_PRICE:
            return _INVALID_ORDER, "size must be at least one lot"
        if tif > _FOK or order_type > _TAKE_PROFIT_LIMIT:
            return _INVALID_ORDER, "unknown time in force or order type"
        gtb = body.good_til_block
        if gtb and gtb < self.height:
            return _INVALID_ORDER, f"good_til_block {gtb} has already passed"
        flags = _REDUCE_ONLY if body.reduce_only else 0
        price = body.price
        # Read through Any, the client id stays the tx's own int object all the way into
        # the book and the events (typed int, compiled code would unbox it here and box a
        # new object at each of those places; see orderbook.book.Id).
        client_id: Id = cast(Any, body).client_id
        if order_type == _LIMIT:
            low, high = self._bands[market_id]
            if not low <= price <= high:
                return (
                    _PRICE_OUTSIDE_BAND,
                    f"price {price} is outside the band [{low}, {high}] around the oracle "
                    f"{self.markets[market_id].oracle_price}",
                )
        elif order_type in _LIMIT_KINDS:
            if not 0 < price < MAX_PRICE:
                return _INVALID_ORDER, "limit price must be a positive number of ticks"
        else:
            if tif < _IOC:
                tif = _IOC
            price = self._bands[market_id][side]
        order_id: Id = self.next_order_id  # boxed once, shared by the book and the events
        if not replacing:
            self.next_order_id += 1
        if order_type >= _STOP_MARKET:
            return self._place_conditional(account, body, order_id, tif, flags, events, replacing)
        return self._submit(
            account, market_id, order_id, side, price, size, tif, flags, client_id, gtb,
            events, 0, replacing,
        )  # fmt: skip

    def _refresh_bands(self) -> None:
        """Per market, for this block: (lowest, highest) acceptable limit price in ticks,
        which are also the sell and buy protection prices of market orders."""
        self._bands = [
            (protection_price(market, 0), protection_price(market, 1)) for market in self.markets
        ]

    def _place_conditional(
        self,
        account: Account,
        body: PlaceOrder,
        order_id: int,
        tif: int,
        flags: int,
        events: list[PendingEvent],
        replacing: bool = False,
    ) -> tuple[int, str]:
        market_id = body.market_id
        if not 0 < body.trigger_price < MAX_PRICE:
            return Code.INVALID_ORDER, "trigger_price must be a positive number of ticks"
        book = self.books[market_id]
        address = account.address
        open_orders = book.open_order_count(address) - replacing
        if open_orders >= self.params.max_open_orders_per_account:
            return Code.TOO_MANY_OPEN_ORDERS, "open order limit reached in this market"
        if replacing:
            return _OK
        order = ConditionalOrder(
            order_id, address, body.side, _CONDITIONAL_KIND[OrderType(body.order_type)],
            body.trigger_price, body.price, body.size, tif, flags, body.client_id,
            body.good_til_block,
        )  # fmt: skip
        outcome = book.add_conditional(order)
        if outcome != _RESTING:
            code, log = _REJECTIONS[outcome]
            return code, log
        self._dirty_orders[market_id][order_id] = None
        if flags:
            self._reduce_only.setdefault(address, {})[market_id] = None
        events.append(
            _order_event(market_id, order_id, address, body.client_id, "conditional", body.size)
        )
        return _OK

    def _submit(
        self,
        account: Account,
        market_id: int,
        order_id: Id,
        side: int,
        price: int,
        size: int,
        tif: int,
        flags: int,
        client_id: Id,
        gtb: int,
        events: list[PendingEvent],
        rest_seq: int = 0,
        replacing: bool = False,
    ) -> tuple[int, str]:
        """Margin-check an order and put it through the book; settle its fills.
        ``replacing``: the dry run of :meth:`_place_order` (checks only). The ids are int
        objects kept as they are (``Id``), not re-boxed."""
        book = self.books[market_id]
        market = self.markets[market_id]
        address = account.address
        position = account.positions.get(market_id)
        held = position.size if position is not None else 0
        if flags:
            if not (held < 0 if side else held > 0):
                return _REDUCE_ONLY_REJECTED, "reduce-only order would not reduce your position"
            size = min(size, abs(held))
        if tif < _IOC and book.open_order_count(address) - replacing >= self._max_open_orders:
            return _TOO_MANY_OPEN_ORDERS, "open order limit reached in this market"
        # Unless it only reduces the position, the order must leave the account above
        # initial margin if it filled in full at its limit, paying the taker fee.
        if side:
            new_size = held + size
            risky = held >= 0 or new_size > 0
        else:
            new_size = held - size
            risky = held <= 0 or new_size < 0
        if risky:
            taker_fee_ppm = market.taker_fee_ppm
            notional = price * size * market.quantum
            cash = (-notional if side else notional) - fee(notional, taker_fee_ppm)
            if self.clearing.free_collateral_after(account, market, held, new_size, cash) < 0:
                state = self.clearing.health_after(account, market_id, new_size, cash)
                return (
                    _INSUFFICIENT_MARGIN,
                    f"filled in full at {price} ticks this order would leave net collateral "
                    f"{state.net} below the initial margin {state.initial} (micro-units)",
                )
        if replacing:
            return _OK
        outcome = book.place(order_id, address, side, price, size, tif, flags, client_id, gtb)
        scratch = self._scratch
        if scratch:  # (a rejected fill-or-kill leaves checks without fills)
            scratch.clear()
        fills = book.fills
        filled = 0
        if fills:
            self._settle_fills(market_id, fills, account, market.taker_fee_ppm, events, False)
            for fill in fills:
                filled += fill[6]
            fills.clear()  # (the book appends the next taker's fills to the same list)
        if book.removals:
            self._note_removals(market_id, book.take_removals(), events)
        if outcome is _RESTING:
            self._dirty_orders[market_id][order_id] = None
            if rest_seq:
                self._rest_seq[market_id][order_id] = rest_seq
            if flags:
                self._reduce_only.setdefault(address, {})[market_id] = None
            # what rests: the unfilled lots
            events.append(
                ("order", market_id, order_id, address, client_id, "resting", size - filled)
            )
            return _OK
        if outcome is _FILLED:
            events.append(("order", market_id, order_id, address, client_id, "filled", 0))
            return _OK
        rejection = _REJECTIONS.get(outcome)
        if rejection is not None:
            events.append(("order", market_id, order_id, address, client_id, "rejected", size))
            return rejection
        events.append(("order", market_id, order_id, address, client_id, "cancelled", 0))
        return _OK

    def _settle_fills(
        self,
        market_id: int,
        fills: list[tuple[Id, bytes, Id, bytes, int, Any, Any, Any]],
        taker: Account,
        taker_fee_ppm: int,
        events: list[PendingEvent],
        liquidation: bool,
    ) -> None:
        """Settle the book's fills and record their events. The fill tuples' ints go into
        the events as the book's objects (typed ``Any``: not unboxed and boxed again)."""
        clearing = self.clearing
        accounts = clearing.accounts
        dirty = self._dirty_orders[market_id]
        for (
            maker_oid,
            maker_owner,
            taker_oid,
            taker_owner,
            taker_side,
            price,
            size,
            remaining,
        ) in fills:
            maker_fee, taker_fee = clearing.settle_fill(
                market_id,
                accounts[maker_owner],
                taker,
                taker_side != 0,
                price,
                size,
                taker_fee_ppm,
            )
            dirty[maker_oid] = None
            events.append(
                (
                    "fill", market_id, maker_oid, maker_owner, taker_oid, taker_owner, taker_side,
                    price, size, remaining, maker_fee, taker_fee, liquidation,
                )
            )  # fmt: skip

    def _note_removals(
        self,
        market_id: int,
        removals: list[tuple[int, bytes, int, int]],
        events: list[PendingEvent],
    ) -> None:
        dirty = self._dirty_orders[market_id]
        for order_id, owner, reason, size in removals:
            dirty[order_id] = None
            events.append(
                _order_event(market_id, order_id, owner, -1, _REASON_STATUS[int(reason)], size)
            )

    def _owned_order(self, book: OrderBook, address: bytes, order_id: int) -> bool:
        record = book.order(order_id)
        if record is not None:
            return record[_O_OWNER] == address
        conditional = book.triggers.get(order_id)
        return conditional is not None and conditional.owner == address

    def _find_order(
        self, book: OrderBook, address: bytes, order_id: int, client_id: int, by_client_id: bool
    ) -> int | None:
        if by_client_id:
            return book.order_id_for_client(address, client_id)
        return order_id if self._owned_order(book, address, order_id) else None

    def _cancel_order(
        self, account: Account, body: CancelOrder, events: list[PendingEvent]
    ) -> tuple[int, str]:
        if body.market_id >= len(self.markets):
            return Code.UNKNOWN_MARKET, f"market {body.market_id} does not exist"
        book = self.books[body.market_id]
        order_id = self._find_order(
            book, account.address, body.order_id, body.client_id, body.by_client_id
        )
        if order_id is None:
            return Code.ORDER_NOT_FOUND, "no such open order of yours in this market"
        size = book.cancel(order_id)
        self._dirty_orders[body.market_id][order_id] = None
        events.append(
            _order_event(body.market_id, order_id, account.address, -1, "cancelled", size)
        )
        return _OK

    def _cancel_all(
        self, account: Account, body: CancelAll, events: list[PendingEvent]
    ) -> tuple[int, str]:
        if body.all_markets:
            market_ids = list(range(len(self.markets)))
        elif body.market_id < len(self.markets):
            market_ids = [body.market_id]
        else:
            return Code.UNKNOWN_MARKET, f"market {body.market_id} does not exist"
        for market_id in market_ids:
            self._note_removals(
                market_id, self.books[market_id].cancel_all(account.address), events
            )
        return _OK

    def _replace_order(
        self, account: Account, body: ReplaceOrder, events: list[PendingEvent]
    ) -> tuple[int, str]:
        new = body.order
        market_id = new.market_id
        if market_id >= len(self.markets):
            return Code.UNKNOWN_MARKET, f"market {market_id} does not exist"
        book = self.books[market_id]
        old_id = self._find_order(
            book, account.address, body.order_id, body.client_id, body.by_client_id
        )
        if old_id is None:
            return Code.ORDER_NOT_FOUND, "no such open order of yours in this market"
        record = book.order(old_id)
        if (
            record is not None
            and new.order_type == OrderType.LIMIT
            and new.side == record[_O_SIDE]
            and new.price == record[_O_PRICE]
            and 0 < new.size <= record[_O_SIZE]
            and new.time_in_force == record[_O_TIF]
            and new.reduce_only == bool(record[_O_FLAGS] & _REDUCE_ONLY)
            and new.client_id == record[_O_CLIENT]
            and new.good_til_block == record[_O_GTB]
        ):
            book.resize(old_id, new.size)
            self._dirty_orders[market_id][old_id] = None
            events.append(
                _order_event(market_id, old_id, account.address, new.client_id, "resized", new.size)
            )
            return _OK
        # Everything that can refuse the new order without the book taking it is checked
        # first, with the old order untouched: a refused replacement leaves it as it was.
        code, log = self._place_order(account, new, events, True)
        if code:
            return code, log + " (the order to replace is left as it was)"
        size = book.cancel(old_id)
        self._dirty_orders[market_id][old_id] = None
        events.append(_order_event(market_id, old_id, account.address, -1, "cancelled", size))
        code, log = self._place_order(account, new, events)
        if code:  # refused by the book (post-only would take, FOK cannot fill, client id)
            log += " (the replaced order stays cancelled)"
        return code, log

    # ================================================================== transfers

    def _transfer(
        self, account: Account, body: Transfer, events: list[PendingEvent]
    ) -> tuple[int, str]:
        try:
            self.clearing.transfer(account, body.recipient, body.amount)
        except ClearingError as exc:
            return Code.INSUFFICIENT_FREE_COLLATERAL, str(exc)
        events.append(
            Event(
                "transfer",
                {"sender": account.address, "recipient": body.recipient, "amount": body.amount},
            )
        )
        return _OK

    def _withdraw(
        self, account: Account, body: Withdraw, events: list[PendingEvent]
    ) -> tuple[int, str]:
        try:
            self.clearing.withdraw(account, body.amount)
        except ClearingError as exc:
            return Code.INSUFFICIENT_FREE_COLLATERAL, str(exc)
        events.append(Event("withdraw", {"sender": account.address, "amount": body.amount}))
        return _OK

    def _faucet(
        self, account: Account, body: Faucet, events: list[PendingEvent]
    ) -> tuple[int, str]:
        if not self.params.faucet_enabled:
            return Code.FAUCET_DISABLED, "this chain has no faucet"
        if not 0 < body.amount <= self.params.faucet_max_amount:
            return (
                Code.INVALID_ORDER,
                f"faucet amount must be 1 to {self.params.faucet_max_amount} micro-units",
            )
        self.clearing.faucet(account.address, body.amount)
        events.append(Event("faucet", {"recipient": account.address, "amount": body.amount}))
        return _OK

    # ================================================================== end of block

    def _end_block(self, prev_block_hash: bytes, events: list[PendingEvent]) -> None:
        height = self.height
        for market_id, book in enumerate(self.books):
            expired = book.expire(height)
            if expired:
                self._note_removals(market_id, expired, events)
        for market in self.markets:
            self._fire_triggers(market, events)
        for market in self.markets:
            self._funding(market, events)
        self.liquidator.run(self, self.height, prev_block_hash, events)
        self._reduce_only_upkeep(events)

    def _fire_triggers(self, market: MarketState, events: list[PendingEvent]) -> None:
        market_id = market.market_id
        book = self.books[market_id]
        for order in book.trigger(market.oracle_price):
            self._dirty_orders[market_id][order.order_id] = None
            events.append(
                _order_event(
                    market_id, order.order_id, order.owner, order.client_id, "triggered", order.size
                )
            )
            account = self.clearing.accounts[order.owner]
            if account.positions:
                self._settle_funding(account, events)
            if order.kind in (0, 2):  # *_MARKET kinds
                price = protection_price(market, order.side)
                tif = _FOK if order.time_in_force == _FOK else _IOC
            else:
                price = order.price
                tif = order.time_in_force
            seq = self.next_order_id
            self.next_order_id += 1
            code, log = self._submit(
                account, market_id, order.order_id, order.side, price, order.size, tif,
                order.flags, order.client_id, order.good_til_block, events, rest_seq=seq,
            )  # fmt: skip
            if code:
                events.append(
                    Event("order", {
                        "market": market_id, "order_id": order.order_id, "owner": order.owner,
                        "client_id": order.client_id, "status": "rejected", "size": order.size,
                        "code": int(code), "reason": log,
                    })
                )  # fmt: skip

    def _funding(self, market: MarketState, events: list[PendingEvent]) -> None:
        book = self.books[market.market_id]
        params = market.params
        target = -(-params.impact_notional // market.quantum)  # tick-lots
        bid = book.impact_for_notional(Side.SELL, target)
        ask = book.impact_for_notional(Side.BUY, target)
        impact_bid = None if bid is None else bid.notional // bid.size
        impact_ask = None if ask is None else -(-ask.notional // ask.size)
        sample_premium(market, premium_ppm(market.oracle_price, impact_bid, impact_ask))
        if self.height % params.funding_interval_blocks:
            return
        rate, step = funding_tick(market, params.max_funding_rate_ppm)
        events.append(
            Event(
                "funding",
                {
                    "market": market.market_id,
                    "rate_ppm": rate,
                    "index": market.funding_index,
                    "index_step": step,
                },
            )
        )
        if step:
            clearing = self.clearing
            clearing.prices_changed()
            accounts = clearing.accounts
            for address in clearing.holders[market.market_id]:
                clearing.mark_unindexed(accounts[address])

    # ------------------------------------------------------------------ for the liquidator

    # The exchange as margin.liquidator.Exchange: the liquidation process settles funding
    # and trades through the books by these, so that what it does is reported and
    # committed like everything else.

    def settle_funding(self, account: Account, events: list[PendingEvent]) -> None:
        self._settle_funding(account, events)

    def cancel_orders(self, account: Account, events: list[PendingEvent]) -> None:
        address = account.address
        for market_id, book in enumerate(self.books):
            if book.open_order_count(address):
                self._note_removals(market_id, book.cancel_all(address), events)

    def liquidation_order(
        self,
        account: Account,
        market_id: int,
        side: int,
        limit: int,
        size: int,
        events: list[PendingEvent],
    ) -> list[Fill]:
        """An IOC order of a liquidated account: no margin check, no taker fee; its fills
        are reported as liquidation fills. Returns the fills."""
        book = self.books[market_id]
        order_id = self.next_order_id
        self.next_order_id += 1
        book.place(order_id, account.address, side, limit, size, _IOC, 0, 0, 0)
        self._scratch.clear()
        fills = book.fills
        book.fills = []
        if book.removals:
            self._note_removals(market_id, book.take_removals(), events)
        self._settle_fills(market_id, fills, account, 0, events, True)
        return fills

    # ------------------------------------------------------------------ reduce-only upkeep

    def _reduce_only_upkeep(self, events: list[PendingEvent]) -> None:
        """Resting and conditional reduce-only orders of accounts whose position changed
        shrink to the position (oldest order first is irrelevant: each is capped on its
        own), and are cancelled when the position is flat or on the order's side."""
        changed = self.clearing.take_position_changed()
        owners = self._reduce_only
        if not owners:
            return
        for address in sorted(a for a in changed if a in owners):
            account = self.clearing.accounts[address]
            markets = owners[address]
            for market_id in sorted(markets):
                book = self.books[market_id]
                held = account.position_size(market_id)
                found = False
                ids = book.order_ids_of(address) + book.triggers.order_ids_of(address)
                for order_id in sorted(ids):
                    record = book.order(order_id)
                    if record is not None:
                        side, size, flags = record[_O_SIDE], record[_O_SIZE], record[_O_FLAGS]
                    else:
                        conditional = book.triggers.get(order_id)
                        assert conditional is not None
                        side, size, flags = conditional.side, conditional.size, conditional.flags
                    if not flags & _REDUCE_ONLY:
                        continue
                    reducing = held < 0 if side else held > 0
                    keep = min(size, abs(held)) if reducing else 0
                    if keep < size:
                        book.resize(order_id, keep)
                        self._dirty_orders[market_id][order_id] = None
                        status = "resized" if keep else "cancelled"
                        events.append(_order_event(market_id, order_id, address, -1, status, keep))
                    if keep:
                        found = True
                if not found:
                    del markets[market_id]
            if not markets:
                del owners[address]

    # ================================================================== queries

    def statistics(self) -> ExchangeStatistics:
        """Each market's prices, open interest and resting orders, and the clearing
        house's figures, as of the last executed block."""
        clearing = self.clearing.statistics()
        markets = []
        for market in self.markets:
            book = self.books[market.market_id]
            markets.append(
                MarketStatistics(
                    market.market_id,
                    market.params.symbol,
                    market.oracle_price,
                    book.best_bid(),
                    book.best_ask(),
                    clearing.open_interest[market.market_id],
                    market.last_funding_rate_ppm,
                    len(book),
                )
            )
        return ExchangeStatistics(self.height, tuple(markets), clearing)

    def account(self, address: bytes) -> Account | None:
        return self.clearing.accounts.get(address)

    def state_summary(self) -> dict[str, Any]:
        """A readable snapshot of the whole state (tests and vectors): funds, markets,
        accounts (by address), resting and conditional orders (by market, priority order)."""
        clearing = self.clearing
        accounts = {}
        for address in sorted(clearing.accounts):
            account = clearing.accounts[address]
            accounts[address.hex()] = {
                "balance": account.balance,
                "positions": {str(m): account.positions[m].size for m in account.markets()},
            }
        return {
            "height": self.height,
            "insurance_fund": clearing.insurance_fund,
            "fee_pool": clearing.fee_pool,
            "withdrawn": clearing.withdrawn,
            "faucet_total": clearing.faucet_total,
            "markets": [
                {
                    "oracle_price": m.oracle_price,
                    "funding_index": m.funding_index,
                    "orders": [
                        [r[_O_ID], r[_O_OWNER].hex(), r[_O_SIDE], r[_O_PRICE], r[_O_SIZE]]
                        for r in self.books[m.market_id].resting_orders()
                    ],
                    "conditional": [
                        [c.order_id, c.owner.hex(), c.side, c.trigger_price, c.size]
                        for c in self.books[m.market_id].conditional_orders()
                    ],
                }
                for m in self.markets
            ],
            "accounts": accounts,
        }


def _execution_class(body: object) -> int:
    kind = type(body)
    if kind is _CANCEL_ORDER or kind is _CANCEL_ALL:
        return _CANCELS
    if kind is _PLACE_ORDER:
        order = body
    elif kind is _REPLACE_ORDER:
        order = body.order  # type: ignore[attr-defined]
    else:
        return _OTHERS
    if order.time_in_force == _POST_ONLY and order.order_type == _LIMIT:  # type: ignore[attr-defined]
        return _POST_ONLY_ORDERS
    return _OTHERS


def _order_event(
    market_id: int, order_id: int, owner: bytes, client_id: int, status: str, size: int
) -> PendingEvent:
    """An ``order`` event, compact (see results.COMPACT_EVENT_FIELDS)."""
    return ("order", market_id, order_id, owner, client_id, status, size)
