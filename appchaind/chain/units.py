"""Exact conversion between decimal strings (the CLI/JSON edge) and integer units.

Inside the chain, prices are integer ticks, sizes integer lots and collateral
integer micro-units of the quote asset (docs/design.md, "Units"). Decimal text is
converted here, exactly, or refused with a message that gives the nearest
valid values. The replicated state never sees a Decimal: only the ints these
functions return.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext

__all__ = ["UnitError", "parse_decimal", "to_units", "from_units", "QUOTE_MICRO"]

#: Micro-units per whole unit of the quote asset.
QUOTE_MICRO = 1_000_000


class UnitError(ValueError):
    """A decimal string that is not a whole number of the unit it must be counted in."""


def parse_decimal(text: str, what: str) -> Decimal:
    """A finite decimal from ``text`` (no exponents, no NaN), or UnitError naming ``what``."""
    if not isinstance(text, str):
        raise UnitError(f'{what} must be a decimal string like "1.5", got {text!r}')
    stripped = text.strip()
    if not stripped or any(c not in "0123456789.-" for c in stripped):
        raise UnitError(f'{what} must be a decimal string like "1.5", got {text!r}')
    try:
        value = Decimal(stripped)
    except InvalidOperation:
        raise UnitError(f'{what} must be a decimal string like "1.5", got {text!r}') from None
    return value


def to_units(text: str, unit: str, what: str, *, allow_negative: bool = False) -> int:
    """``text`` as an exact integer count of ``unit`` (both decimal strings).

    ``to_units("65000.5", "0.5", "price")`` is 130001. Off-unit values are refused
    with the two nearest valid values.
    """
    with localcontext() as ctx:
        ctx.prec = 80
        value = parse_decimal(text, what)
        step = parse_decimal(unit, f"the unit of {what}")
        if step <= 0:
            raise UnitError(f"the unit of {what} must be positive, got {unit!r}")
        if value < 0 and not allow_negative:
            raise UnitError(f"{what} must not be negative, got {text!r}")
        count = value / step
        if count != count.to_integral_value():
            below = (count.to_integral_value(rounding="ROUND_FLOOR")) * step
            above = below + step
            raise UnitError(
                f"{what} {text} is not a multiple of {unit}; "
                f"the nearest valid values are {_plain(below)} and {_plain(above)}"
            )
        return int(count)


def from_units(count: int, unit: str) -> str:
    """The decimal string of ``count`` units of ``unit`` (exact, no exponent)."""
    with localcontext() as ctx:
        ctx.prec = 80
        return _plain(Decimal(count) * Decimal(unit))


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def normalize(text: str, what: str) -> str:
    """The canonical decimal string of ``text`` ("1.50" -> "1.5")."""
    return _plain(parse_decimal(text, what))
