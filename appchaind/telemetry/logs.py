"""Structured logs: one line per event, ``key=value`` text or JSON.

``log = get_logger("p2p"); log.info("peer_connected", peer=node_id, inbound=True)``
writes ``2026-11-26T00:00:00.123Z info p2p peer_connected peer=ab12.. inbound=True``.
Consensus code passes ``height=`` and ``round=`` so every line can be placed.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

__all__ = ["configure_logging", "get_logger", "EventLogger"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        stamp += f".{int(record.msecs):03d}Z"
        level = record.levelname.lower()
        if self.as_json:
            doc = {"ts": stamp, "level": level, "module": record.name, "event": record.getMessage()}
            doc.update({k: _plain(v) for k, v in fields.items()})
            return json.dumps(doc, default=str)
        parts = [stamp, level, record.name, record.getMessage()]
        parts += [f"{k}={_text(v)}" for k, v in fields.items()]
        return " ".join(parts)


def _plain(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes) else value


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text


class EventLogger:
    """Logs named events with fields: ``log.info("committed", height=5, txs=10)``."""

    __slots__ = ("_logger",)

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def _log(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, extra={"fields": fields})

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields)


def get_logger(name: str) -> EventLogger:
    return EventLogger(logging.getLogger(f"appchaind.{name}"))


def configure_logging(level: str = "info", fmt: str = "text", stream: Any = None) -> None:
    """Sends appchaind's events to ``stream`` (stderr by default), one line each."""
    root = logging.getLogger("appchaind")
    root.handlers.clear()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Formatter(fmt == "json"))
    root.addHandler(handler)
    root.setLevel(_LEVELS[level])
    root.propagate = False
