"""Keys, addresses, domain-separated signatures, Merkle proofs, signed messages."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appchaind.chain import codec, crypto, types
from appchaind.chain.crypto import KeyFileError, PrivateKey

KEY = PrivateKey(bytes(range(32)))
OTHER = PrivateKey(bytes(range(1, 33)))


def test_address_is_sha256_prefix_of_public_key() -> None:
    assert KEY.address == crypto.sha256(KEY.public_key)[:20]
    assert len(KEY.address) == 20


def test_signature_is_domain_separated_by_chain_and_kind() -> None:
    body = b"payload"
    sig = KEY.sign_message("chain-a", "vote", body)
    assert crypto.verify(KEY.public_key, crypto.sign_bytes("chain-a", "vote", body), sig)
    assert not crypto.verify(KEY.public_key, crypto.sign_bytes("chain-b", "vote", body), sig)
    assert not crypto.verify(KEY.public_key, crypto.sign_bytes("chain-a", "proposal", body), sig)
    assert not crypto.verify(OTHER.public_key, crypto.sign_bytes("chain-a", "vote", body), sig)


def test_verify_rejects_malformed_inputs_without_raising() -> None:
    assert not crypto.verify(b"short", b"m", b"\x00" * 64)
    assert not crypto.verify(KEY.public_key, b"m", b"\x00" * 63)
    assert not crypto.verify(KEY.public_key, b"m", b"\x00" * 64)


def test_key_file_is_0600_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    KEY.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = PrivateKey.load(path)
    assert loaded.public_key == KEY.public_key


def test_key_file_is_never_overwritten_silently(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    KEY.save(path)
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        OTHER.save(path)
    assert PrivateKey.load(path).public_key == KEY.public_key
    OTHER.save(path, overwrite=True)
    assert PrivateKey.load(path).public_key == OTHER.public_key


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "not readable JSON"),
        ('{"type": "rsa"}', "expected"),
        ('{"type": "ed25519", "private_key": "zz"}', "64 hex characters"),
    ],
)
def test_bad_key_files_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "k.json"
    path.write_text(content)
    with pytest.raises(KeyFileError, match=message):
        PrivateKey.load(path)
    with pytest.raises(KeyFileError, match="does not exist"):
        PrivateKey.load(tmp_path / "missing.json")


def test_key_file_public_key_mismatch_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text(KEY.to_json().replace(KEY.public_key.hex(), OTHER.public_key.hex()))
    with pytest.raises(KeyFileError, match="does not match"):
        PrivateKey.load(path)


def test_merkle_root_known_values() -> None:
    assert crypto.merkle_root([]) == crypto.sha256(b"")
    assert crypto.merkle_root([b"a"]) == crypto.sha256(b"\x00a")
    left, right = crypto.sha256(b"\x00a"), crypto.sha256(b"\x00b")
    assert crypto.merkle_root([b"a", b"b"]) == crypto.sha256(b"\x01" + left + right)
    # Three leaves split 2 + 1 (largest power of two below n).
    c = crypto.sha256(b"\x00c")
    two = crypto.sha256(b"\x01" + left + right)
    assert crypto.merkle_root([b"a", b"b", b"c"]) == crypto.sha256(b"\x01" + two + c)


@given(st.lists(st.binary(max_size=20), min_size=1, max_size=40), st.data())
def test_property_merkle_proofs_verify_and_bind(items: list[bytes], data: st.DataObject) -> None:
    root = crypto.merkle_root(items)
    index = data.draw(st.integers(0, len(items) - 1))
    proof = crypto.merkle_proof(items, index)
    assert crypto.verify_merkle_proof(root, items[index], proof)
    assert not crypto.verify_merkle_proof(root, items[index] + b"x", proof)
    if len(items) > 1:
        other = (index + 1) % len(items)
        if items[other] != items[index]:
            assert not crypto.verify_merkle_proof(root, items[other], proof)


def test_signed_vote_and_extension() -> None:
    vote = types.sign_vote(
        KEY, "c", kind=types.PRECOMMIT, height=3, round=1, block_hash=b"\x07" * 32,
        timestamp_ms=1000, validator_index=0, extension=b"prices",
    )  # fmt: skip
    assert vote.verify_signature("c", KEY.public_key)
    assert not vote.verify_signature("other-chain", KEY.public_key)
    tampered = codec.decode(types.Vote, codec.encode(vote))
    object.__setattr__(tampered, "extension", b"PRICES")
    assert not tampered.verify_signature("c", KEY.public_key)
    nil = types.sign_vote(
        KEY, "c", kind=types.PREVOTE, height=3, round=1, block_hash=b"",
        timestamp_ms=1000, validator_index=0,
    )  # fmt: skip
    assert nil.verify_signature("c", KEY.public_key)
    with pytest.raises(ValueError, match="extension"):
        types.sign_vote(
            KEY, "c", kind=types.PREVOTE, height=3, round=1, block_hash=b"\x07" * 32,
            timestamp_ms=1000, validator_index=0, extension=b"x",
        )  # fmt: skip


def test_signed_proposal() -> None:
    p = types.sign_proposal(
        KEY, "c", height=2, round=0, pol_round=-1, block_hash=b"\x01" * 32, timestamp_ms=5
    )
    assert p.verify_signature("c", KEY.public_key)
    assert not p.verify_signature("c", OTHER.public_key)


def test_block_hashes_are_checked_against_the_body() -> None:
    txs = (b"tx1", b"tx2")
    header = types.Header(
        "c", 1, 0, b"", b"", crypto.merkle_root(list(txs)), b"\x00" * 32, b"\x00" * 32, b"",
        KEY.address, types.evidence_hash(()),
    )  # fmt: skip
    block = types.Block(header, txs, (), None)
    types.check_block_hashes(block)
    with pytest.raises(types.InvalidBlock, match="data_hash"):
        types.check_block_hashes(types.Block(header, (b"tx1",), (), None))
    assert block.block_id() == crypto.sha256(codec.encode(header))
