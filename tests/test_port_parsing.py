"""What the HTTP and RPC ports answer to malformed requests the fuzzer found (tools/fuzz):
a 400 (HTTP) or a ``BAD_PARAMS`` error (RPC) naming what was wrong, never a 500, an
``INTERNAL`` error or a connection dropped without an answer.

Each request goes through the real server of its port over an in-memory stream
(``tools.fuzz.fuzz_http.serve``, ``tools.fuzz.fuzz_rpc.serve``), as the fuzz targets send
theirs; the crash inputs themselves are kept in tools/fuzz/regressions/.
"""

from __future__ import annotations

import json

import msgpack
import pytest
import trio
import trio.testing

from appchaind.http.routes import MAX_DECIMAL, decimal_param
from appchaind.http.server import Response
from appchaind.rpc.protocol import MAX_PARAMS_DEPTH, ErrorCode, FrameDecoder, frame, unpack
from tools.fuzz import fuzz_http, fuzz_rpc


def _http(request: bytes) -> list[tuple[int, dict[str, object]]]:
    output = trio.run(fuzz_http.serve, request, clock=trio.testing.MockClock(autojump_threshold=0))
    return [(status, json.loads(body)) for status, body in fuzz_http.responses(output)]


def _get(target: str) -> tuple[int, str]:
    [(status, doc)] = _http(f"GET {target} HTTP/1.1\r\nhost: node\r\n\r\n".encode())
    error = doc.get("error")
    return status, error["message"] if isinstance(error, dict) else ""


def _rpc(method: str, params: object) -> list[object]:
    request = frame(msgpack.packb([0, 7, method, params], use_bin_type=True))
    output = trio.run(fuzz_rpc.serve, request, clock=trio.testing.MockClock(autojump_threshold=0))
    return [unpack(payload, 1 << 30) for payload in FrameDecoder(1 << 30).feed(output)]


# ---------------------------------------------------------------------------- HTTP


def test_block_height_past_64_bits_is_a_400_naming_the_range() -> None:
    # Was a 500: int() took it, the store's 8-byte key did not (OverflowError).
    status, message = _get(f"/block/{2**64}")
    assert status == 400
    assert f"height must be a decimal integer from 0 to {MAX_DECIMAL}" in message
    assert _get(f"/block/{2**64 - 1}")[0] == 404  # the largest height: no such block yet


@pytest.mark.parametrize("digits", ["%C2%B2", "1%C2%B2", "%D9%A1", "%EF%BC%91"])
def test_block_height_with_a_non_ascii_digit_is_a_400(digits: str) -> None:
    # "²".isdigit() is True and int("²") raises (was a 500); int("١") (Arabic-Indic one) and
    # int("１") (fullwidth) read as 1: only ASCII digits are a height.
    status, message = _get(f"/block/{digits}")
    assert status == 400 and "height must be a decimal integer" in message


def test_block_height_of_5000_digits_is_a_400() -> None:
    # Was a 500: past Python's 4,300-digit limit int() raises ValueError.
    status, message = _get("/block/" + "9" * 5000)
    assert status == 400 and "height must be a decimal integer" in message
    assert len(message) < 200  # the answer does not echo the 5,000 digits


@pytest.mark.parametrize(
    ("target", "name"),
    [("/book/BTC-PERP?depth=%C2%B2", "depth"), ("/trades?limit=" + "7" * 5000, "limit"),
     (f"/liquidations?limit={2**70}", "limit")],
)  # fmt: skip
def test_a_query_number_that_is_not_ascii_digits_of_a_u64_is_a_400(target: str, name: str) -> None:
    status, message = _get(target)
    assert status == 400 and f"{name} must be a decimal integer" in message


