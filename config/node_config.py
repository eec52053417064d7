"""The node's ``config.toml``: loading, validation and rendering.

``SCHEMA`` (:mod:`config.node_schema`: every key, its default, its allowed values and
what it does) is the single source of truth: the loader validates against it,
``render_default_config`` writes a fully commented ``config.toml`` from it, and
``NodeConfig`` exposes the values as ``config.section.key``. An unknown key, a
wrong type or an out-of-range value raises :class:`ConfigError` whose message
names the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from config.node_schema import SCHEMA, Key

__all__ = ["ConfigError", "Key", "SCHEMA", "NodeConfig", "load_config", "render_default_config"]


class ConfigError(Exception):
    """A configuration or genesis file that cannot be used. The message is one line that
    names the file and the key and says what is allowed."""


def _check_address(value: str) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        return 'expected "host:port"'
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        return "the port must be an integer from 0 to 65535"
    return None


def _check_peer(value: str) -> str | None:
    node_id, sep, address = value.partition("@")
    if not sep:
        return f'peer "{value}" must be "nodeid@host:port"'
    if len(node_id) != 40 or any(c not in "0123456789abcdef" for c in node_id):
        return f'peer "{value}": the node id must be 40 lowercase hex characters'
    problem = _check_address(address)
    return f'peer "{value}": {problem}' if problem else None


def _describe_allowed(key: Key) -> str:
    if key.kind == "int":
        return f"an integer from {key.min} to {key.max}"
    if key.kind == "bool":
        return "true or false"
    if key.kind == "choice":
        return "one of " + ", ".join(f'"{c}"' for c in key.choices)
    if key.kind == "address":
        return 'a string "host:port"'
    if key.kind == "peers":
        return 'a list of strings "nodeid@host:port"'
    return "a string"


def _validate(key: Key, value: Any) -> str | None:
    """None when ``value`` is allowed for ``key``, else what is wrong."""
    kind = key.kind
    if kind == "int":
        if type(value) is not int:
            return "not an integer"
        assert key.min is not None and key.max is not None
        if not key.min <= value <= key.max:
            return "out of range"
        return None
    if kind == "bool":
        return None if type(value) is bool else "not a boolean"
    if kind == "peers":
        if type(value) is not list or any(type(p) is not str for p in value):
            return "not a list of strings"
        for peer in value:
            problem = _check_peer(peer)
            if problem:
                return problem
        return None
    if type(value) is not str:
        return "not a string"
    if kind == "choice" and value not in key.choices:
        return "not an allowed value"
    if kind == "address":
        return _check_address(value)
    return None


def _toml_value(value: Any) -> str:
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) in (int, float):
        return repr(value)
    if type(value) is list:
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class NodeConfig:
    """Validated configuration: ``config.consensus.timeout_commit_ms`` and so on.

    ``home`` is the node's home directory; relative paths in the config are relative to it.
    """

    def __init__(self, home: Path, values: Mapping[str, Mapping[str, Any]]) -> None:
        self.home = home
        self._values = {section: dict(keys) for section, keys in values.items()}
        for section, keys in self._values.items():
            setattr(self, section, SimpleNamespace(**keys))

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {section: dict(keys) for section, keys in self._values.items()}

    def __getattr__(self, name: str) -> Any:  # for type checkers: sections are set in __init__
        raise AttributeError(f"config has no section [{name}]")


def default_values() -> dict[str, dict[str, Any]]:
    return {
        section: {
            k.name: (list(k.default) if isinstance(k.default, list) else k.default) for k in keys
        }
        for section, keys in SCHEMA.items()
    }


def validate_values(raw: Mapping[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """Checks a parsed TOML document against SCHEMA; fills in defaults for missing keys."""
    values = default_values()
    for section, table in raw.items():
        keys = SCHEMA.get(section)
        if keys is None:
            known = ", ".join(f"[{s}]" for s in SCHEMA)
            raise ConfigError(f"{source}: unknown section [{section}]; the sections are {known}")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: {section} must be a [{section}] table, got {table!r}")
        by_name = {k.name: k for k in keys}
        for name, value in table.items():
            key = by_name.get(name)
            if key is None:
                known = ", ".join(by_name)
                raise ConfigError(
                    f"{source}: unknown key {section}.{name}; [{section}] has {known}"
                )
            problem = _validate(key, value)
            if problem:
                raise ConfigError(
                    f"{source}: {section}.{name} = {_toml_value(value)}: {problem}; "
                    f"allowed: {_describe_allowed(key)}"
                )
            values[section][name] = value
    backoff = values["p2p"]
    if backoff["dial_backoff_min_ms"] > backoff["dial_backoff_max_ms"]:
        raise ConfigError(
            f"{source}: p2p.dial_backoff_min_ms = {backoff['dial_backoff_min_ms']} is larger than "
            f"p2p.dial_backoff_max_ms = {backoff['dial_backoff_max_ms']}"
        )
    pbs, propose = values["pbs"], values["consensus"]["timeout_propose_ms"]
    if pbs["enabled"] and 2 * pbs["bid_deadline_ms"] >= propose:
        raise ConfigError(
            f"{source}: pbs.bid_deadline_ms = {pbs['bid_deadline_ms']} must be less than half "
            f"of consensus.timeout_propose_ms = {propose}: the other validators wait that long "
            "for our proposal, and building and sending the block takes the rest (lower the "
            "deadline, or raise the timeout)"
        )
    return values


def load_config(home: Path) -> NodeConfig:
    """Reads and validates ``HOME/config.toml``. Raises ConfigError with a one-line message."""
    path = Path(home) / "config.toml"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"{path} does not exist; create a home with `appchaind init --home {home}`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return NodeConfig(Path(home), validate_values(raw, str(path)))


def render_config(values: Mapping[str, Mapping[str, Any]]) -> str:
    """A commented ``config.toml`` with ``values`` (every key, its doc and its default)."""
    lines = [
        "# appchaind node configuration.",
        "# Every key is listed with its documentation; the value after '=' is this node's,",
        "# and 'default:' gives the built-in value. Unknown keys are an error.",
        "",
    ]
    for section, keys in SCHEMA.items():
        lines.append(f"[{section}]")
        for key in keys:
            lines.append(f"# {key.doc}")
            lines.append(
                f"# allowed: {_describe_allowed(key)}; default: {_toml_value(key.default)}"
            )
            lines.append(f"{key.name} = {_toml_value(values[section][key.name])}")
        lines.append("")
    return "\n".join(lines)


def render_default_config(**overrides: Mapping[str, Any]) -> str:
    """The default config, with ``overrides`` ({section: {key: value}}) applied and validated."""
    values = default_values()
    for section, keys in overrides.items():
        for name, value in keys.items():
            values[section][name] = value
    validate_values(values, "config overrides")
    return render_config(values)
