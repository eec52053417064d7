"""The test-only double-sign mode (:mod:`appchaind.node.double_sign`): off unless the
variable names this node's own consensus address on a ``test-`` chain, refused at start
for anything else; the second prevote conflicts with the first as evidence requires."""

from __future__ import annotations

import pytest

from appchaind.chain.crypto import PrivateKey, verify
from appchaind.chain.types import PRECOMMIT, PREVOTE, Validator, sign_vote
from appchaind.consensus.evidence import make_evidence, verify_duplicate_vote
from appchaind.consensus.validators import ValidatorSet
from appchaind.errors import StartupError
from appchaind.node.double_sign import TEST_DOUBLE_SIGN_ENV, conflicting_prevote, double_sign_key

KEY = PrivateKey(b"\x07" * 32)
CHAIN = "test-net"


def test_the_mode_is_off_without_the_variable() -> None:
    assert double_sign_key({}, CHAIN, KEY) is None
    assert double_sign_key({TEST_DOUBLE_SIGN_ENV: ""}, "appchain-main", KEY) is None


def test_the_mode_needs_the_nodes_own_address_on_a_test_chain() -> None:
    assert double_sign_key({TEST_DOUBLE_SIGN_ENV: KEY.address.hex()}, CHAIN, KEY) is KEY
    with pytest.raises(StartupError, match="must be this node's consensus address"):
        double_sign_key({TEST_DOUBLE_SIGN_ENV: "1"}, CHAIN, KEY)
    with pytest.raises(StartupError, match="runs only on a chain whose id starts with 'test-'"):
        double_sign_key({TEST_DOUBLE_SIGN_ENV: KEY.address.hex()}, "appchain-main", KEY)


@pytest.mark.parametrize("block_hash", [b"\x01" * 32, b""])
def test_the_second_prevote_is_valid_evidence(block_hash: bytes) -> None:
    vote = sign_vote(
        KEY, CHAIN, kind=PREVOTE, height=5, round=1, block_hash=block_hash,
        timestamp_ms=1_000, validator_index=0,
    )  # fmt: skip
    other = conflicting_prevote(KEY, CHAIN, vote)
    assert other is not None and other.block_hash != vote.block_hash
    validators = ValidatorSet.from_genesis((Validator(KEY.public_key, 10),))
    evidence = make_evidence(vote, other)
    assert verify_duplicate_vote(evidence, validators, CHAIN, verify) is None


def test_precommits_are_not_doubled() -> None:
    vote = sign_vote(
        KEY, CHAIN, kind=PRECOMMIT, height=5, round=0, block_hash=b"", timestamp_ms=1_000,
        validator_index=0,
    )  # fmt: skip
    assert conflicting_prevote(KEY, CHAIN, vote) is None
