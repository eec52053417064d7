"""Hypothesis strategies for every codec message, derived from the message's own schema."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Annotated, Any

from hypothesis import strategies as st

from appchaind.chain.codec import Bytes, Int, MaxItems, OneOf, Str


def strategy_for(cls: type, max_list: int = 3) -> st.SearchStrategy[Any]:
    """Valid instances of message class ``cls`` (lists kept short)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = [_field(hints[f.name], max_list) for f in dataclasses.fields(cls)]
    return st.builds(cls, *fields)


def _field(hint: Any, max_list: int) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *markers = typing.get_args(hint)
        for m in markers:
            if isinstance(m, Int):
                return st.integers(m.lo, m.hi)
            if isinstance(m, Bytes):
                return st.binary(min_size=m.min_len, max_size=min(m.max_len, 80))
            if isinstance(m, Str):
                alphabet = (
                    st.characters(min_codepoint=32, max_codepoint=126)
                    if m.ascii
                    else st.characters()
                )
                return st.text(alphabet, min_size=m.min_len, max_size=min(m.max_len, 30))
            if isinstance(m, OneOf):
                kinds = [m.registry[tag] for tag in sorted(m.registry)]
                return st.one_of(
                    [st.deferred(lambda c=c: strategy_for(c, max_list)) for c in kinds]
                )
            if isinstance(m, MaxItems):
                item = typing.get_args(base)[0]
                return st.lists(_field(item, max_list), max_size=min(m.n, max_list)).map(tuple)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return st.none() | _field(inner, max_list)
    if hint is bool:
        return st.booleans()
    return st.deferred(lambda: strategy_for(hint, max_list))
