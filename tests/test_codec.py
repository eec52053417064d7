"""The canonical codec: round trips, canonicity, and untrusted bytes (property and fuzz tests)."""

from __future__ import annotations

from typing import ClassVar

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appchaind.chain import codec, types
from appchaind.chain.codec import U8, U64, CodecError, message
from tests.messages import strategy_for


@types.register_tx_body
@message
class _TestBody:
    """A tx body kind used only by these tests."""

    TAG: ClassVar[int] = 251
    amount: U64
    flag: bool


MESSAGES = [
    types.Tx,
    types.Vote,
    types.Proposal,
    types.Commit,
    types.DuplicateVoteEvidence,
    types.Header,
    types.Block,
    types.Validator,
]


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda c: c.__name__)
@given(data=st.data())
def test_property_round_trip_and_canonical(cls: type, data: st.DataObject) -> None:
    value = data.draw(strategy_for(cls))
    encoded = codec.encode(value)
    decoded = codec.decode(cls, encoded)
    assert decoded == value
    assert codec.encode(decoded) == encoded


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda c: c.__name__)
@given(data=st.binary(max_size=300))
def test_fuzz_random_bytes_raise_only_codec_error(cls: type, data: bytes) -> None:
    try:
        value = codec.decode(cls, data)
    except CodecError:
        return
    assert codec.encode(value) == data


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda c: c.__name__)
@given(data=st.data())
def test_fuzz_mutated_bytes_raise_only_codec_error(cls: type, data: st.DataObject) -> None:
    encoded = bytearray(codec.encode(data.draw(strategy_for(cls))))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, max(0, len(encoded) - 1)))
        if op == "flip" and encoded:
            encoded[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "insert":
            encoded[pos:pos] = bytes([data.draw(st.integers(0, 255))])
        elif op == "delete" and encoded:
            del encoded[pos]
        elif op == "truncate":
            del encoded[pos:]
    mutated = bytes(encoded)
    try:
        value = codec.decode(cls, mutated)
    except CodecError:
        return
    # Anything accepted is canonical: it re-encodes to exactly the bytes given.
    assert codec.encode(value) == mutated


@message
class _Small:
    n: U8
    label: bytes | None = None  # type: ignore[assignment]


def test_a_field_without_a_schema_is_refused_when_used() -> None:
    with pytest.raises(TypeError, match="needs a schema annotation"):
        codec.encode(_Small(1, b"x"))


@message
class _Pair:
    count: U8
    total: U64


def test_error_names_the_field_and_the_range() -> None:
    bad = msgpack.packb([300, 5])
    with pytest.raises(CodecError) as err:
        codec.decode(_Pair, bad)
    assert err.value.field == "count"
    assert "out of range [0, 255]" in str(err.value)


def test_error_path_goes_through_nested_lists() -> None:
    sig = types.CommitSig(1, b"\x01" * 20, 0, b"", b"", b"")
    commit = types.Commit(5, 0, b"\x02" * 32, (sig, sig, sig))
    wire = codec.to_wire(commit)
    wire[3][2][1] = b"short"
    with pytest.raises(CodecError) as err:
        codec.decode(types.Commit, msgpack.packb(wire, use_bin_type=True))
    assert err.value.field == "signatures[2].validator"


def test_non_canonical_integer_width_is_refused() -> None:
    # 5 as a uint16 (0xcd) instead of a positive fixint: same value, other bytes.
    data = b"\x92\xcd\x00\x05\x05"
    with pytest.raises(CodecError, match="canonical"):
        codec.decode(_Pair, data)


def test_float_bool_and_trailing_bytes_are_refused() -> None:
    with pytest.raises(CodecError, match="expected an integer, got float"):
        codec.decode(_Pair, msgpack.packb([1.0, 5]))
    with pytest.raises(CodecError, match="expected an integer, got bool"):
        codec.decode(_Pair, msgpack.packb([True, 5]))
    with pytest.raises(CodecError, match="not valid msgpack"):
        codec.decode(_Pair, msgpack.packb([1, 5]) + b"\x00")
    with pytest.raises(CodecError, match="2 fields, got 3"):
        codec.decode(_Pair, msgpack.packb([1, 5, 6]))


def test_oversized_length_prefix_is_refused_before_allocating() -> None:
    # A bin32 header claiming 4 GiB followed by nothing: must fail fast, not allocate.
    data = b"\xc6\xff\xff\xff\xff"
    with pytest.raises(CodecError):
        codec.decode(types.Tx, data)
    # An array32 header claiming 4 billion items.
    with pytest.raises(CodecError):
        codec.decode(types.Block, b"\xdd\xff\xff\xff\xff")
    # A message larger than the caller's limit is refused before parsing.
    with pytest.raises(CodecError, match="more than the limit"):
        codec.decode(_Pair, msgpack.packb([1, 5]), max_bytes=2)


def test_deeply_nested_input_is_a_codec_error() -> None:
    data = b"\x91" * 100_000 + b"\x00"
    with pytest.raises(CodecError):
        codec.decode(types.Block, data)


def test_maps_and_ext_types_are_refused() -> None:
    with pytest.raises(CodecError):
        codec.decode(_Pair, msgpack.packb({"count": 1, "total": 2}))
    with pytest.raises(CodecError):
        codec.decode(_Pair, msgpack.packb([msgpack.ExtType(5, b"x"), 1]))


def test_unknown_tx_body_kind_is_named() -> None:
    tx = types.Tx("c", b"\x01" * 32, 1, 1, _TestBody(5, True), b"\x00" * 64)
    wire = codec.to_wire(tx)
    wire[4][0] = 249
    with pytest.raises(CodecError) as err:
        codec.decode(types.Tx, msgpack.packb(wire, use_bin_type=True))
    assert err.value.field == "body"
    assert "unknown kind 249" in str(err.value)


def test_encoding_a_value_that_breaks_its_schema_fails_loudly() -> None:
    with pytest.raises(CodecError, match="count"):
        codec.encode(_Pair(256, 0))


def test_list_limit_enforced_on_decode() -> None:
    sig = codec.to_wire(types.CommitSig(0, b"\x01" * 20, 0, b"", b"", b""))
    wire = [1, 0, b"\x02" * 32, [sig] * (types.MAX_VALIDATORS + 1)]
    with pytest.raises(CodecError, match="at most 10000"):
        codec.decode(types.Commit, msgpack.packb(wire, use_bin_type=True))
