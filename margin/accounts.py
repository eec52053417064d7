"""Accounts: a quote balance in micro-units, signed positions in lots, recent nonces.

An account's *net collateral* is ``balance + Σ size × oracle_price × quantum`` minus the
funding it has not settled yet. The balance absorbs the cost of every trade (buying ``s``
lots at ``p`` ticks takes ``s × p × quantum`` from it), so the balance may be negative
while the positions are worth more.
"""

from __future__ import annotations

from bisect import bisect_left, insort

__all__ = ["Position", "Account", "NonceError"]


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
    list of the account's highest recent nonces (at most ``max_recent_nonces``).
    """

    __slots__ = ("address", "balance", "positions", "nonces")

    def __init__(self, address: bytes, balance: int) -> None:
        self.address = address
        self.balance = balance
        self.positions: dict[int, Position] = {}
        self.nonces: list[int] = []

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
        if nonces and nonce > nonces[-1]:  # the usual case: a fresh timestamp
            nonces.append(nonce)
            if len(nonces) > max_recent:
                del nonces[: len(nonces) - max_recent]
            return
        i = bisect_left(nonces, nonce)
        if i < len(nonces) and nonces[i] == nonce:
            raise NonceError(f"nonce {nonce} was already used by this account (replayed tx)")
        if len(nonces) >= max_recent:
            if i == 0:
                raise NonceError(
                    f"nonce {nonce} is older than the account's {max_recent} most recent "
                    f"nonces (smallest kept: {nonces[0]}); use a fresh timestamp"
                )
            insort(nonces, nonce)
            del nonces[: len(nonces) - max_recent]
        else:
            insort(nonces, nonce)

    def check_nonce(self, nonce: int, max_recent: int) -> str | None:
        """Why ``nonce`` would be refused, or None (read-only, for mempool admission)."""
        nonces = self.nonces
        i = bisect_left(nonces, nonce)
        if i < len(nonces) and nonces[i] == nonce:
            return f"nonce {nonce} was already used by this account (replayed tx)"
        if len(nonces) >= max_recent and i == 0:
            return f"nonce {nonce} is older than the account's {max_recent} most recent nonces"
        return None

    def record(self) -> list[object]:
        """Canonical record: [balance, [[market, size, funding_index, cost]...], nonces]."""
        positions = self.positions
        return [
            self.balance,
            [
                [m, positions[m].size, positions[m].funding_index, positions[m].cost]
                for m in sorted(positions)
            ],
            list(self.nonces),
        ]

    @classmethod
    def from_record(cls, address: bytes, record: list[object]) -> Account:
        balance, positions, nonces = record
        account = cls(address, balance)  # type: ignore[arg-type]
        for market_id, size, funding_index, cost in positions:  # type: ignore[attr-defined]
            account.positions[market_id] = Position(size, funding_index, cost)
        account.nonces = list(nonces)  # type: ignore[call-overload]
        return account