def test_a_deeply_nested_json_tx_body_is_a_400() -> None:
    # Was a 500: json.loads raises RecursionError past its nesting limit.
    body = b'{"tx": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    head = f"POST /tx HTTP/1.1\r\nhost: node\r\ncontent-length: {len(body)}\r\n\r\n"
    [(status, doc)] = _http(head.encode() + body)
    assert status == 400
    assert doc["error"] == {
        "code": 400,
        "message": 'expected a JSON body {"tx": "<hex of the signed tx>"}',
    }  # type: ignore[comparison-overlap]


def test_a_request_target_urlsplit_refuses_gets_an_answer_not_a_dropped_connection() -> None:
    # Was no answer at all: urlsplit("//[x") raises ValueError ("Invalid IPv6 URL") out of
    # the connection's handler, and the port closed the connection. A path is now read as
    # a path (a 404 naming it); a URL urlsplit refuses, or no path at all, is a 400.
    status, message = _get("//[x")
    assert status == 404 and "no such endpoint //[x" in message
    for target in ("http://[x/status", "*"):
        status, message = _get(target)
        assert status == 400 and "request target" in message


def test_a_path_starting_with_two_slashes_is_a_path_not_a_host() -> None:
    # urlsplit read "//status" as the host "status" and an empty path: the status page.
    status, _ = _get("//status")
    assert status == 200
    assert _get("//block//1")[0] == 404  # /block/1: no block yet
    assert _get("http://node/status")[0] == 200  # the absolute form still works


def test_decimal_param_takes_ascii_digits_of_a_u64_only() -> None:
    assert decimal_param("0", "n") == 0
    assert decimal_param(str(MAX_DECIMAL), "n") == MAX_DECIMAL
    for text in ("", "-1", "+1", " 1", "1e3", "0x10", "²", "١", str(MAX_DECIMAL + 1), "9" * 5000):
        assert isinstance(decimal_param(text, "n"), Response), text


# ---------------------------------------------------------------------------- RPC


@pytest.mark.parametrize("method", ["subscribe", "book", "account", "trades", "unsubscribe"])
def test_rpc_params_nested_1000_deep_are_bad_params_not_an_internal_error(method: str) -> None:
    # Was INTERNAL (RecursionError): the error message's repr of the nested value ran out
    # of recursion. msgpack nests ~1,000 deep; params deeper than MAX_PARAMS_DEPTH are
    # refused before any method sees them.
    value: object = 1
    for _ in range(1000):
        value = [value]
    [reply] = _rpc(method, {"stream": value, "market": value, "address": value, "limit": value,
                            "subscription": value})  # fmt: skip
    assert reply[:2] == [1, 7] and reply[3] is None  # type: ignore[index]
    error = reply[2]  # type: ignore[index]
    assert error == {
        "code": ErrorCode.BAD_PARAMS,
        "message": f"params nest deeper than {MAX_PARAMS_DEPTH} levels",
    }


def test_rpc_params_as_deep_as_allowed_get_the_methods_own_answer() -> None:
    value: object = 1
    for _ in range(MAX_PARAMS_DEPTH - 1):
        value = [value]
    [reply] = _rpc("subscribe", {"stream": value})
    error = reply[2]  # type: ignore[index]
    assert error["code"] == ErrorCode.BAD_PARAMS and error["message"].startswith("stream must be")  # type: ignore[index]


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("book", {"market": "M" * 100_000}),
        ("subscribe", {"stream": "s" * 100_000}),
        ("unsubscribe", {"subscription": "u" * 100_000}),
    ],
)
def test_an_error_names_the_clients_value_cut_short_not_echoed_whole(
    method: str, params: dict[str, object]
) -> None:
    # Was the whole value back in the message: a client could make the node send it
    # back 100 KB (or a frame's worth) at a time.
    [reply] = _rpc(method, params)
    error = reply[2]  # type: ignore[index]
    assert error["code"] in (ErrorCode.BAD_PARAMS, ErrorCode.NOT_FOUND), error  # type: ignore[index]
    assert (
        len(error["message"]) < 300
        and "'" + 50 * next(iter(params.values()))[0] in error["message"]
    ), error  # type: ignore[index]
