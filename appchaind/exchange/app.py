"""The exchange application: the state machine every validator replicates.

It composes one :class:`orderbook.OrderBook` per market with the margin engine
(:class:`margin.ClearingHouse`, :class:`margin.liquidator.Liquidator`) behind the
application interface, :class:`appchaind.abci.Application`, which the node calls directly:

``check_tx(raw, tx)``                       mempool admission (reads state, changes nothing)
``prepare_proposal(height, time, txs)``     the local builder's ordered tx list
``process_proposal(block, proposers)``      every validator's accept / reject of a block
``extend_vote(height, round, block, include)`` this validator's prices and inclusion list
``verify_vote_extension(vote)``             bounds check of another validator's extension
``finalize_block(block, txs, validators)``  execute a decided block: results, events, app hash
``commit(batch=None)``                      persist what the block changed, in one write batch

``finalize_block`` reads the block's inputs (height, time, the previous block's hash, the
oracle prices and the inclusion lists of the extended commit) and runs
:meth:`ExchangeApp.execute_block`, which tests and replays also call with decided inputs.

A block runs as:

1. the oracle step, the block's price bands (:mod:`~appchaind.exchange.prices`), and
   duplicate votes and missed signatures punished (:mod:`~appchaind.exchange.accountability`);
2. the txs, in the order of the **in-block ordering rule**: cancels first, then post-only
   limit orders (placed, or replacing an order), then everything else, keeping the block's
   order inside each class whatever the builder did, so that makers can always pull or
   post their quotes before takers reach them. Each tx: its envelope
   (:mod:`~appchaind.exchange.envelope`: chain, expiry, nonce, sender), the sender's
   funding settled, then its body's rule (:mod:`~appchaind.exchange.orders`,
   :mod:`~appchaind.exchange.cancels`, :mod:`~appchaind.exchange.transfers`,
   :mod:`~appchaind.exchange.builders`, :mod:`~appchaind.exchange.staking`);
3. the forced txs: the extended commit's inclusion lists that the block does not carry
   (:mod:`~appchaind.exchange.inclusion`);
4. the end of the block: expiry and conditional triggers
   (:mod:`~appchaind.exchange.order_upkeep`), the funding step
   (:mod:`~appchaind.exchange.funding`), liquidations (:mod:`margin.liquidator`), the
   reduce-only upkeep, the release of builder bonds and stake whose unbonding delay is
   over, and the validator updates if stake moved (:mod:`~appchaind.exchange.staking`);
5. the commitment: the app hash (:mod:`~appchaind.exchange.storage`).

The state (:class:`~appchaind.exchange.state.ExchangeState`) and the rules are in the
modules named above; :class:`ExchangeApp` is the state with this interface on top. Pure:
integers and bytes, no clock, no I/O except the store in ``__init__``/``commit``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from typing import Any, Final, cast

from appchaind.abci import FinalizeResult, TxResult
from appchaind.chain.codes import Code
from appchaind.chain.events import PendingEvent, expand_events
from appchaind.chain.types import COMMIT_BLOCK, Block, Tx, Vote
from appchaind.consensus.validators import ValidatorSet
from appchaind.exchange import (
    accountability,
    builders,
    cancels,
    envelope,
    funding,
    inclusion,
    oracle,
    order_upkeep,
    orders,
    prices,
    staking,
    storage,
    transfers,
)
from appchaind.exchange.commitment import META_KEY
from appchaind.exchange.state import (
    RECORD_ID,
    RECORD_OWNER,
    RECORD_PRICE,
    RECORD_SIDE,
    RECORD_SIZE,
    ExchangeState,
)
from appchaind.exchange.statistics import ExchangeStatistics, MarketStatistics
from appchaind.exchange.storage import StateError
from appchaind.exchange.txs import (
    BondBuilder,
    BuilderBid,
    CancelAll,
    CancelOrder,
    Faucet,
    OrderType,
    PlaceOrder,
    RegisterBuilder,
    ReplaceOrder,
    Transfer,
    UnbondBuilder,
    Withdraw,
)
from appchaind.store import Store, WriteBatch
from config.genesis import Genesis
from margin import Account, NonceError
from orderbook import Fill, TimeInForce

__all__ = ["ExchangeApp", "StateError"]

#: Execution classes of the in-block ordering rule, in execution order.
_CANCELS: Final = 0
_POST_ONLY_ORDERS: Final = 1
_OTHERS: Final = 2
#: A builder-built block's bid, paid before the classes run.
_PAID: Final = -1
_BID_NOT_IN_MEMPOOL: Final = (
    "a builder bid is sent to the proposer (the builder port), never to a mempool"
)

_POST_ONLY: Final = int(TimeInForce.POST_ONLY)
_LIMIT: Final = int(OrderType.LIMIT)
# The tx body classes (of a Python module) as compiled-module constants: no globals lookup.
_PLACE_ORDER: Final = PlaceOrder
_CANCEL_ORDER: Final = CancelOrder
_CANCEL_ALL: Final = CancelAll
_REPLACE_ORDER: Final = ReplaceOrder
_TRANSFER: Final = Transfer
_WITHDRAW: Final = Withdraw
_FAUCET: Final = Faucet
_REGISTER_BUILDER: Final = RegisterBuilder
_BOND_BUILDER: Final = BondBuilder
_UNBOND_BUILDER: Final = UnbondBuilder
_BUILDER_BID: Final = BuilderBid
_STAKING_TXS: Final = staking.TX_KINDS


class ExchangeApp(ExchangeState):
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
        super().__init__(genesis)
        self.store = store
        self.price_source = price_source
        if store is not None and store.get(META_KEY) is not None:
            storage.load(self, store)
        else:
            storage.init_genesis(self)

    def commit(self, batch: WriteBatch | None = None) -> bytes:
        """Persist what the last block(s) changed. With ``batch`` (the node's batch holding
        the block itself), the writes are added to it and the node writes it; otherwise the
        app writes its own batch to its store, synced. Returns the app hash."""
        target = batch if batch is not None else WriteBatch()
        storage.write_commit(self, target)
        if batch is None and self.store is not None:
            self.store.write(target)
        return self.app_hash

    # ================================================================== mempool / proposals

    def check_tx(self, raw: bytes, tx: Tx | None = None) -> TxResult:
        """Mempool admission against the last committed state; mutates nothing. ``tx``:
        ``raw`` decoded with its signature verified by the node, or None (decoded and
        checked here). The mempool keeps its own view of pending nonces."""
        decoded, error = envelope.decode(self, raw if tx is None else tx, tx is not None)
        if error is not None:
            return error
        assert decoded is not None
        if type(decoded.body) is _BUILDER_BID:
            return TxResult(Code.INVALID_BID, _BID_NOT_IN_MEMPOOL)
        problem = envelope.check_envelope(
            self, decoded, self.height + 1, self.time_ms, read_only=True
        )
        return TxResult(Code.OK) if problem is None else problem

    def prepare_proposal(
        self,
        height: int,
        time_ms: int,
        candidates: Sequence[bytes],
        max_txs: int | None = None,
        max_bytes: int | None = None,
        *,
        decoded: Sequence[Tx] | None = None,
    ) -> list[bytes]:
        """The local builder's block: candidates (the node verified their signatures) that
        pass :meth:`check_tx`, without duplicates, within the limits, in execution-class
        order (cancels, post-only, rest). ``decoded``: the candidates decoded (the node's
        mempool's), which spares decoding them again."""
        max_txs = min(max_txs or self.params.max_block_txs, self.params.max_block_txs)
        max_bytes = min(max_bytes or self.params.max_block_bytes, self.params.max_block_bytes)
        chosen: list[tuple[int, int, bytes]] = []
        seen: dict[bytes, None] = {}
        total = 0
        for i, tx in enumerate(candidates):
            if len(chosen) >= max_txs:
                break
            if tx in seen or total + len(tx) > max_bytes:
                continue
            found, error = envelope.decode(self, tx if decoded is None else decoded[i], True)
            if error is not None or found is None or type(found.body) is _BUILDER_BID:
                continue
            if envelope.check_envelope(self, found, self.height + 1, self.time_ms, read_only=True):
                continue
            seen[tx] = None
            total += len(tx)
            chosen.append((_execution_class(found.body), len(chosen), tx))
        chosen.sort()
        return [tx for _, _, tx in chosen]

    def process_proposal(
        self, block: Block, proposer_of_round: Callable[[int], bytes | None] | None = None
    ) -> tuple[bool, str]:
        """Every validator's check of a proposed block: within the limits, every tx a
        canonical envelope for this chain (the node checked the signatures), and either
        built by the proposer (no bid) or by a builder (:meth:`builder_block_problem`).
        The execution order is enforced by :meth:`finalize_block`, not trusted."""
        header = block.header
        reason = self.builder_block_problem(
            block.txs, header.height, header.time_ms, header.proposer, proposer_of_round
        )
        return reason is None, reason or ""

    def builder_block_problem(
        self,
        txs: Sequence[bytes],
        height: int,
        time_ms: int,
        proposer: bytes,
        proposer_of_round: Callable[[int], bytes | None] | None = None,
    ) -> str | None:
        """Why ``txs`` cannot be the block at (``height``, ``time_ms``) proposed by
        ``proposer``, or None (:func:`~appchaind.exchange.builders.block_problem`): the
        proposer's check of a bid it received, and every validator's of the block."""
        return builders.block_problem(self, txs, height, time_ms, proposer, proposer_of_round)

    # ================================================================== oracle votes

    def extend_vote(
        self, height: int, round: int, block_hash: bytes, include: Sequence[bytes] = ()
    ) -> bytes:
        """This validator's precommit extension at ``height``: its oracle prices (none
        without a price source) and ``include``, the inclusion list its node made; b""
        for neither. The only place the wall clock may be read (by the source)."""
        source = self.price_source
        found = source.prices().items() if source is not None else ()
        prices = {m: p for m, p in found if 0 <= m < len(self.markets)}
        return oracle.encode_vote(prices, tuple(include)) if prices or include else b""

    def verify_vote_extension(self, vote: Vote) -> bool:
        """Another validator's extension: prices bounds-checked against the current ones,
        an inclusion list within the chain's rule (:mod:`~appchaind.exchange.inclusion`)."""
        extension = vote.extension
        return oracle.verify_extension(extension, self.oracle_prices()) is None and (
            inclusion.extension_problem(self.params, extension) is None
        )

    def oracle_prices(self) -> list[int]:
        return [m.oracle_price for m in self.markets]

    # ================================================================== blocks

    def finalize_block(
        self, block: Block, txs: Sequence[Tx | None], last_validators: ValidatorSet | None
    ) -> FinalizeResult:
        """Execute the decided ``block`` (:meth:`execute_block`). ``txs``: per tx of the
        block, it decoded with its signature verified by the node, or None (decoded and
        checked here). The oracle input is the block's extended commit: each precommit for
        the previous block with the power of its signer in ``last_validators``; their
        inclusion lists give the forced txs (:func:`~appchaind.exchange.inclusion.forced_txs`)."""
        votes: list[tuple[int, bytes]] = []
        total_power = None
        commit = block.last_commit
        if commit is not None and last_validators is not None:
            total_power = last_validators.total_power
            validators = last_validators.validators
            for index, sig in enumerate(commit.signatures):
                if sig.flag == COMMIT_BLOCK and index < len(validators):
                    votes.append((validators[index].power, sig.extension))
        header = block.header
        # Txs the node decoded and verified skip decoding here (the common case: a block's
        # txs were gossiped into this node's mempool before the block came); the others go
        # in as their bytes, decoded and checked, and so do txs over the size limit (whoever
        # decoded them, the result is MALFORMED).
        max_bytes = self.params.max_tx_bytes
        given: list[bytes | Tx] = [
            raw if tx is None or len(raw) > max_bytes else tx
            for tx, raw in zip(txs, block.txs, strict=True)
        ]
        return self.execute_block(
            header.height,
            header.time_ms,
            given,
            prev_block_hash=header.last_block_id,
            oracle_votes=votes or None,
            total_power=total_power,
            signatures_verified=True,
            proposer=header.proposer,
            forced=inclusion.forced_txs(self.params, [e for _, e in votes], block.txs),
            evidence=[(e.vote_a.validator, e.vote_a.height) for e in block.evidence],
            signers=accountability.commit_signers(block.last_commit, last_validators),
        )

    def execute_block(
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
        proposer: bytes = b"",
        forced: Sequence[bytes] = (),
        evidence: Sequence[tuple[bytes, int]] = (),
        signers: Sequence[tuple[bytes, bool]] | None = None,
    ) -> FinalizeResult:
        """Execute the decided block at ``height`` (= last height + 1).

        ``txs`` are raw tx bytes or decoded :class:`Tx`, mixed as the caller has them:
        ``signatures_verified`` says the decoded ones' signatures were already checked;
        raw bytes are decoded here and their signatures checked. Oracle input: ``oracle_votes``
        = (voting power, vote extension) of the previous height's extended commit with
        ``total_power`` the validator set's power, or ``oracle_prices`` = decided prices per
        market (tests, replays). ``prev_block_hash`` seeds the liquidation start.
        ``proposer``: the address of the block's proposer, paid its share of a builder's bid
        (a bid first in ``txs``; a bid anywhere else is refused). ``forced``: txs of
        inclusion lists, run after the block's, in this order (those no longer valid are
        skipped, :func:`~appchaind.exchange.inclusion.still_valid`). ``evidence``,
        ``signers``: :func:`~appchaind.exchange.accountability.begin_block`'s. Returns one
        result per tx, in block order, then one per forced tx that ran (``forced_txs``), and
        the app hash after the block.

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
                oracle_prices, signatures_verified, proposer, forced, evidence, signers,
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
        proposer: bytes,
        forced: Sequence[bytes],
        evidence: Sequence[tuple[bytes, int]],
        signers: Sequence[tuple[bytes, bool]] | None,
    ) -> FinalizeResult:
        if height != self.height + 1:
            raise ValueError(f"finalize_block({height}) after height {self.height}")
        self.height = height
        self.time_ms = time_ms
        envelope.set_envelope_bounds(self, height, time_ms)
        block_events: list[PendingEvent] = []
        if prices.update_oracle(self, oracle_votes, total_power, oracle_prices, block_events):
            # Cached healths are exact at unchanged prices and funding indexes (every
            # account change updates or drops its entry), so they survive other blocks.
            self.clearing.prices_changed()
        prices.refresh_bands(self)
        accountability.begin_block(self, evidence, signers, block_events)
        decoded: list[Tx | None]
        results: list[TxResult | None] = [None] * len(txs)
        if signatures_verified and all(type(tx) is Tx for tx in txs):
            decoded = cast(list[Tx | None], list(txs))
        else:
            decoded = []
            for i, raw in enumerate(txs):
                trusted = signatures_verified and type(raw) is Tx
                tx, results[i] = envelope.decode(self, raw, trusted)
                decoded.append(tx)
        classes = [_OTHERS if tx is None else _execution_class(tx.body) for tx in decoded]
        count = len(decoded)
        first = decoded[0] if count else None
        if first is not None and type(first.body) is _BUILDER_BID:
            # A builder-built block: its bid is paid before anything else runs.
            results[0] = self._deliver(first, proposer)
            classes[0] = _PAID
        # One pass per execution class, in block order inside each (a stable sort by class).
        for wanted in (_CANCELS, _POST_ONLY_ORDERS, _OTHERS):
            for i in range(count):
                if classes[i] == wanted:
                    tx = decoded[i]
                    if tx is not None:
                        results[i] = self._deliver(tx)
        ran: list[bytes] = []
        for raw in forced:
            tx = inclusion.still_valid(self, raw)
            if tx is not None:
                results.append(self._deliver(tx))
                ran.append(raw)
        self._end_block(prev_block_hash, block_events)
        updates = staking.end_block(self, block_events)
        self.app_hash = storage.update_commitment(self)
        done = cast(list[TxResult], results)
        events = expand_events(block_events)
        return FinalizeResult(height, done, events, self.app_hash, updates, ran)

    def _deliver(self, tx: Tx, proposer: bytes | None = None) -> TxResult:
        """One tx: its envelope, the sender's nonce and funding, then its body's rule.
        ``proposer``: the block's proposer when ``tx`` is the block's first (a bid there
        is paid; anywhere else it is refused)."""
        nonce = tx.nonce
        chain_id, first_expiry, last_expiry, first_nonce, last_nonce = self.envelope_bounds
        if (
            tx.chain_id != chain_id
            or not first_expiry <= tx.expiry_height <= last_expiry
            or not first_nonce <= nonce <= last_nonce
        ):
            # Out of the fast-path bounds: the full check says why (it finds a problem for
            # every tx these bounds refuse; if it ever did not, the tx simply goes on).
            problem = envelope.check_envelope(self, tx, self.height, self.time_ms, read_only=False)
            if problem is not None:
                return problem
        body = tx.body
        account = self.senders.get(tx.sender)
        if account is None:
            account = envelope.sender_account(self, tx.sender, type(body) is _FAUCET)
            if account is None:
                return TxResult(Code.UNKNOWN_ACCOUNT, "the sender has no account; fund it first")
        try:
            account.accept_nonce(nonce, self.max_recent_nonces)
        except NonceError as exc:
            return TxResult(Code.NONCE_REPLAYED, str(exc))
        clearing = self.clearing
        clearing.touch(account)
        events: list[PendingEvent] = []
        if account.positions and not clearing.funding_settled(account):
            funding.settle_funding(self, account, events)
        if type(body) is _PLACE_ORDER:
            code, log = orders.place_order(self, account, body, events)
        elif type(body) is _CANCEL_ORDER:
            code, log = cancels.cancel_order(self, account, body, events)
        elif type(body) is _CANCEL_ALL:
            code, log = cancels.cancel_all(self, account, body, events)
        elif type(body) is _REPLACE_ORDER:
            code, log = cancels.replace_order(self, account, body, events)
        elif type(body) is _TRANSFER:
            code, log = transfers.transfer(self, account, body, events)
        elif type(body) is _WITHDRAW:
            code, log = transfers.withdraw(self, account, body, events)
        elif type(body) is _FAUCET:
            code, log = transfers.faucet(self, account, body, events)
        elif type(body) is _REGISTER_BUILDER:
            code, log = builders.register(self, account, tx.sender, body, events)
        elif type(body) is _BOND_BUILDER:
            code, log = builders.bond(self, account, body, events)
        elif type(body) is _UNBOND_BUILDER:
            code, log = builders.unbond(self, account, body, events)
        elif type(body) is _BUILDER_BID:
            if proposer is None:
                return TxResult(Code.INVALID_BID, "a builder bid must be the block's first tx")
            code, log = builders.pay_bid(self, tx, proposer, events)
        elif type(body) in _STAKING_TXS:
            code, log = staking.deliver(self, account, tx, events)
        else:
            return TxResult(Code.MALFORMED, f"unknown tx kind {type(body).__name__}")
        return TxResult(code, log, events)

    def _end_block(self, prev_block_hash: bytes, events: list[PendingEvent]) -> None:
        order_upkeep.expire_orders(self, events)
        order_upkeep.fire_triggers(self, events)
        funding.funding_step(self, events)
        self.liquidator.run(self, self.height, prev_block_hash, events)
        order_upkeep.reduce_only_upkeep(self, events)
        builders.release_unbonded(self, events)

    # ================================================================== for the liquidator

    # The exchange as margin.liquidator.Exchange: the liquidation process settles funding
    # and trades through the books by these, so that what it does is reported and
    # committed like everything else.

    def settle_funding(self, account: Account, events: list[PendingEvent]) -> None:
        funding.settle_funding(self, account, events)

    def cancel_orders(self, account: Account, events: list[PendingEvent]) -> None:
        cancels.cancel_account_orders(self, account, events)

    def liquidation_order(
        self,
        account: Account,
        market_id: int,
        side: int,
        limit: int,
        size: int,
        events: list[PendingEvent],
    ) -> list[Fill]:
        return orders.liquidation_order(self, account, market_id, side, limit, size, events)

    # ================================================================== queries

    def statistics(self) -> ExchangeStatistics:
        """Each market's prices, open interest and resting orders, the clearing house's
        figures and the staking state's, as of the last executed block."""
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
        return ExchangeStatistics(self.height, tuple(markets), clearing, staking.statistics(self))

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
            "builder_bonds": clearing.builder_bonds,
            "builders": {a.hex(): self.builders[a].record()[2:4] for a in sorted(self.builders)},
            "markets": [
                {
                    "oracle_price": m.oracle_price,
                    "funding_index": m.funding_index,
                    "orders": [
                        [
                            r[RECORD_ID],
                            r[RECORD_OWNER].hex(),
                            r[RECORD_SIDE],
                            r[RECORD_PRICE],
                            r[RECORD_SIZE],
                        ]
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
    """The in-block ordering rule: cancels (0) run first, then post-only limit orders and
    replacements by one (1), then everything else (2)."""
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
