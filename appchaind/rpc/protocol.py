"""Sans-I/O framing of the RPC port (see :mod:`appchaind.rpc` for the message shapes).

:class:`FrameDecoder` takes bytes as they arrive and returns complete frame payloads; it
never allocates more than its ``max_frame_bytes`` for one frame. :func:`parse_request`
turns a payload into ``(id, method, params)`` or raises :class:`ProtocolError` naming the
problem. Both the server and :mod:`appchaind.client.library` use this module.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any

import msgpack

__all__ = [
    "MAX_PARAMS_DEPTH",
    "REQUEST",
    "RESPONSE",
    "STREAM",
    "DROP",
    "ErrorCode",
    "RpcError",
    "ProtocolError",
    "FrameDecoder",
    "frame",
    "pack",
    "unpack",
    "parse_request",
    "request_frame",
    "response_frame",
    "error_frame",
]

REQUEST, RESPONSE, STREAM, DROP = 0, 1, 2, 3
_HEADER = struct.Struct(">I")
#: Nesting and container limits applied to any unpacked frame (beside its byte size).
_MAX_ITEMS = 100_000
#: How deep a request's params may nest (``{"a": [1]}`` is 2 deep). No method takes more
#: than 2; msgpack nests up to about 1,000, deep enough to exhaust Python's recursion in
#: any code that walks such a value (a repr in an error message did).
MAX_PARAMS_DEPTH = 16


class ErrorCode(IntEnum):
    """Error codes of RPC responses (and of the HTTP JSON errors' ``code`` where no HTTP
    status fits)."""

    MALFORMED = 1  # not msgpack, or not the request shape
    TOO_LARGE = 2  # frame over the size limit
    UNKNOWN_METHOD = 3
    BAD_PARAMS = 4
    NOT_FOUND = 5
    RATE_LIMITED = 6
    TOO_MANY_SUBSCRIPTIONS = 7
    TIMEOUT = 8
    INTERNAL = 9
    UNAVAILABLE = 10

    @property
    def http_status(self) -> int:
        """The HTTP port's status for this error."""
        return _HTTP_STATUS.get(self, 400)


_HTTP_STATUS = {
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL: 500,
}


class RpcError(Exception):
    """An error response: ``code`` (an :class:`ErrorCode`) and a message for the caller."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message

    def __str__(self) -> str:
        try:
            name = ErrorCode(self.code).name
        except ValueError:
            name = str(self.code)
        return f"{name}: {self.message}"


class ProtocolError(RpcError):
    """The peer broke the framing or the message shape."""


def pack(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def unpack(payload: bytes, max_bytes: int) -> Any:
    """msgpack-decode an untrusted payload with size limits; raises only ProtocolError."""
    limit = min(max_bytes, _MAX_ITEMS * 64)
    try:
        return msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=True,
            max_bin_len=max_bytes,
            max_str_len=max_bytes,
            max_array_len=min(limit, _MAX_ITEMS),
            max_map_len=min(limit, _MAX_ITEMS),
            max_ext_len=0,
        )
    except Exception as exc:  # the msgpack library's boundary: every failure becomes ours
        raise ProtocolError(
            ErrorCode.MALFORMED, f"frame is not valid msgpack ({type(exc).__name__}: {exc})"
        ) from None


def frame(payload: bytes) -> bytes:
    """``payload`` with its 4-byte big-endian length prefix."""
    return _HEADER.pack(len(payload)) + payload


def request_frame(request_id: int, method: str, params: dict[str, Any]) -> bytes:
    return frame(pack([REQUEST, request_id, method, params]))


def response_frame(request_id: int | None, result: Any) -> bytes:
    return frame(pack([RESPONSE, request_id, None, result]))


def error_frame(request_id: int | None, code: int, message: str) -> bytes:
    return frame(pack([RESPONSE, request_id, {"code": int(code), "message": message}, None]))


class FrameDecoder:
    """Splits a byte stream into frame payloads of at most ``max_frame_bytes``."""

    def __init__(self, max_frame_bytes: int) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held of a frame not yet complete (0 between frames)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """The complete payloads ``data`` finishes. Raises ProtocolError (TOO_LARGE) when a
        length prefix exceeds the limit; the decoder is unusable afterwards."""
        self._buffer += data
        out = []
        while len(self._buffer) >= 4:
            (length,) = _HEADER.unpack_from(self._buffer)
            if length > self.max_frame_bytes:
                raise ProtocolError(
                    ErrorCode.TOO_LARGE,
                    f"frame of {length} bytes is over the limit of {self.max_frame_bytes} bytes",
                )
            if len(self._buffer) < 4 + length:
                break
            out.append(bytes(self._buffer[4 : 4 + length]))
            del self._buffer[: 4 + length]
        return out


def parse_request(payload: bytes, max_bytes: int) -> tuple[int, str, dict[str, Any]]:
    """``(id, method, params)`` of a request payload, or ProtocolError naming the problem.
    The error carries the request id when one could be read (``.request_id``)."""
    message = unpack(payload, max_bytes)
    if not isinstance(message, list) or len(message) != 4 or message[0] != REQUEST:
        raise ProtocolError(
            ErrorCode.MALFORMED,
            "a request is the msgpack array [0, id, method, params]",
        )
    _kind, request_id, method, params = message
    if type(request_id) is not int or not 0 <= request_id < 1 << 64:
        raise ProtocolError(ErrorCode.MALFORMED, "request id must be an unsigned integer")
    if not isinstance(method, str):
        error = ProtocolError(ErrorCode.MALFORMED, "method must be a string")
        error.request_id = request_id  # type: ignore[attr-defined]
        raise error
    if params is None:
        params = {}
    if not isinstance(params, dict):
        error = ProtocolError(ErrorCode.BAD_PARAMS, "params must be a map with string keys")
        error.request_id = request_id  # type: ignore[attr-defined]
        raise error
    if _nests_deeper(params, MAX_PARAMS_DEPTH):
        error = ProtocolError(
            ErrorCode.BAD_PARAMS, f"params nest deeper than {MAX_PARAMS_DEPTH} levels"
        )
        error.request_id = request_id  # type: ignore[attr-defined]
        raise error
    return request_id, method, params


def _nests_deeper(value: Any, limit: int) -> bool:
    """True when ``value`` (unpacked msgpack) holds arrays or maps more than ``limit`` deep;
    without recursion, so a value of any depth is measured."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if type(item) is list:
            items: Any = item
        elif type(item) is dict:
            items = item.values()
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((inner, depth + 1) for inner in items)
    return False
