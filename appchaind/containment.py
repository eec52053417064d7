"""What one outside connection raises ends that connection, never the node.

Every listening port (p2p, RPC, HTTP, and the builder port when it exists) runs each
accepted connection through a :class:`ConnectionGuard`, and so do the tasks a node starts
for one outside party (a peer's gossip, an outbound dial). The rules:

- An ``Exception`` raised by the handler, naked or inside an exception group (trio's
  nurseries group what their children raise), is contained: the stream is closed, one
  line is logged with the port, the peer and the reason, and the failure is counted by
  reason (``statistics()``; the node exports it as
  ``appchaind_listener_connection_errors_total{port,reason}``).
- Cancellation (the node stopping) and ``BaseException`` that are not ``Exception``
  (``KeyboardInterrupt``, ``SystemExit``) pass through untouched.
- Reasons are a small fixed set, so that metric labels stay bounded: ``reset``,
  ``broken_pipe``, ``broken`` (another broken stream), ``closed``, ``timeout``,
  ``os_error``, ``protocol`` (the peer sent what the port's protocol forbids),
  ``internal`` (a bug in this node's handling of one connection: logged as an error with
  the place it was raised, and still contained), and ``refused`` (a connection over
  one of the port's limits, refused by :meth:`ConnectionGuard.refuse`).
- A flood of refusals is counted one by one but logged at most once per
  ``REFUSAL_LOG_S`` per port, each line with the number refused since the last one.

A failure that is not one connection's, such as a listener that cannot accept, still
stops the node, with a one-line error (:meth:`ConnectionGuard.serve_listeners`).
"""

from __future__ import annotations

import errno
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import trio

from appchaind.errors import StartupError
from appchaind.telemetry.logs import get_logger

__all__ = [
    "REASONS",
    "ConnectionGuard",
    "ConnectionHandler",
    "FailureHook",
    "GuardStatistics",
    "close_quietly",
    "failure_reason",
]

log = get_logger("containment")

REASONS = (
    "reset",
    "broken_pipe",
    "broken",
    "closed",
    "timeout",
    "os_error",
    "protocol",
    "internal",
    "refused",
)
#: Seconds between two log lines of one port's refused connections.
REFUSAL_LOG_S = 5.0

T = TypeVar("T")

#: accept(2) errors of one connection that went away before it was accepted (as trio's).
_IGNORABLE_ACCEPT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EPERM", "ECONNABORTED", "EPROTO", "ENETDOWN", "ENOPROTOOPT", "EHOSTDOWN", "ENONET",
        "EHOSTUNREACH", "EOPNOTSUPP", "ENETUNREACH", "ENOSR", "ESOCKTNOSUPPORT",
        "EPROTONOSUPPORT", "ETIMEDOUT", "ECONNRESET",
    )
    if hasattr(errno, name)
)  # fmt: skip
#: accept(2) errors of a host out of resources: wait and retry.
_CAPACITY_ERRNOS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS))

#: Serves one accepted connection: ``handler(stream, "host:port")``.
ConnectionHandler = Callable[[trio.SocketStream, str], Awaitable[None]]
#: Called with (port, reason) for each contained failure (the node counts it in metrics).
FailureHook = Callable[[str, str], None]


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it (trio raises BrokenResourceError from the OSError)."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(found) < 8:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _leaf_reason(exc: BaseException, protocol_errors: tuple[type[BaseException], ...]) -> str:
    if isinstance(exc, protocol_errors):
        return "protocol"
    chain = _chain(exc)
    if any(isinstance(e, ConnectionResetError | ConnectionAbortedError) for e in chain):
        return "reset"
    if any(isinstance(e, BrokenPipeError) for e in chain):
        return "broken_pipe"
    if isinstance(exc, trio.BrokenResourceError):
        return "broken"
    if isinstance(exc, trio.ClosedResourceError):
        return "closed"
    if isinstance(exc, TimeoutError | trio.TooSlowError):
        return "timeout"
    if isinstance(exc, OSError):
        return "os_error"
    return "internal"


def failure_reason(
    exc: BaseException, protocol_errors: tuple[type[BaseException], ...] = ()
) -> tuple[str, BaseException]:
    """The reason for a contained failure, and the leaf exception it was read from. A bug
    (``internal``) wins over connection faults raised beside it, so it is never hidden."""
    leaves = _leaves(exc)
    reasons = [(_leaf_reason(leaf, protocol_errors), leaf) for leaf in leaves]
    for reason, leaf in reasons:
        if reason == "internal":
            return reason, leaf
    return reasons[0]


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno} in {last.name}"


