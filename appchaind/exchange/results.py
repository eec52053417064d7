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
from typing import Any, NamedTuple

from appchaind.codes import Code

__all__ = [
    "Code",
    "Event",
    "TxResult",
    "BlockResult",
    "OK_RESULT",
    "COMPACT_EVENT_FIELDS",
    "expand_events",
]


class Event(NamedTuple):
    kind: str
    attributes: dict[str, Any]


#: Attribute names of the events the application records on its hot path as compact
#: tuples ``(kind, value, ...)``: values in this order. :class:`TxResult` expands them into
#: :class:`Event` the first time its ``events`` are read, so a block that nobody inspects
#: event by event never builds the dicts.
COMPACT_EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "order": ("market", "order_id", "owner", "client_id", "status", "size"),
    "fill": (
        "market", "maker_order_id", "maker", "taker_order_id", "taker", "taker_side", "price",
        "size", "maker_remaining", "maker_fee", "taker_fee", "liquidation",
    ),
}  # fmt: skip


#: What the application appends to an events list: an :class:`Event`, or the compact tuple
#: of one of the kinds in :data:`COMPACT_EVENT_FIELDS`.
PendingEvent = Event | tuple[Any, ...]


def expand_events(events: list[PendingEvent]) -> list[Event]:
    """``events`` with every compact tuple turned into its :class:`Event` (in place)."""
    fields = COMPACT_EVENT_FIELDS
    for i, event in enumerate(events):
        if type(event) is tuple:
            events[i] = Event(event[0], dict(zip(fields[event[0]], event[1:], strict=True)))
    return events  # type: ignore[return-value]


class TxResult:
    """The outcome of one tx: ``code`` (0 = applied), ``log`` (what was wrong, for the
    trader), ``events`` in the order things happened (a list of :class:`Event`)."""

    __slots__ = ("code", "log", "_events", "_expanded")

    def __init__(self, code: int, log: str = "", events: list[PendingEvent] | None = None) -> None:
        self.code = code
        self.log = log
        self._events: list[PendingEvent] = [] if events is None else events
        self._expanded = False

    @property
    def events(self) -> list[Event]:
        if not self._expanded:
            expand_events(self._events)
            self._expanded = True
        return self._events  # type: ignore[return-value]

    @events.setter
    def events(self, events: list[PendingEvent]) -> None:
        self._events = events
        self._expanded = False

    @property
    def ok(self) -> bool:
        return self.code == 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TxResult):
            return NotImplemented
        return (self.code, self.log, self.events) == (other.code, other.log, other.events)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TxResult(code={self.code!r}, log={self.log!r}, events={self.events!r})"


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
