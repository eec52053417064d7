"""The durable state of consensus, at the edges ``make mutate`` found unguarded: a closed
WAL lets go of its file whatever descriptor number it got, 0 included (a daemon started
with stdin closed gets descriptor 0 for the first file it opens); the WAL stays private
after a reset; the sign-state file says what kind of message was signed last."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from appchaind.chain import codec, types
from appchaind.consensus.privval import FileSignStateStore
from appchaind.consensus.signer import GuardedSigner
from appchaind.consensus.wal import WAL
from tests.node.test_wal_privval import BLOCK_A, KEY, proposal, vote


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


def test_the_log_stays_private_after_a_reset(tmp_path: Path) -> None:
    """The log is created 0600 (tests/node/test_mutants.py); reset() replaces the file, and
    the replacement must be as private."""
    path = tmp_path / "wal"
    log = WAL(path)
    log.append(b"height 1")
    log.reset(b"height 2")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(WAL(path).replay()) == [b"height 2"]


def test_the_sign_state_file_names_the_kind_of_message_signed_last(tmp_path: Path) -> None:
    """sign_state.json is what an operator restores (the refusal to sign without it says
    so): a JSON document of height, round, step, the kind of message ("vote" or
    "proposal") and its canonical bytes in hex."""
    path = tmp_path / "sign_state.json"
    signer = GuardedSigner(KEY, "chain", FileSignStateStore(path))
    signed_vote = vote(signer, types.PREVOTE, 7, 0, BLOCK_A)
    doc = json.loads(path.read_text())
    assert doc["kind"] == "vote"
    assert bytes.fromhex(doc["signed"]) == codec.encode(signed_vote)
    signed_proposal = proposal(signer, 8, 0, BLOCK_A)
    doc = json.loads(path.read_text())
    assert (doc["height"], doc["round"], doc["kind"]) == (8, 0, "proposal")
    assert bytes.fromhex(doc["signed"]) == codec.encode(signed_proposal)
