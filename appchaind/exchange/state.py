"""The exchange's state: what every validator replicates, and what it derives from it.

**Replicated** (the app hash commits to it, :mod:`appchaind.exchange.storage` stores it):
the height and block time, the next order id, per market its margin state (oracle price,
funding index, premium samples) and its order book (resting orders with their time
priority, conditional orders), and the clearing house (accounts with their balances,
positions and recent nonces; the insurance fund, fee pool and the other funds), the
block builders (bond, unbonding amounts), and the staking state (validators, delegations,
unbonding stake: :mod:`appchaind.exchange.staking_state`).

**Derived** (rebuilt from the replicated state on load, never stored, and never a reason
for two validators to differ): the liquidation index, the orders and builders changed
since the last commitment update, the next height a builder's bond is released, which
reduce-only orders each account has, the block's price bands and envelope bounds, the
pending maker fills of the current taker, and caches of addresses and sender accounts. (Signature verdicts are the node's: :mod:`appchaind.chain.signatures`.)

Units: prices in ticks, sizes in lots, collateral in micro-units of the quote asset,
fractions in ppm, times in milliseconds, heights in blocks.

The rules that change the state are module-level functions that take it as their first
argument (:mod:`~appchaind.exchange.orders`, :mod:`~appchaind.exchange.cancels`,
:mod:`~appchaind.exchange.order_upkeep`, :mod:`~appchaind.exchange.transfers`,
:mod:`~appchaind.exchange.prices`, :mod:`~appchaind.exchange.funding`,
:mod:`~appchaind.exchange.envelope`, :mod:`~appchaind.exchange.storage`), compiled
together so that the calls and the field reads are native;
:class:`~appchaind.exchange.app.ExchangeApp` (the ABCI++-shaped interface) is this class
with the block steps on top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from appchaind.exchange.commitment import StateCommitment
from appchaind.exchange.staking_state import Staking
from config.genesis import Genesis
from margin import Account, ClearingHouse, Liquidator, MarketState, maker_check
from orderbook import ORDER_FIELDS, OrderBook

if TYPE_CHECKING:
    from appchaind.exchange.builders import Builder

__all__ = [
    "ExchangeState",
    "RECORD_ID",
    "RECORD_OWNER",
    "RECORD_SIDE",
    "RECORD_PRICE",
    "RECORD_TIF",
    "RECORD_FLAGS",
    "RECORD_CLIENT",
    "RECORD_GTB",
    "RECORD_SIZE",
]

# Positions of the fields of an orderbook.OrderRecord (literal, so that indexing the
# record is typed per field).
RECORD_ID: Final = 0
RECORD_OWNER: Final = 1
RECORD_SIDE: Final = 2
RECORD_PRICE: Final = 3
RECORD_TIF: Final = 4
RECORD_FLAGS: Final = 5
RECORD_CLIENT: Final = 6
RECORD_GTB: Final = 7
RECORD_SIZE: Final = 8
assert ORDER_FIELDS == (
    "order_id", "owner", "side", "price", "time_in_force", "flags", "client_id",
    "good_til_block", "size",
)  # fmt: skip


class ExchangeState:
    """The state of the exchange at ``height``, as built from ``genesis`` (accounts and
    order books empty: :func:`appchaind.exchange.storage.init_genesis` funds the genesis
    accounts, :func:`~appchaind.exchange.storage.load` restores a stored state)."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.params = genesis.params
        self.chain_id = genesis.chain_id
        self.markets = [MarketState(p) for p in genesis.markets]
        self.clearing = ClearingHouse(self.markets, genesis.insurance_fund)
        self.liquidator = Liquidator(
            self.clearing,
            self.params.max_liquidations_per_block,
            self.params.max_liquidation_notional_per_account,
        )
        #: Per owner: [lots, cash] that fills against the current taker add to its position
        #: and balance (the maker check's running view; cleared before each taker).
        self.pending_fills: dict[bytes, list[int]] = {}
        self.books = [
            OrderBook(
                maker_check(self.clearing, market, self.pending_fills),
                self.params.max_makers_per_taker,
            )
            for market in self.markets
        ]
        self.height = 0
        self.time_ms = genesis.genesis_time_ms
        self.next_order_id = 1
        self.app_hash = b""
        #: Registered block builders by address (:mod:`appchaind.exchange.builders`).
        self.builders: dict[bytes, Builder] = {}
        #: Builders changed since the last commitment update.
        self.dirty_builders: dict[bytes, None] = {}
        #: The first height at which a builder's unbonding amount is due (0: none).
        self.next_bond_release = 0
        #: Validators, delegations and unbonding stake (:mod:`appchaind.exchange.staking`).
        self.staking = Staking()
        self.commitment = StateCommitment()
        #: Per market: ids of the orders (resting or conditional) changed since the last
        #: commitment update.
        self.dirty_orders: list[dict[int, None]] = [{} for _ in self.markets]
        #: Per market: ids of every conditional order in the committed state, so a changed
        #: order that never was conditional costs no conditional-key lookup.
        self.stored_conditionals: list[dict[int, None]] = [{} for _ in self.markets]
        #: Per market: the time priority of resting orders whose priority is not their id
        #: (triggered conditional orders rest behind orders placed before they fired).
        self.rest_seq: list[dict[int, int]] = [{} for _ in self.markets]
        #: Owner -> the markets where it may have reduce-only orders (resting or
        #: conditional), for the end-of-block reduce-only upkeep.
        self.reduce_only: dict[bytes, dict[int, None]] = {}
        #: Public key -> address (bounded).
        self.addresses: dict[bytes, bytes] = {}
        #: Sender public key -> its account, for senders whose account exists (accounts
        #: are never removed or replaced once the state is loaded): one dict lookup per tx.
        self.senders: dict[bytes, Account] = {}
        self.max_open_orders = self.params.max_open_orders_per_account
        self.max_recent_nonces = self.params.max_recent_nonces
        #: Per market, for the block being executed: (lowest, highest) acceptable limit
        #: price in ticks, also the sell and buy protection prices of market orders.
        self.bands: list[tuple[int, int]] = []
        #: (chain id, first and last acceptable expiry height, first and last acceptable
        #: nonce) of the block being executed (the envelope rules, precomputed).
        self.envelope_bounds: tuple[str, int, int, int, int] = ("", 0, -1, 0, -1)

    def note_reduce_only(self, owner: bytes, market_id: int) -> None:
        """``owner`` has (or may have) a reduce-only order in ``market_id``."""
        self.reduce_only.setdefault(owner, {})[market_id] = None
