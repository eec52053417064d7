"""The result of a tx as the client library gives it (:meth:`Client.broadcast`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["TxResult"]


@dataclass(frozen=True)
class TxResult:
    """What ``broadcast`` returns: ``code`` 0 = accepted (sync) / applied (commit);
    ``height`` None until committed; ``fills`` (maps with market, price, size, taker_side,
    maker, taker, fees) and ``events`` in edge units; ``order_id`` of the order the tx
    placed, when it placed one."""

    tx_hash: str
    code: int
    log: str
    height: int | None = None
    fills: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def order_id(self) -> int | None:
        for event in self.events:
            if event.get("kind") == "order" and event.get("client_id", 0) != -1:
                order_id: int = event["order_id"]
                return order_id
        return None

    @classmethod
    def from_map(cls, doc: dict[str, Any]) -> TxResult:
        return cls(
            doc["tx_hash"], doc["code"], doc.get("log", ""), doc.get("height"),
            doc.get("fills", []), doc.get("events", []),
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``--json`` shape: tx_hash, code, log, height, fills (and events)."""
        return {
            "tx_hash": self.tx_hash, "code": self.code, "log": self.log, "height": self.height,
            "order_id": self.order_id, "fills": self.fills, "events": self.events,
        }  # fmt: skip
