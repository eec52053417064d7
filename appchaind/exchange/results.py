"""What the application returns: result codes, tx results, block results and events.

An event is ``Event(kind, attributes)`` with a plain dict of ints, bools, bytes and
strings (addresses are 20 raw bytes; hex them at the JSON edge). Kinds and attributes:

========================  ==========================================================
``order``                 market, order_id, owner, client_id, status, size (lots),
                          status one of ``resting``, ``filled``, ``cancelled``,
                          ``expired``, ``self_trade``, ``vetoed``, ``rejected``,
                          ``triggered``, ``conditional``, ``resized``, ``partially_filled``
``fill``                  market, maker_order_id, maker, taker_order_id, taker,
                          taker_side, price (ticks), size (lots), maker_fee, taker_fee
                          (micro-units), liquidation (bool)
``oracle``                market, price, previous, reported_power, total_power
``funding``               market, rate_ppm, index, index_step
``funding_payment``       account, amount (micro-units paid; negative = received)
``liquidation``           account, market, size, bankruptcy_price, step (``book``,
                          ``insurance``, ``adl``), filled, remaining
``liquidation_fee``       account, amount
``insurance_cover``       account, amount
``adl``                   market, account, counterparty, price, size
``transfer``/``withdraw``/``faucet``  sender/recipient/amount
========================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, NamedTuple

__all__ = ["Code", "Event", "TxResult", "BlockResult", "OK_RESULT"]


class Code(IntEnum):
    """Tx result codes. 0 is success; a nonzero code changed nothing but (from
    ``INVALID_ORDER`` on) the sender's recorded nonce."""

    OK = 0
    MALFORMED = 1
    BAD_SIGNATURE = 2
    WRONG_CHAIN = 3
    EXPIRED = 4
    NONCE_OUT_OF_WINDOW = 5
    NONCE_REPLAYED = 6
    UNKNOWN_ACCOUNT = 7
    UNKNOWN_MARKET = 8
    INVALID_ORDER = 20
    INSUFFICIENT_MARGIN = 21
    POST_ONLY_WOULD_TAKE = 22
    FOK_NOT_FILLED = 23
    TOO_MANY_OPEN_ORDERS = 24
    ORDER_NOT_FOUND = 25
    DUPLICATE_CLIENT_ID = 26
    REDUCE_ONLY_REJECTED = 27
    INSUFFICIENT_FREE_COLLATERAL = 28
    FAUCET_DISABLED = 29
    PRICE_OUTSIDE_BAND = 30


class Event(NamedTuple):
    kind: str
    attributes: dict[str, Any]


@dataclass(slots=True)
class TxResult:
    """The outcome of one tx: ``code`` (0 = applied), ``log`` (what was wrong, for the
    trader), ``events`` in the order things happened."""

    code: int
    log: str = ""
    events: list[Event] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code == 0


OK_RESULT = TxResult(0)


@dataclass(slots=True)
class BlockResult:
    """What :meth:`ExchangeApp.finalize_block` returns: one result per tx of the block in
    the block's order, the block-level events (oracle, triggers, expiry, funding,
    liquidations), validator updates (always empty: the exchange does not change the
    validator set) and the app hash after the block."""

    height: int
    tx_results: list[TxResult]
    events: list[Event]
    app_hash: bytes
    validator_updates: list[Any] = field(default_factory=list)
