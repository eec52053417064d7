"""What a fuzz target is, what counts as a crash, and where its inputs live.

A target is one function ``one_input(data: bytes) -> None`` over untrusted bytes. It
returns for every input the code under test handles as it documents (a decode error, a
refusal, a 400, a dropped peer) and raises for anything else: that is a *crash*. The
same function runs under atheris (``make fuzz``), under the seeded mutator of
:mod:`tools.fuzz.mutator` (``make test``) and in the regression tests, so a crash found by
one is replayed by all.

Each target keeps two folders of inputs, committed with the code:

- ``corpus/<target>/``: small valid inputs made by the project's own encoders
  (``python -m tools.fuzz.run --write-seeds`` writes them from the target's ``seeds()``),
  where atheris and the mutator start;
- ``regressions/<target>/``: every crash input found, replayed by ``make test`` for good.
"""

from __future__ import annotations

import hashlib
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FUZZ_ROOT",
    "Finding",
    "Target",
    "crash_signature",
    "input_files",
    "input_name",
]

FUZZ_ROOT = Path(__file__).resolve().parent


class Finding(AssertionError):
    """A property a target checks broke without an exception of the code under test (a
    decoder accepting bytes that do not re-encode to themselves, an HTTP 500, an RPC
    ``INTERNAL`` error, a peer's garbage accepted): a crash like any other. ``kind`` names
    what was found without the input's particulars (two inputs that find the same thing
    are one crash); the message may add them."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Target:
    """One fuzz target: ``one_input`` raises on a crash (see the module's doc);
    ``seeds()`` the valid inputs its corpus starts from, by file name; ``tokens`` byte
    strings worth inserting (libFuzzer's dictionary, the mutator's too)."""

    name: str
    one_input: Callable[[bytes], None]
    seeds: Callable[[], dict[str, bytes]]
    tokens: tuple[bytes, ...] = ()

    @property
    def corpus_dir(self) -> Path:
        return FUZZ_ROOT / "corpus" / self.name

    @property
    def regressions_dir(self) -> Path:
        return FUZZ_ROOT / "regressions" / self.name


def input_files(folder: Path) -> list[tuple[Path, bytes]]:
    """The inputs kept in ``folder`` (sorted by name; none when it does not exist)."""
    if not folder.is_dir():
        return []
    return [(p, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()]


def crash_signature(exc: BaseException) -> str:
    """What tells two crashes apart: the exception's type and the innermost frame of the
    project's code it came through (``ValueError at appchaind/http/routes.py:77``); for an
    exception group (trio's nurseries raise them), its first exception's; for a
    :class:`Finding`, what it found."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, Finding):
        return f"Finding: {exc.kind}"
    where = "?"
    for frame in traceback.extract_tb(exc.__traceback__):
        path = frame.filename.replace("\\", "/")
        for package in ("/appchaind/", "/p2p/", "/config/", "/margin/", "/orderbook/"):
            if package in path and "/tools/fuzz/" not in path:
                where = f"{package.strip('/')}/{path.split(package, 1)[1]}:{frame.lineno}"
    return f"{type(exc).__name__} at {where}"


def input_name(data: bytes) -> str:
    """A file name for a crash input: its SHA-1, as libFuzzer names its artifacts."""
    return "crash-" + hashlib.sha1(data).hexdigest()
