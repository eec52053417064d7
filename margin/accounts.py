"""Accounts: a quote balance in micro-units, signed positions in lots, recent nonces.

An account's *net collateral* is ``balance + Σ size × oracle_price × quantum`` minus the
funding it has not settled yet. The balance absorbs the cost of every trade (buying ``s``
lots at ``p`` ticks takes ``s × p × quantum`` from it), so the balance may be negative
while the positions are worth more.

The recent nonces are stored and hashed in their canonical bytes (:func:`encode_nonces`:
the smallest as a u64, then each gap to the next as a LEB128 varint: one byte below 128,
two below 16,384, so a byte or two for an active trader's millisecond timestamps). An
account keeps these bytes up to date as it accepts nonces, splicing only the gaps that
changed, so a block that touches an account does not encode its up to
``max_recent_nonces`` nonces again.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

__all__ = ["Position", "Account", "NonceError", "encode_nonces", "decode_nonces"]

#: The one-byte varints (gaps below 128), shared instead of built per nonce.
_ONE_BYTE: Final = [bytes((n,)) for n in range(128)]


def _varint(value: int) -> bytes:
    """LEB128 of ``value`` >= 0: 7 bits a byte, least significant first, the high bit set
    on every byte but the last."""
    if value < 128:
        return _ONE_BYTE[value]
    out: list[int] = []
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def _varint_size(value: int) -> int:
    size = 1
    while value >= 128:
        value >>= 7
        size += 1
    return size


def encode_nonces(nonces: list[int]) -> bytes:
    """Canonical bytes of an ascending list of distinct u64 nonces: b"" if empty, else the
    first as 8 bytes big-endian followed by each gap to the next (>= 1) as a varint."""
    if not nonces:
        return b""
    parts = [nonces[0].to_bytes(8, "big")]
    for i in range(1, len(nonces)):
        parts.append(_varint(nonces[i] - nonces[i - 1]))
    return b"".join(parts)


def decode_nonces(data: bytes) -> list[int]:
    """The nonces of :func:`encode_nonces` bytes; ValueError unless ``data`` is canonical
    (whole varints of minimal length, every gap >= 1)."""
    if not data:
        return []
    if len(data) < 8:
        raise ValueError("recent nonces: truncated first nonce")
    nonce = int.from_bytes(data[:8], "big")
    nonces = [nonce]
    gap = shift = 0
    for byte in data[8:]:
        gap |= (byte & 127) << shift
        if byte & 128:
            shift += 7
            continue
        if gap == 0 or (byte == 0 and shift):
            raise ValueError("recent nonces: a gap is zero or not minimally encoded")
        nonce += gap
        nonces.append(nonce)
        gap = shift = 0
    if shift:
        raise ValueError("recent nonces: truncated gap")
    if nonce >= 1 << 64:
        raise ValueError("recent nonces: a nonce does not fit in 64 bits")
    return nonces


class Position:
    """A position in one market: ``size`` in signed lots (long > 0), ``funding_index`` the
    market's index at the last settlement, ``cost`` the signed micro-units paid to open the
    current size (for profit ranking in deleveraging; long > 0)."""

    __slots__ = ("size", "funding_index", "cost")

    def __init__(self, size: int, funding_index: int, cost: int) -> None:
        self.size = size
        self.funding_index = funding_index
        self.cost = cost


class NonceError(Exception):
    """A nonce the account cannot accept; the message says why."""


class Account:
    """One trader's cross-margin account.

    ``positions`` maps market id to a non-zero :class:`Position`; iterate it through
    :meth:`markets` (ascending market id), never in dict order. ``nonces`` is the ascending
    list of the account's highest recent nonces (at most ``max_recent_nonces``), and
    ``encoded_nonces`` is always ``encode_nonces(nonces)``: change them only through
    :meth:`accept_nonce`.
    """

    __slots__ = (
        "address", "balance", "positions", "nonces", "encoded_nonces",
        "cached_net", "cached_initial", "cached_maintenance", "cached_epoch",
        "touched_mark", "unindexed_mark", "position_mark", "funding_mark",
    )  # fmt: skip

    def __init__(self, address: bytes, balance: int) -> None:
        self.address = address
        self.balance = balance
        self.positions: dict[int, Position] = {}
        self.nonces: list[int] = []
        self.encoded_nonces = b""
        # The clearing house's bookkeeping (not state, never committed): the account's
        # health at the prices of ``cached_epoch`` (0: none), and the generation of each
        # of its per-block change sets the account is in (0: none), and the price epoch in
        # which its funding was last settled (0: never). See ClearingHouse.
        self.cached_net = 0
        self.cached_initial = 0
        self.cached_maintenance = 0
        self.cached_epoch = 0
        self.touched_mark = 0
        self.unindexed_mark = 0
        self.position_mark = 0
        self.funding_mark = 0

    def markets(self) -> list[int]:
        """Market ids of the open positions, ascending."""
        return sorted(self.positions)

    def position_size(self, market_id: int) -> int:
        position = self.positions.get(market_id)
        return 0 if position is None else position.size

    def accept_nonce(self, nonce: int, max_recent: int) -> None:
        """Record ``nonce`` or raise NonceError. A nonce must not be among the kept ones and,
        once ``max_recent`` are kept, must exceed the smallest of them (which is then dropped)."""
        nonces = self.nonces
        count = len(nonces)
        encoded = self.encoded_nonces
        if count and nonce > nonces[-1]:  # the usual case: a fresh timestamp
            encoded = encoded + _varint(nonce - nonces[-1])  # (compiled, += is a generic add)
            nonces.append(nonce)
        else:
            if count > 1 and nonces[-2] < nonce < nonces[-1]:
                # The next most usual (a block runs cancels and post-only orders first): just
                # below the newest, so neither kept nor below every kept nonce.
                i = count - 1
            else:
                i = bisect_left(nonces, nonce)
                refusal = _refusal(nonces, i, nonce, max_recent)
                if refusal is not None:
                    raise NonceError(refusal)
            encoded = _inserted(encoded, nonces, i, nonce)
            nonces.insert(i, nonce)
        while len(nonces) > max_recent:
            encoded = _without_first(encoded, nonces)
            del nonces[0]
        self.encoded_nonces = encoded

    def check_nonce(self, nonce: int, max_recent: int) -> str | None:
        """Why ``nonce`` would be refused, or None (read-only, for mempool admission)."""
        nonces = self.nonces
        return _refusal(nonces, bisect_left(nonces, nonce), nonce, max_recent)

    def record(self) -> list[object]:
        """Canonical record: [balance, [[market, size, funding_index, cost]...],
        encode_nonces(nonces)]."""
        positions = self.positions
        return [
            self.balance,
            [
                [m, positions[m].size, positions[m].funding_index, positions[m].cost]
                for m in sorted(positions)
            ],
            self.encoded_nonces,
        ]

    @classmethod
    def from_record(cls, address: bytes, record: list[object]) -> Account:
        """The account of a :meth:`record`; ValueError if its nonces are not canonical."""
        balance, positions, encoded_nonces = record
        account = cls(address, balance)  # type: ignore[arg-type]
        for market_id, size, funding_index, cost in positions:  # type: ignore[attr-defined]
            account.positions[market_id] = Position(size, funding_index, cost)
        if type(encoded_nonces) is not bytes:
            raise ValueError("recent nonces: not bytes")
        account.nonces = decode_nonces(encoded_nonces)
        account.encoded_nonces = encoded_nonces
        return account


def _refusal(nonces: list[int], i: int, nonce: int, max_recent: int) -> str | None:
    """The nonce rules: why an account keeping ``nonces`` refuses ``nonce`` (``i`` is where
    it would go in them, as ``bisect_left`` says), or None."""
    if i < len(nonces) and nonces[i] == nonce:
        return f"nonce {nonce} was already used by this account (replayed tx)"
    if len(nonces) >= max_recent and i == 0:
        return (
            f"nonce {nonce} is older than the account's {max_recent} most recent "
            f"nonces (smallest kept: {nonces[0]}); use a fresh timestamp"
        )
    return None


def _gap_bytes(nonces: list[int], start: int, stop: int) -> int:
    """Bytes taken by the varints of the gaps ending at ``nonces[start:stop]``."""
    size = 0
    for i in range(start, stop):
        size += _varint_size(nonces[i] - nonces[i - 1])
    return size


def _inserted(encoded: bytes, nonces: list[int], i: int, nonce: int) -> bytes:
    """``encode_nonces`` of ``nonces`` with ``nonce`` inserted at ``i``, from ``encoded``
    (theirs), for a ``nonce`` below the newest or into no nonces: the gap that ``nonce``
    splits is replaced, the rest is copied."""
    count = len(nonces)
    if count == 0:
        return nonce.to_bytes(8, "big")
    if i == 0:
        return nonce.to_bytes(8, "big") + _varint(nonces[0] - nonce) + encoded[8:]
    below, above = nonces[i - 1], nonces[i]
    if i == count - 1:  # just below the newest: the last gap is split
        at = len(encoded) - _varint_size(above - below)
        return encoded[:at] + _varint(nonce - below) + _varint(above - nonce)
    # The varint of the gap below -> above starts at ``at``; count from the nearer end.
    if count - i < i:
        at = len(encoded) - _gap_bytes(nonces, i, count)
    else:
        at = 8 + _gap_bytes(nonces, 1, i)
    rest = encoded[at + _varint_size(above - below) :]
    return encoded[:at] + _varint(nonce - below) + _varint(above - nonce) + rest


def _without_first(encoded: bytes, nonces: list[int]) -> bytes:
    """``encode_nonces(nonces[1:])`` from ``encoded`` (that of ``nonces``, not empty)."""
    if len(nonces) == 1:
        return b""
    first, second = nonces[0], nonces[1]
    return second.to_bytes(8, "big") + encoded[8 + _varint_size(second - first) :]
