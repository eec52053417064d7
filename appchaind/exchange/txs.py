"""The exchange's transaction bodies (the ``body`` of a signed :class:`appchaind.chain.types.Tx`).

Units: prices in ticks, sizes in lots, amounts in quote micro-units. Sides and time in
force use the order book's values (``orderbook.Side``, ``orderbook.TimeInForce``).
Importing this module registers every body kind with the envelope codec.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, ClassVar

from appchaind.chain.codec import U8, U32, U64, Address, Hash32, PubKey, Signature, Str, message
from appchaind.chain.types import register_tx_body

__all__ = [
    "OrderType",
    "PlaceOrder",
    "CancelOrder",
    "CancelAll",
    "ReplaceOrder",
    "Transfer",
    "Withdraw",
    "Faucet",
    "RegisterBuilder",
    "BondBuilder",
    "UnbondBuilder",
    "BuilderBid",
    "CreateValidator",
    "Delegate",
    "Undelegate",
    "EditValidator",
    "Unjail",
    "WithdrawRewards",
    "is_conditional",
]


class OrderType(IntEnum):
    """How an order enters the book.

    ``MARKET`` is IOC bounded by a protection price (the oracle ± the market's price band).
    The conditional kinds wait in the trigger store until the oracle reaches
    ``trigger_price`` (checked at the end of each block); ``*_MARKET`` kinds then go in as
    market orders, ``*_LIMIT`` kinds as limit orders with their price and time in force.
    """

    LIMIT = 0
    MARKET = 1
    STOP_MARKET = 2
    STOP_LIMIT = 3
    TAKE_PROFIT_MARKET = 4
    TAKE_PROFIT_LIMIT = 5


def is_conditional(order_type: int) -> bool:
    return order_type >= OrderType.STOP_MARKET


@register_tx_body
@message
class PlaceOrder:
    """A new order. ``price`` is the limit in ticks (ignored for market kinds, send 0);
    ``trigger_price`` in ticks only for conditional kinds (0 otherwise); ``good_til_block``
    0 for none, else the last height at which the order may rest; ``client_id`` the
    trader's own id, unique among the trader's open orders in the market."""

    TAG: ClassVar[int] = 10

    market_id: U32
    side: U8
    order_type: U8
    time_in_force: U8
    price: U64
    size: U64
    trigger_price: U64
    reduce_only: bool
    client_id: U32
    good_til_block: U64


@register_tx_body
@message
class CancelOrder:
    """Cancel one open order (resting or conditional) in ``market_id``: by ``order_id``,
    or, when ``by_client_id``, by the sender's ``client_id``."""

    TAG: ClassVar[int] = 11

    market_id: U32
    order_id: U64
    client_id: U32
    by_client_id: bool


@register_tx_body
@message
class CancelAll:
    """Cancel every open order of the sender in ``market_id``, or in every market."""

    TAG: ClassVar[int] = 12

    market_id: U32
    all_markets: bool


@register_tx_body
@message
class ReplaceOrder:
    """Replace an open order (found by ``order_id``, or by ``client_id`` when
    ``by_client_id``) in ``order.market_id`` with ``order``. Shrinking a resting limit
    order at the same price and side keeps its time priority (an amend); anything else is
    a cancel followed by a new order. A replacement refused by the checks that do not need
    the book (market, size, price band, margin, reduce-only, open-order cap) leaves the old
    order untouched; one the book refuses (post-only that would take, FOK that cannot
    fill, a client id already in use) leaves it cancelled."""

    TAG: ClassVar[int] = 13

    order_id: U64
    client_id: U32
    by_client_id: bool
    order: PlaceOrder


@register_tx_body
@message
class Transfer:
    """Move ``amount`` micro-units of free collateral to another account (created if new)."""

    TAG: ClassVar[int] = 14

    recipient: Address
    amount: U64


@register_tx_body
@message
class Withdraw:
    """Send ``amount`` micro-units of free collateral off the chain."""

    TAG: ClassVar[int] = 15

    amount: U64


@register_tx_body
@message
class Faucet:
    """Mint ``amount`` micro-units to the sender: only on chains whose genesis enables the
    faucet, at most ``params.faucet_max_amount`` per tx."""

    TAG: ClassVar[int] = 16

    amount: U64


#: A builder's name: printable ASCII, 1 to 64 characters.
BuilderName = Annotated[str, Str(64, min_len=1, ascii=True)]


@register_tx_body
@message
class RegisterBuilder:
    """Register the sender as a block builder named ``name``, bonding ``bond`` micro-units
    of its free collateral (at least ``params.min_builder_bond``). The sender's key is the
    one its bids must be signed with."""

    TAG: ClassVar[int] = 17

    name: BuilderName
    bond: U64


@register_tx_body
@message
class BondBuilder:
    """Add ``amount`` micro-units of the sender's free collateral to its builder bond."""

    TAG: ClassVar[int] = 18

    amount: U64


@register_tx_body
@message
class UnbondBuilder:
    """Start unbonding ``amount`` micro-units of the sender's builder bond: from now on it
    backs no bid, and it returns to the sender's balance ``params.builder_unbonding_blocks``
    blocks later."""

    TAG: ClassVar[int] = 19

    amount: U64


@register_tx_body
@message
class BuilderBid:
    """A builder's bid of ``value`` micro-units for building the block at ``height``,
    proposed in ``round`` by ``proposer``, holding the txs whose merkle root is
    ``txs_hash`` in that order. Signed (as any tx) by the builder's registered key; the
    proposer puts it first in the block, followed by exactly those txs. It never enters a
    mempool. Paid from the builder's bond when the block executes."""

    TAG: ClassVar[int] = 20

    height: U64
    round: U32
    proposer: Address
    value: U64
    txs_hash: Hash32


#: A validator's name: printable ASCII, 1 to 64 characters; its details (a website, a
#: contact, what it is): printable ASCII, at most 256.
Moniker = Annotated[str, Str(64, min_len=1, ascii=True)]
ValidatorDetails = Annotated[str, Str(256, ascii=True)]


@register_tx_body
@message
class CreateValidator:
    """Make the sender the operator of a new validator that signs with the consensus key
    ``public_key``, bonding ``amount`` micro-units of the sender's free collateral as its
    self-bond (at least ``params.min_self_bond``). ``key_signature`` is the consensus
    key's signature of the sender's address
    (:func:`appchaind.exchange.staking.key_signature`): only the key's holder can put it
    in a validator. ``commission_ppm``: the share of its delegators' rewards it keeps."""

    TAG: ClassVar[int] = 21

    public_key: PubKey
    key_signature: Signature
    moniker: Moniker
    details: ValidatorDetails
    commission_ppm: U32
    amount: U64


@register_tx_body
@message
class Delegate:
    """Bond ``amount`` micro-units of the sender's free collateral to the validator whose
    operator is ``validator`` (its operator's own delegation is its self-bond)."""

    TAG: ClassVar[int] = 22

    validator: Address
    amount: U64


@register_tx_body
@message
class Undelegate:
    """Take ``amount`` micro-units of the sender's stake off the validator ``validator``
    at once (its power drops in this block's validator updates); they return to the
    sender's balance ``params.stake_unbonding_blocks`` blocks later."""

    TAG: ClassVar[int] = 23

    validator: Address
    amount: U64


@register_tx_body
@message
class EditValidator:
    """Replace the description and commission of the sender's validator."""

    TAG: ClassVar[int] = 24

    moniker: Moniker
    details: ValidatorDetails
    commission_ppm: U32


@register_tx_body
@message
class Unjail:
    """Return the sender's validator, jailed for downtime, to the validators the set is
    chosen from: refused before its jail term is over, for a tombstoned validator, and
    when its self-bond is below ``params.min_self_bond``. It joins the set at the end of
    the tx's block (in effect two heights later) if its power ranks."""

    TAG: ClassVar[int] = 25


@register_tx_body
@message
class WithdrawRewards:
    """Pay the sender what the validator ``validator`` owes it: its delegation's share of
    the rewards since they were last paid and, if the sender is the validator's
    operator, the commission (:mod:`~appchaind.exchange.rewards`). Refused when that is
    nothing."""

    TAG: ClassVar[int] = 26

    validator: Address
