"""Canonical msgpack encoding of every message type.

Rules (docs/design.md, "Canonical encoding"):

* A message is a frozen dataclass decorated with :func:`message`. It is encoded
  as a msgpack array of its fields in declaration order. Field types are
  declared with the schema annotations below (``U64``, ``Hash32``, ...), which
  carry the range or size limits that both encoding and decoding enforce.
* A tagged union (e.g. the body of a transaction) is encoded as
  ``[tag, [fields...]]`` where ``tag`` is the class's ``TAG``.
* Decoding untrusted bytes raises only :class:`CodecError`, naming the field
  that was wrong. Size limits go to the msgpack unpacker, so an oversized
  length prefix is refused before anything is allocated.
* Encoding is canonical: a decoder accepts only bytes that re-encode to the
  very same bytes, so a message has exactly one valid encoding and hashes and
  signatures over the encoding are well defined.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, dataclass_transform

import msgpack

__all__ = [
    "CodecError",
    "Int",
    "Bytes",
    "Str",
    "MaxItems",
    "OneOf",
    "message",
    "encode",
    "decode",
    "U8",
    "U16",
    "U32",
    "U64",
    "I32",
    "I64",
    "Hash32",
    "HashOrEmpty",
    "Address",
    "PubKey",
    "Signature",
    "MAX_MESSAGE_BYTES",
]

#: No message, however large its lists, may exceed this many encoded bytes.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class CodecError(ValueError):
    """Bytes or a value that are not a valid canonical message.

    ``field`` is a dotted path to the offending field (``"body.price"``), or
    ``""`` when the bytes were not msgpack at all.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


# ---------------------------------------------------------------------------- schema markers


@dataclass(frozen=True, slots=True)
class Int:
    """An integer field in the closed range [lo, hi]. bool is not an int here."""

    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class Bytes:
    """A bytes field whose length is in [min_len, max_len]."""

    min_len: int
    max_len: int


@dataclass(frozen=True, slots=True)
class Str:
    """A UTF-8 string field of at most max_len characters (and printable ASCII if ascii)."""

    max_len: int
    min_len: int = 0
    ascii: bool = False


@dataclass(frozen=True, slots=True)
class MaxItems:
    """A tuple field with at most ``n`` items."""

    n: int


@dataclass(frozen=True, slots=True)
class OneOf:
    """A tagged union over the message classes registered in ``registry`` (tag -> class).

    The registry is read at encode/decode time, so modules may add kinds to it.
    """

    registry: Mapping[int, type]


U8 = Annotated[int, Int(0, 2**8 - 1)]
U16 = Annotated[int, Int(0, 2**16 - 1)]
U32 = Annotated[int, Int(0, 2**32 - 1)]
U64 = Annotated[int, Int(0, 2**64 - 1)]
I32 = Annotated[int, Int(-(2**31), 2**31 - 1)]
I64 = Annotated[int, Int(-(2**63), 2**63 - 1)]
Hash32 = Annotated[bytes, Bytes(32, 32)]
#: A 32-byte hash, or b"" for "none" (e.g. a nil vote, the parent of block 1).
HashOrEmpty = Annotated[bytes, Bytes(0, 32)]
Address = Annotated[bytes, Bytes(20, 20)]
PubKey = Annotated[bytes, Bytes(32, 32)]
Signature = Annotated[bytes, Bytes(64, 64)]

# ---------------------------------------------------------------------------- field codecs

# A field codec is a pair of functions: to_wire(value) -> plain msgpack value,
# from_wire(wire) -> value. Both check the schema and raise CodecError; the field
# path is prepended by the enclosing message or list as the error travels out, so
# the hot path never builds path strings.
ToWire = Callable[[Any], Any]
FromWire = Callable[[Any], Any]

M = TypeVar("M")


def _type_name(value: object) -> str:
    return type(value).__name__


def _int_codec(spec: Int) -> tuple[ToWire, FromWire]:
    lo, hi = spec.lo, spec.hi

    def check(value: Any) -> int:
        if type(value) is not int:
            raise CodecError("", f"expected an integer, got {_type_name(value)}")
        if not lo <= value <= hi:
            raise CodecError("", f"{value} is out of range [{lo}, {hi}]")
        return value

    return check, check


def _bytes_codec(spec: Bytes) -> tuple[ToWire, FromWire]:
    lo, hi = spec.min_len, spec.max_len

    def check(value: Any) -> bytes:
        if type(value) is not bytes:
            raise CodecError("", f"expected bytes, got {_type_name(value)}")
        if not lo <= len(value) <= hi:
            if lo == hi:
                raise CodecError("", f"expected {lo} bytes, got {len(value)}")
            raise CodecError("", f"length {len(value)} is outside [{lo}, {hi}]")
        return value

    return check, check


