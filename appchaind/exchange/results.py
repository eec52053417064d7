"""What the application returns: result codes, tx results and block results.

A :class:`TxResult` carries the tx's events and a :class:`BlockResult` the block's (the
kinds and their attributes are listed in :mod:`appchaind.events`, which also defines
:class:`Event`; the names are re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from appchaind.codes import Code
from appchaind.events import COMPACT_EVENT_FIELDS, Event, PendingEvent, expand_events

__all__ = [
    "Code",
    "Event",
    "TxResult",
    "BlockResult",
    "OK_RESULT",
    "APPLIED",
    "COMPACT_EVENT_FIELDS",
    "expand_events",
    "PendingEvent",
]


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

#: What the rule of a tx body returns when the tx applied: (code 0, no log).
APPLIED: Final = (0, "")


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