@dataclass(frozen=True, slots=True)
class GuardStatistics:
    """Contained failures since start, per reason (every reason of :data:`REASONS`)."""

    port: str
    failures: dict[str, int]


class ConnectionGuard:
    """Contains what one connection (or one outside party's task) raises, for ``port``.

    ``protocol_errors``: the port's own "the peer broke the protocol" exception types
    (reason ``protocol``). ``on_failure(port, reason)`` is called for each failure."""

    def __init__(
        self,
        port: str,
        *,
        protocol_errors: tuple[type[BaseException], ...] = (),
        on_failure: FailureHook | None = None,
    ) -> None:
        self.port = port
        self.protocol_errors = protocol_errors
        self.on_failure = on_failure
        self._failures = dict.fromkeys(REASONS, 0)
        self._refused_unlogged = 0
        self._refusal_logged_at = -REFUSAL_LOG_S

    async def serve_listeners(
        self,
        handler: ConnectionHandler,
        listeners: list[trio.SocketListener],
    ) -> NoReturn:
        """Accepts connections on ``listeners`` forever and runs ``handler`` on each,
        contained (as ``trio.serve_listeners``, but the peer's address is taken from
        accept(2) and handed to the handler, so a connection reset before its handler
        ran is still named).

        A transient accept error (the peer gave up, too many open files) is logged and
        the loop goes on; any other accept error is the listener's, not a connection's,
        and raises :class:`~appchaind.errors.StartupError`, which stops the node."""
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(self._accept_loop, listener, handler, nursery)
        raise AssertionError("unreachable: the accept loops never return")

    async def _accept_loop(
        self,
        listener: trio.SocketListener,
        handler: ConnectionHandler,
        nursery: trio.Nursery,
    ) -> None:
        async with listener:
            while True:
                try:
                    sock, address = await listener.socket.accept()
                except OSError as exc:
                    if exc.errno in _IGNORABLE_ACCEPT_ERRNOS:
                        continue
                    if exc.errno in _CAPACITY_ERRNOS:
                        log.warning("accept_failed", port=self.port, error=str(exc), retry_s=0.1)
                        await trio.sleep(0.1)
                        continue
                    raise StartupError(
                        f"the {self.port} port stopped accepting connections ({exc}); "
                        "restart the node, and check the host's network and file limits"
                    ) from None
                peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else "?"
                nursery.start_soon(self.serve_one, handler, trio.SocketStream(sock), peer)

    async def serve_one(
        self,
        handler: ConnectionHandler,
        stream: trio.SocketStream,
        peer: str,
    ) -> None:
        """Runs ``handler(stream, peer)`` contained, then closes the stream."""
        try:
            await self.run(handler, stream, peer, peer=peer)
        finally:
            with trio.CancelScope(shield=True):
                await close_quietly(stream)

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any, peer: str = "?") -> T | None:
        """``fn(*args)``'s result, or None when a failure was contained."""
        failed: BaseException | None = None
        result: T | None = None
        try:
            result = await fn(*args)
        except* Exception as group:
            failed = group
        if failed is not None:
            self.record(failed, peer)
        return result

    def record(self, exc: BaseException, peer: str) -> None:
        """Logs and counts one contained failure."""
        reason, leaf = failure_reason(exc, self.protocol_errors)
        self._failures[reason] += 1
        text = f"{type(leaf).__name__}: {leaf}"[:200]
        if reason == "internal":
            log.error(
                "connection_failed", port=self.port, peer=peer, reason=reason, error=text,
                where=_where(leaf),
            )  # fmt: skip
        else:
            log.info("connection_failed", port=self.port, peer=peer, reason=reason, error=text)
        if self.on_failure is not None:
            self.on_failure(self.port, reason)

    def refuse(self, peer: str, why: str) -> None:
        """Counts a connection refused over one of the port's limits (``why`` names it);
        logged at once if no refusal was logged in the last REFUSAL_LOG_S, else with
        the next line, so a flood of connections costs a line per few seconds."""
        self._failures["refused"] += 1
        self._refused_unlogged += 1
        now = time.monotonic()
        if now - self._refusal_logged_at >= REFUSAL_LOG_S:
            log.warning(
                "connection_refused", port=self.port, peer=peer, why=why,
                refused=self._refused_unlogged, refused_total=self._failures["refused"],
            )  # fmt: skip
            self._refused_unlogged = 0
            self._refusal_logged_at = now
        if self.on_failure is not None:
            self.on_failure(self.port, "refused")

    def statistics(self) -> GuardStatistics:
        return GuardStatistics(self.port, dict(self._failures))


async def close_quietly(resource: Any) -> None:
    """Closes a stream or connection whose other end may already be gone."""
    try:
        await resource.aclose()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
