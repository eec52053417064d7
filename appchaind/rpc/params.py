"""Request parameters of the RPC port, checked: each function returns the value or
raises :class:`RpcError` (``BAD_PARAMS``) naming the parameter and what it must be."""

from __future__ import annotations

import re
from typing import Any

from appchaind.rpc.protocol import ErrorCode, RpcError
from config.genesis import MarketParams

__all__ = ["address", "market_id", "tx_hash"]

_HEX40 = re.compile(r"^[0-9a-fA-F]{40}$")


def market_id(params: dict[str, Any], markets: list[MarketParams]) -> int:
    """``params["market"]``: a market symbol or id."""
    market = params.get("market")
    for p in markets:
        if market == p.symbol:
            return p.market_id
    if type(market) is int and 0 <= market < len(markets):
        return market
    raise RpcError(
        ErrorCode.BAD_PARAMS,
        f"unknown market {market!r:.60}; markets: {', '.join(p.symbol for p in markets)}",
    )


def address(params: dict[str, Any]) -> bytes:
    """``params["address"]``: 20 bytes, or 40 hex characters."""
    value = params.get("address")
    if isinstance(value, bytes) and len(value) == 20:
        return value
    if isinstance(value, str) and _HEX40.match(value):
        return bytes.fromhex(value)
    raise RpcError(ErrorCode.BAD_PARAMS, f"address must be 40 hex characters, got {value!r:.60}")


def tx_hash(params: dict[str, Any], key: str) -> bytes:
    """``params[key]``: a SHA-256 as 32 bytes or 64 hex characters."""
    value = params.get(key)
    if isinstance(value, bytes) and len(value) == 32:
        return value
    if isinstance(value, str) and len(value) == 64:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    raise RpcError(ErrorCode.BAD_PARAMS, f"{key} must be 64 hex characters (a SHA-256)")
