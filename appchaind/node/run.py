"""Running a node from the command line: ``appchaind start``."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import trio

from appchaind.errors import StartupError
from appchaind.telemetry.logs import configure_logging
from config.node_config import load_config

__all__ = ["start_node"]

#: How long a thread may hold the GIL while another waits for it (CPython's default: 5 ms).
#: The signature checks run on worker threads that need the GIL briefly around each
#: libsodium call; with the event loop busy, each check waited up to the whole interval
#: for it, and admission stalled at a few hundred checks per second.
GIL_SWITCH_INTERVAL_S = 0.0005


def start_node(home: Path) -> None:
    """Runs the node at ``home`` until SIGINT or SIGTERM; then stops it cleanly."""
    config = load_config(home)
    configure_logging(config.logging.level, config.logging.format)
    from appchaind.node.node import Node
    from appchaind.node.service import serve_node

    node = Node(home, manage_gc=True)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_node, node)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    try:
        trio.run(main)
    except BaseExceptionGroup as group:
        matched, rest = group.split(StartupError)
        if matched is None or rest is not None:
            raise
        raise _first_leaf(matched) from None


def _first_leaf(group: BaseExceptionGroup[StartupError]) -> StartupError:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
