"""The consensus WAL's file descriptor, at the edge ``make mutate`` found unguarded: a
closed WAL lets go of its file whatever descriptor number it got, 0 included (a daemon
started with stdin closed gets descriptor 0 for the first file it opens)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appchaind.consensus.wal import WAL


def test_closing_the_wal_releases_its_file_even_on_descriptor_0(tmp_path: Path) -> None:
    stdin = os.dup(0)
    os.close(0)
    try:
        wal = WAL(tmp_path / "cs.wal")  # the lowest free descriptor: 0
        wal.append(b"height 1")
        wal.close()
        with pytest.raises(OSError):
            os.fstat(0)
    finally:
        os.dup2(stdin, 0)
        os.close(stdin)