def _str_codec(spec: Str) -> tuple[ToWire, FromWire]:
    def check(value: Any) -> str:
        if type(value) is not str:
            raise CodecError("", f"expected a string, got {_type_name(value)}")
        if not spec.min_len <= len(value) <= spec.max_len:
            raise CodecError("", f"length {len(value)} is outside [{spec.min_len}, {spec.max_len}]")
        if spec.ascii and not (value.isascii() and value.isprintable()):
            raise CodecError("", "must be printable ASCII")
        return value

    return check, check


def _bool_codec() -> tuple[ToWire, FromWire]:
    def check(value: Any) -> bool:
        if type(value) is not bool:
            raise CodecError("", f"expected a bool, got {_type_name(value)}")
        return value

    return check, check


def _optional_codec(inner: tuple[ToWire, FromWire]) -> tuple[ToWire, FromWire]:
    inner_to, inner_from = inner

    def to_wire(value: Any) -> Any:
        return None if value is None else inner_to(value)

    def from_wire(wire: Any) -> Any:
        return None if wire is None else inner_from(wire)

    return to_wire, from_wire


def _tuple_codec(inner: tuple[ToWire, FromWire], max_items: int) -> tuple[ToWire, FromWire]:
    inner_to, inner_from = inner

    def to_wire(value: Any) -> list[Any]:
        if type(value) is not tuple:
            raise CodecError("", f"expected a tuple, got {_type_name(value)}")
        if len(value) > max_items:
            raise CodecError("", f"{len(value)} items, at most {max_items} allowed")
        try:
            return [inner_to(item) for item in value]
        except CodecError as exc:
            raise _located(exc, f"[{_failing_index(value, inner_to)}]") from None

    def from_wire(wire: Any) -> tuple[Any, ...]:
        if type(wire) is not list:
            raise CodecError("", f"expected an array, got {_type_name(wire)}")
        if len(wire) > max_items:
            raise CodecError("", f"{len(wire)} items, at most {max_items} allowed")
        try:
            return tuple([inner_from(item) for item in wire])
        except CodecError as exc:
            raise _located(exc, f"[{_failing_index(wire, inner_from)}]") from None

    return to_wire, from_wire


def _message_codec(cls: type) -> tuple[ToWire, FromWire]:
    # Resolved lazily so that messages may refer to classes defined later.
    def to_wire(value: Any) -> Any:
        return _schema(cls).to_wire(value)

    def from_wire(wire: Any) -> Any:
        return _schema(cls).from_wire(wire)

    return to_wire, from_wire


def _union_codec(spec: OneOf) -> tuple[ToWire, FromWire]:
    registry = spec.registry

    def to_wire(value: Any) -> list[Any]:
        tag = getattr(type(value), "TAG", None)
        if tag is None or registry.get(tag) is not type(value):
            raise CodecError("", f"{_type_name(value)} is not a registered kind")
        return [tag, _schema(type(value)).to_wire(value)]

    def from_wire(wire: Any) -> Any:
        if type(wire) is not list or len(wire) != 2:
            raise CodecError("", "expected [kind, fields]")
        tag = wire[0]
        if type(tag) is not int:
            raise CodecError("", f"kind must be an integer, got {_type_name(tag)}")
        cls = registry.get(tag)
        if cls is None:
            raise CodecError("", f"unknown kind {tag}")
        return _schema(cls).from_wire(wire[1])

    return to_wire, from_wire


def _field_codec(hint: Any, where: str) -> tuple[ToWire, FromWire]:
    """Builds the codec of one annotated type."""
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *markers = typing.get_args(hint)
        max_items: int | None = None
        for marker in markers:
            if isinstance(marker, Int):
                return _int_codec(marker)
            if isinstance(marker, Bytes):
                return _bytes_codec(marker)
            if isinstance(marker, Str):
                return _str_codec(marker)
            if isinstance(marker, OneOf):
                return _union_codec(marker)
            if isinstance(marker, MaxItems):
                max_items = marker.n
        if max_items is not None and typing.get_origin(base) is tuple:
            item_hint = typing.get_args(base)[0]
            return _tuple_codec(_field_codec(item_hint, where), max_items)
        raise TypeError(f"{where}: unsupported annotation {hint!r}")
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return _optional_codec(_field_codec(args[0], where))
        raise TypeError(f"{where}: only Optional[X] unions are supported; use OneOf")
    if hint is bool:
        return _bool_codec()
    if isinstance(hint, type) and hasattr(hint, "__codec_message__"):
        return _message_codec(hint)
    raise TypeError(
        f"{where}: field type {hint!r} needs a schema annotation (U64, Hash32, Str(...), ...)"
    )


