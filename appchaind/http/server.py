"""A small HTTP/1.1 server on trio, parsing with h11 (never by hand).

Routes map ``(method, first path segment)`` to an async handler that receives
the request and returns a :class:`Response`. Errors are JSON
``{"error": {"code": N, "message": "..."}}``. A handler's exception becomes a 500
without touching the node. What a client can take is bounded:

- connections: at most ``max_connections`` at once, and ``max_connections_per_host``
  from one IP address; one more is answered 503 and closed (and counted, logged
  at most once per few seconds: :meth:`ConnectionGuard.refuse`);
- time: a request, headers and body, must come within ``timeout_s``, or (a
  slow-loris) it is answered 408 and closed; a kept-alive connection with no new
  request within ``timeout_s`` is closed;
- size: a body over ``max_body_bytes`` is answered 413 and the connection closed,
  at once when its content-length says so; headers over 64 KiB are answered 400.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11
import trio

from appchaind.containment import ConnectionGuard, FailureHook
from appchaind.errors import open_listeners
from appchaind.telemetry.logs import get_logger

__all__ = ["HttpServer", "Request", "Response", "json_response", "error_response"]

log = get_logger("http")


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    segments: tuple[str, ...]
    query: dict[str, list[str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(status, (json.dumps(doc, indent=None, separators=(",", ":")) + "\n").encode())


def error_response(status: int, message: str) -> Response:
    return json_response({"error": {"code": status, "message": message}}, status)


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    """Serves ``routes``: {("GET", "status"): handler, ...}; the key's second item is the
    first path segment ("" for "/")."""

    def __init__(
        self,
        routes: dict[tuple[str, str], Handler],
        *,
        max_body_bytes: int = 1024 * 1024,
        timeout_s: float = 10.0,
        max_connections: int = 256,
        max_connections_per_host: int = 64,
        port_name: str = "http",
        on_connection_failure: FailureHook | None = None,
    ) -> None:
        self.routes = routes
        #: Contains what one connection raises (a reset, a protocol error, a bug).
        self.guard = ConnectionGuard(
            port_name, protocol_errors=(h11.ProtocolError,), on_failure=on_connection_failure
        )
        self.max_body_bytes = max_body_bytes
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self.max_connections_per_host = max_connections_per_host
        self.connections = 0
        #: Open connections per client IP address.
        self._per_host: Counter[str] = Counter()
        self.requests_total = 0
        self.bound_port = 0

    async def run(
        self,
        host: str,
        port: int,
        config_key: str = "http.listen_address",
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        listeners = await open_listeners(host, port, config_key)
        self.bound_port = listeners[0].socket.getsockname()[1]
        log.info("http_listening", address=f"{host}:{self.bound_port}")
        task_status.started(self.bound_port)
        await self.guard.serve_listeners(self._serve_connection, listeners)

    async def _serve_connection(self, stream: trio.SocketStream, peer: str) -> None:
        """One connection, run through :attr:`guard` (which closes the stream)."""
        host = peer.rpartition(":")[0]
        refusal = None
        if self.connections >= self.max_connections:
            refusal = f"too many HTTP connections (limit {self.max_connections})"
        elif self._per_host[host] >= self.max_connections_per_host:
            refusal = (
                f"too many HTTP connections from {host} "
                f"(limit {self.max_connections_per_host} per host)"
            )
        if refusal is not None:
            self.guard.refuse(peer, refusal)
            with trio.move_on_after(1):
                await stream.send_all(_raw_error(503, refusal))
            return
        self.connections += 1
        self._per_host[host] += 1
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        try:
            while True:
                keep_going = False
                with trio.move_on_after(self.timeout_s) as timer:
                    keep_going = await self._one_request(conn, stream)
                if keep_going:
                    continue
                if (
                    timer.cancelled_caught
                    and _partial(conn)
                    and conn.our_state in (h11.IDLE, h11.SEND_RESPONSE)
                ):
                    # Timed out inside a request (a slow-loris): say so, then close.
                    message = f"request not complete within {self.timeout_s:g} s; closing"
                    with trio.move_on_after(1):
                        await stream.send_all(_raw_error(408, message))
                return
        finally:
            self.connections -= 1
            self._per_host[host] -= 1
            if not self._per_host[host]:
                del self._per_host[host]

    async def _next_event(self, conn: h11.Connection, stream: trio.SocketStream) -> Any:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                conn.receive_data(data)
                continue
            return event

    async def _one_request(self, conn: h11.Connection, stream: trio.SocketStream) -> bool:
        """Serves one request; True when the connection may carry another."""
        try:
            event = await self._next_event(conn, stream)
            if isinstance(event, h11.ConnectionClosed):
                return False
            if not isinstance(event, h11.Request):
                return False
            declared = _content_length(event)
            if declared > self.max_body_bytes:
                # Refused before its body is read: the client learns at once.
                response = error_response(
                    413,
                    f"request body larger than {self.max_body_bytes} bytes "
                    f"(content-length {declared})",
                )
                await self._send(conn, stream, response, close=True)
                return False
            body = bytearray()
            while True:
                part = await self._next_event(conn, stream)
                if isinstance(part, h11.Data):
                    body += part.data
                    if len(body) > self.max_body_bytes:
                        response = error_response(
                            413, f"request body larger than {self.max_body_bytes} bytes"
                        )
                        await self._send(conn, stream, response, close=True)
                        return False
                elif isinstance(part, h11.EndOfMessage):
                    break
                else:
                    return False
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await self._send(
                    conn, stream, error_response(400, f"bad HTTP request: {exc}"), close=True
                )
            return False
        response = await self._dispatch(event, bytes(body))
        await self._send(conn, stream, response, close=False)
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            return False
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            return False
        return True

    async def _dispatch(self, event: h11.Request, body: bytes) -> Response:
        self.requests_total += 1
        method = event.method.decode("ascii", "replace")
        target = _split_target(event.target.decode("ascii", "replace"))
        if target is None:
            return error_response(400, "the request target is neither a path nor a URL")
        path, query = target
        segments = tuple(unquote(s) for s in path.split("/") if s)
        handler = self.routes.get((method, segments[0] if segments else ""))
        if handler is None:
            allowed = sorted(
                {m for (m, s) in self.routes if s == (segments[0] if segments else "")}
            )
            if allowed:
                return error_response(405, f"{method} not allowed here; use {', '.join(allowed)}")
            known = sorted({f"/{s}" for (_m, s) in self.routes})
            return error_response(404, f"no such endpoint {path}; endpoints: {', '.join(known)}")
        request = Request(method, path, segments, parse_qs(query), body)
        try:
            return await handler(request)
        except Exception as exc:  # a handler bug must not take the node down
            log.error("http_handler_failed", path=path, error=repr(exc))
            return error_response(500, f"internal error: {type(exc).__name__}")

    async def _send(
        self, conn: h11.Connection, stream: trio.SocketStream, response: Response, *, close: bool
    ) -> None:
        headers = [
            ("content-type", response.content_type),
            ("content-length", str(len(response.body))),
            *response.headers,
        ]
        if close:
            headers.append(("connection", "close"))
        try:
            data = conn.send(h11.Response(status_code=response.status, headers=headers))
            data += conn.send(h11.Data(data=response.body))
            data += conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            return
        await stream.send_all(data)


def _split_target(target: str) -> tuple[str, str] | None:
    """(path, query) of a request target: the origin form (``/block/5?x=1``, read as it is:
    ``urlsplit`` would take ``//host/...`` for a network location) or the absolute form
    (``http://node/block/5``); None for anything else (``urlsplit`` refuses ``http://[``)."""
    if target.startswith("/"):
        path, _, query = target.partition("#")[0].partition("?")
        return path, query
    try:
        split = urlsplit(target)
    except ValueError:
        return None
    if not split.scheme or not split.netloc:
        return None
    return split.path or "/", split.query


def _partial(conn: h11.Connection) -> bool:
    """True when part of a request has come, not all of it (neither a kept-alive
    connection left idle nor a request whose answer took the time)."""
    if conn.their_state is h11.IDLE:
        return bool(conn.trailing_data[0])
    return conn.their_state is not h11.DONE


def _content_length(request: h11.Request) -> int:
    """The request's declared body size (0 when it declares none: h11 has checked the
    header's form)."""
    for name, value in request.headers:
        if name == b"content-length":
            return int(value)
    return 0


def _raw_error(status: int, message: str) -> bytes:
    """A whole JSON error response that closes the connection, for a client this server
    will not read a request from (refused, or timed out before its request was whole)."""
    body = json_response({"error": {"code": status, "message": message}}).body
    reason = {408: "Request Timeout", 503: "Service Unavailable"}[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body
