"""The RPC framing and request parsing against random bytes (no node)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appchaind.chain.codes import Code, http_status, retryable
from appchaind.node.mempool import AddResult
from appchaind.rpc.protocol import (
    ErrorCode,
    FrameDecoder,
    ProtocolError,
    frame,
    pack,
    parse_request,
    request_frame,
)
from appchaind.rpc.server import admission_view
from appchaind.rpc.streams import _level_changes


@given(st.lists(st.binary(max_size=300), max_size=20), st.integers(1, 50))
def test_frames_survive_any_split(payloads: list[bytes], chunk: int) -> None:
    stream = b"".join(frame(p) for p in payloads)
    decoder = FrameDecoder(1000)
    out: list[bytes] = []
    for i in range(0, len(stream), chunk):
        out += decoder.feed(stream[i : i + chunk])
    assert out == payloads


@given(st.binary(max_size=2000))
def test_random_bytes_raise_only_protocol_errors(data: bytes) -> None:
    decoder = FrameDecoder(1024)
    try:
        for payload in decoder.feed(data):
            parse_request(payload, 1024)
    except ProtocolError as exc:
        assert exc.code in (ErrorCode.MALFORMED, ErrorCode.TOO_LARGE, ErrorCode.BAD_PARAMS)


def test_request_roundtrip_and_errors() -> None:
    (payload,) = FrameDecoder(1000).feed(request_frame(9, "book", {"market": "BTC-PERP"}))
    assert parse_request(payload, 1000) == (9, "book", {"market": "BTC-PERP"})
    with pytest.raises(ProtocolError, match="over the limit of 10 bytes"):
        FrameDecoder(10).feed(frame(b"x" * 11))
    with pytest.raises(ProtocolError, match="request id"):
        parse_request(pack([0, -1, "status", {}]), 1000)
    with pytest.raises(ProtocolError, match="params must be a map") as caught:
        parse_request(pack([0, 4, "status", [1]]), 1000)
    assert caught.value.request_id == 4  # type: ignore[attr-defined]


def test_book_level_changes() -> None:
    assert _level_changes([(10, 5), (9, 1)], [(10, 4), (8, 2)]) == [(10, 4), (8, 2), (9, 0)]
    assert _level_changes([(10, 5)], [(10, 5)]) == []


def test_admission_answers_carry_the_code_and_whether_to_retry() -> None:
    """One shape from the mempool to the wire: the code is the mempool's integer, never
    parsed back from its log; a busy node says to retry; each code has its HTTP status."""
    busy = AddResult(False, b"\x01" * 32, Code.MEMPOOL_FULL, "mempool is full (5 txs)")
    assert admission_view(busy) == {
        "tx_hash": "01" * 32, "code": 40, "log": "mempool is full (5 txs)",
        "duplicate": False, "retry": True, "retry_after_ms": 0,
    }  # fmt: skip
    slow = AddResult(False, b"\x03" * 32, Code.BUSY, "node busy; retry in 300 ms", 300)
    assert admission_view(slow)["code"] == 44 and admission_view(slow)["retry"]
    assert admission_view(slow)["retry_after_ms"] == 300 and Code.BUSY.http_status == 503
    refused = AddResult(False, b"\x02" * 32, Code.POST_ONLY_WOULD_TAKE, "post-only ...")
    assert admission_view(refused)["code"] == 22 and not admission_view(refused)["retry"]
    assert admission_view(AddResult(True, b"\x03" * 32))["code"] == 0
    assert [http_status(c) for c in (0, 2, 22, 40, 41, 42, 43, 999)] == [
        200, 400, 400, 503, 429, 413, 200, 400,
    ]  # fmt: skip
    assert retryable(Code.ACCOUNT_QUEUE_FULL) and not retryable(Code.BAD_SIGNATURE)
    assert not retryable(999)


def test_a_txs_indexed_events_round_trip_and_are_cut_whole_beyond_32_kib() -> None:
    from appchaind.rpc.views import pack_tx_events, unpack_tx_events

    events = (("fill", {"price": 5, "maker": "ab"}), ("order", {"status": "filled"}))
    assert unpack_tx_events(pack_tx_events(events)) == list(events)
    assert pack_tx_events(()) == b"" and unpack_tx_events(b"") == []
    many = tuple(("fill", {"n": i, "pad": "x" * 1000}) for i in range(40))
    kept = unpack_tx_events(pack_tx_events(many))
    assert kept[-1] == ("truncated", {"events": 40})
    assert kept[:-1] == list(many[: len(kept) - 1]) and 25 <= len(kept) - 1 < 40