def _inline_check(hint: Any) -> str | None:
    """A Python expression (over the placeholder ``X``) that checks a scalar field inline, for the
    generated fast path; None for fields that go through their codec function."""
    if typing.get_origin(hint) is Annotated:
        for marker in typing.get_args(hint)[1:]:
            if isinstance(marker, Int):
                return f"type(X) is int and {marker.lo} <= X <= {marker.hi}"
            if isinstance(marker, Bytes):
                return f"type(X) is bytes and {marker.min_len} <= len(X) <= {marker.max_len}"
            if isinstance(marker, Str):
                check = f"type(X) is str and {marker.min_len} <= len(X) <= {marker.max_len}"
                return check + (" and X.isascii() and X.isprintable()" if marker.ascii else "")
            if isinstance(marker, OneOf | MaxItems):
                return None
    if hint is bool:
        return "type(X) is bool"
    return None


class _Schema:
    """The compiled codec of one message class.

    ``from_wire``/``to_wire`` are generated per class: scalar fields are checked inline and
    the object is built without per-field function calls. On any failure they fall back
    to the generic, field-by-field path, which raises the CodecError naming the field.
    """

    __slots__ = ("cls", "names", "to_wires", "from_wires", "from_wire", "to_wire")

    def __init__(self, cls: type) -> None:
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = dataclasses.fields(cls)
        self.cls = cls
        self.names = tuple(f.name for f in fields)
        codecs = [_field_codec(hints[f.name], f"{cls.__name__}.{f.name}") for f in fields]
        self.to_wires = tuple(c[0] for c in codecs)
        self.from_wires = tuple(c[1] for c in codecs)
        self.from_wire, self.to_wire = self._generate([hints[f.name] for f in fields])

    def _generate(self, hints: list[Any]) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        n = len(self.names)
        env: dict[str, Any] = {
            "cls": self.cls,
            "new": object.__new__,
            "CodecError": CodecError,
            "slow_from": self._checked_from_wire,
            "slow_to": self._checked_to_wire,
        }
        decode = [
            "def from_wire(w):",
            f"    if type(w) is not list or len(w) != {n}:",
            "        return slow_from(w)",
        ]
        encode = ["def to_wire(v):", "    if type(v) is not cls:", "        return slow_to(v)"]
        names = [f"f{i}" for i in range(n)]
        if n:
            decode.append(f"    {', '.join(names)}{',' if n == 1 else ''} = w")
        decode += ["    try:", "        pass"]
        encode += ["    try:", "        pass"]
        checks_decode: list[str] = []
        checks_encode: list[str] = []
        for i, (name, hint) in enumerate(zip(self.names, hints, strict=True)):
            env[f"set{i}"] = self.cls.__dict__[name].__set__
            env[f"fw{i}"] = self.from_wires[i]
            env[f"tw{i}"] = self.to_wires[i]
            encode.append(f"        f{i} = v.{name}")
            check = _inline_check(hint)
            if check is None:
                decode.append(f"        f{i} = fw{i}(f{i})")
                encode.append(f"        f{i} = tw{i}(f{i})")
            else:
                checks_decode.append("(" + check.replace("X", f"f{i}") + ")")
                checks_encode.append("(" + check.replace("X", f"f{i}") + ")")
        decode.append("    except CodecError:")
        decode.append("        return slow_from(w)")
        encode.append("    except CodecError:")
        encode.append("        return slow_to(v)")
        if checks_decode:
            decode.append(f"    if not ({' and '.join(checks_decode)}):")
            decode.append("        return slow_from(w)")
            encode.append(f"    if not ({' and '.join(checks_encode)}):")
            encode.append("        return slow_to(v)")
        decode.append("    o = new(cls)")
        decode += [f"    set{i}(o, f{i})" for i in range(n)]
        decode.append("    return o")
        encode.append(f"    return [{', '.join(names)}]")
        exec("\n".join(decode) + "\n\n" + "\n".join(encode), env)  # noqa: S102 - generated from the schema
        return env["from_wire"], env["to_wire"]

    def _checked_to_wire(self, value: Any) -> list[Any]:
        if type(value) is not self.cls:
            raise CodecError("", f"expected {self.cls.__name__}, got {_type_name(value)}")
        out = []
        for name, to in zip(self.names, self.to_wires, strict=True):
            try:
                out.append(to(getattr(value, name)))
            except CodecError as exc:
                raise _located(exc, name) from None
        return out

    def _checked_from_wire(self, wire: Any) -> Any:
        if type(wire) is not list:
            raise CodecError("", f"expected an array for {self.cls.__name__}")
        if len(wire) != len(self.names):
            raise CodecError(
                "",
                f"{self.cls.__name__} has {len(self.names)} fields, got {len(wire)}",
            )
        try:
            values = [fw(item) for fw, item in zip(self.from_wires, wire, strict=True)]
        except CodecError as exc:
            raise _located(exc, self.names[_failing_index(wire, *self.from_wires)]) from None
        return self.cls(*values)


