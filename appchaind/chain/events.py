"""What the exchange state machine reports: events.

An event is ``Event(kind, attributes)`` with a plain dict of ints, bools, bytes and
strings (addresses are 20 raw bytes; hex them at the JSON edge). Amounts are micro-units
of the quote asset, prices ticks, sizes lots. Kinds and attributes:

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

Events are their own module, below the exchange application, so that the margin engine,
which the application imports, can report them too (the liquidation process,
:mod:`margin.liquidator`); :class:`appchaind.abci.TxResult` carries them to the node and
the wire.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["Event", "PendingEvent", "COMPACT_EVENT_FIELDS", "expand_events"]


class Event(NamedTuple):
    kind: str
    attributes: dict[str, Any]


#: Attribute names of the events the application records on its hot path as compact
#: tuples ``(kind, value, ...)``: values in this order. :class:`~appchaind.abci.TxResult`
#: expands them into :class:`Event` the first time its ``events`` are read, so a block that nobody inspects
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
