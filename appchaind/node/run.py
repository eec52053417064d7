"""Running a node from the command line: ``appchaind start``."""

from __future__ import annotations

import errno
import signal
import sys
from pathlib import Path

import trio

from appchaind.errors import StartupError
from appchaind.telemetry.logs import configure_logging, get_logger
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
        full = next((exc for exc in _leaves(group) if _is_disk_full(exc)), None)
        if full is not None:
            raise _disk_full(home, full) from None
        matched, rest = group.split(StartupError)
        if matched is None or rest is not None:
            raise
        raise _first_leaf(matched) from None
    except OSError as exc:
        if not _is_disk_full(exc):
            raise
        raise _disk_full(home, exc) from None


def _first_leaf(group: BaseExceptionGroup[StartupError]) -> StartupError:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """Every exception of ``group`` that is not itself a group, and their causes and
    contexts (a disk-full error is often the context of the error that ended the task)."""
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found += _leaves(exc)
            continue
        seen: BaseException | None = exc
        while seen is not None and seen not in found:
            found.append(seen)
            seen = seen.__cause__ or seen.__context__
    return found


def _is_disk_full(exc: BaseException) -> bool:
    """An OSError for a full disk or quota: the kernel's (ENOSPC, EDQUOT), or LevelDB's
    (plyvel.IOError, whose message is LevelDB's status text)."""
    if not isinstance(exc, OSError):
        return False
    return exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(exc)


def _disk_full(home: Path, exc: BaseException) -> StartupError:
    """The node stopped because a write failed for lack of space. Every write that must
    come before a signature or an acknowledgement (the last-signed state, the WAL, the
    block and its state in one LevelDB batch) comes first, so a failed write means the
    node stopped before signing or acknowledging what it could not keep."""
    message = (
        f"stopped: the disk holding {home} is full ({exc}). Nothing was signed or "
        "acknowledged that was not stored first; free space on that filesystem (the node "
        "needs its data/ directory writable) and start the node again: it resumes from "
        "what it stored"
    )
    get_logger("node").error("disk_full", home=str(home), error=str(exc))
    return StartupError(message)