def _located(exc: CodecError, where: str) -> CodecError:
    """The same error with ``where`` (a field name or ``[i]``) prepended to its path."""
    if not exc.field:
        field = where
    elif exc.field.startswith("["):
        field = where + exc.field
    else:
        field = f"{where}.{exc.field}"
    return CodecError(field, exc.reason)


def _failing_index(items: Any, *checks: Callable[[Any], Any]) -> int:
    """The index of the first item its check rejects (one check for all, or one per item)."""
    for i, item in enumerate(items):
        try:
            checks[i if len(checks) > 1 else 0](item)
        except CodecError:
            return i
    return -1


_SCHEMAS: dict[type, _Schema] = {}


def _schema(cls: type) -> _Schema:
    schema = _SCHEMAS.get(cls)
    if schema is None:
        schema = _SCHEMAS[cls] = _Schema(cls)
    return schema


@dataclass_transform(frozen_default=True)
def message(cls: type[M]) -> type[M]:
    """Class decorator: makes ``cls`` a frozen, slotted dataclass with a canonical encoding."""
    if not dataclasses.is_dataclass(cls):
        cls = dataclass(frozen=True, slots=True)(cls)
    cls.__codec_message__ = True  # type: ignore[attr-defined]
    return cls


# ---------------------------------------------------------------------------- entry points


def to_wire(value: Any) -> Any:
    """The plain msgpack value (nested lists) of a message."""
    return _schema(type(value)).to_wire(value)


def encode(value: Any) -> bytes:
    """The canonical bytes of a message. Raises CodecError if a field breaks its schema."""
    wire = _schema(type(value)).to_wire(value)
    data: bytes = msgpack.packb(wire, use_bin_type=True)
    if len(data) > MAX_MESSAGE_BYTES:
        raise CodecError("", f"message is {len(data)} bytes, more than {MAX_MESSAGE_BYTES}")
    return data


def unpack_wire(data: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> Any:
    """msgpack-decode untrusted bytes with every size limit set; raises only CodecError."""
    if type(data) is not bytes:
        raise CodecError("", f"expected bytes, got {_type_name(data)}")
    if len(data) > max_bytes:
        raise CodecError("", f"{len(data)} bytes, more than the limit of {max_bytes}")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_bin_len=max_bytes,
            max_str_len=max_bytes,
            max_array_len=max_bytes,
            max_map_len=0,
            max_ext_len=0,
        )
    except Exception as exc:  # the msgpack library's boundary: every failure becomes ours
        raise CodecError("", f"not valid msgpack ({type(exc).__name__}: {exc})") from None


def decode(cls: type[M], data: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> M:
    """Parses untrusted canonical bytes into a ``cls``. Raises only CodecError."""
    wire = unpack_wire(data, max_bytes)
    value: M = _schema(cls).from_wire(wire)
    if msgpack.packb(wire, use_bin_type=True) != data:
        raise CodecError("", "not the canonical encoding")
    return value


def decode_union(
    registry: Mapping[int, type], data: bytes, max_bytes: int = MAX_MESSAGE_BYTES
) -> Any:
    """Parses ``[tag, fields]`` bytes of a tagged union. Raises only CodecError."""
    wire = unpack_wire(data, max_bytes)
    value = _union_codec(OneOf(registry))[1](wire)
    if msgpack.packb(wire, use_bin_type=True) != data:
        raise CodecError("", "not the canonical encoding")
    return value


def encode_union(value: Any) -> bytes:
    """Encodes a registered union member as ``[tag, fields]``."""
    tag = getattr(type(value), "TAG", None)
    if tag is None:
        raise CodecError("", f"{_type_name(value)} has no TAG")
    data: bytes = msgpack.packb([tag, to_wire(value)], use_bin_type=True)
    return data
