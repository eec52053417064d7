"""Errors that stop a node from starting (or from going on); the message says what to do."""

from __future__ import annotations

import trio

__all__ = ["StartupError", "open_listeners"]


class StartupError(Exception):
    """The node cannot start, or go on, as configured (a port in use, a damaged data
    directory, a listener that stopped accepting, ...)."""


async def open_listeners(host: str, port: int, config_key: str) -> list[trio.SocketListener]:
    """trio.open_tcp_listeners, with an error that names the config key to change."""
    try:
        return await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise StartupError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
            f"change {config_key} in config.toml or stop what uses that port"
        ) from None
