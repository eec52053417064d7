"""A validator that double-signs, for tests only: the multi-process tests of
accountability (issue 17) need a real node whose prevotes conflict, so that honest nodes
catch it, commit the evidence and the application slashes and tombstones it.

**How it is enabled.** Not by ``config.toml`` (no key there enables it, and the config
loader refuses unknown keys), only by the environment of the node's process:
``APPCHAIND_TEST_DOUBLE_SIGN`` must be set to *this node's own consensus address* (the
hex address of its ``validator_key.json``), and the chain's id must start with
``test-``. Anything else set in that variable is refused at start with an error (so a
stray ``=1`` never equivocates by accident, and a production chain never does). A node
in this mode logs a warning at start.

**What it does.** Each time the node sends its own prevote, it also signs, with its
consensus key directly (not through the guarded signer, whose fsynced state is what
prevents exactly this), a second prevote for the same height and round: nil if the first
was for a block, else a block that does not exist. It sends both, the real one first, so
every peer sees two conflicting votes of one validator and records duplicate-vote
evidence (:meth:`appchaind.consensus.machine.ConsensusMachine` does it as for any
equivocation). The second vote is not written to the WAL.
"""

from __future__ import annotations

from collections.abc import Mapping

from appchaind.chain import crypto
from appchaind.chain.crypto import PrivateKey
from appchaind.chain.types import PREVOTE, Vote, sign_vote
from appchaind.errors import StartupError

__all__ = ["TEST_DOUBLE_SIGN_ENV", "double_sign_key", "conflicting_prevote"]

#: The environment variable that turns the mode on (its value: the consensus address).
TEST_DOUBLE_SIGN_ENV = "APPCHAIND_TEST_DOUBLE_SIGN"
#: The prefix a chain id must have for the mode to be honoured.
TEST_CHAIN_PREFIX = "test-"


def double_sign_key(
    environ: Mapping[str, str], chain_id: str, validator_key: PrivateKey
) -> PrivateKey | None:
    """The key to equivocate with, or None (the mode off). StartupError when the variable
    is set but not to this validator's address, or the chain is not a test chain."""
    value = environ.get(TEST_DOUBLE_SIGN_ENV, "")
    if not value:
        return None
    if not chain_id.startswith(TEST_CHAIN_PREFIX):
        raise StartupError(
            f"{TEST_DOUBLE_SIGN_ENV} is set, but the test-only double-sign mode runs only on "
            f"a chain whose id starts with {TEST_CHAIN_PREFIX!r} (this is {chain_id!r}); "
            "unset it"
        )
    if value.lower() != validator_key.address.hex():
        raise StartupError(
            f"{TEST_DOUBLE_SIGN_ENV} must be this node's consensus address "
            f"({validator_key.address.hex()}) to enable the test-only double-sign mode; "
            "unset it"
        )
    return validator_key


def conflicting_prevote(key: PrivateKey, chain_id: str, vote: Vote) -> Vote | None:
    """A prevote conflicting with ``vote`` (our own), or None when ``vote`` is not a
    prevote."""
    if vote.kind != PREVOTE:
        return None
    other = (
        b""
        if vote.block_hash
        else crypto.sha256(
            b"appchaind/test-double-sign"
            + vote.height.to_bytes(8, "big")
            + vote.round.to_bytes(4, "big")
        )
    )
    return sign_vote(
        key,
        chain_id,
        kind=PREVOTE,
        height=vote.height,
        round=vote.round,
        block_hash=other,
        timestamp_ms=vote.timestamp_ms,
        validator_index=vote.validator_index,
    )
