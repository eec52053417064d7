"""Tx result codes: one set, from mempool admission through block execution to the wire.

A tx's outcome is always ``(code, log)`` (plus events once executed): the mempool's
verdict, ``check_tx``, a block's result, the RPC and HTTP answers and the CLI all carry
the same integer, never a string to be parsed back. Each code carries the HTTP status
the HTTP port answers with, and whether the sender should simply retry later.

Ranges: 0 success; 1-19 the envelope (encoding, signature, chain, replay window,
accounts, markets); 20-39 the exchange's rules; 40-59 the node's admission (the tx may
be fine, this node cannot take it now); 60-79 the staking rules.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Code", "http_status", "retryable"]


class Code(IntEnum):
    """Tx result codes. 0 is success; a nonzero code changed nothing but (from
    ``INVALID_ORDER`` on) the sender's recorded nonce."""

    OK = 0
    MALFORMED = 1
    BAD_SIGNATURE = 2
    WRONG_CHAIN = 3
    EXPIRED = 4
    NONCE_OUT_OF_WINDOW = 5
    NONCE_REPLAYED = 6
    UNKNOWN_ACCOUNT = 7
    UNKNOWN_MARKET = 8
    INVALID_ORDER = 20
    INSUFFICIENT_MARGIN = 21
    POST_ONLY_WOULD_TAKE = 22
    FOK_NOT_FILLED = 23
    TOO_MANY_OPEN_ORDERS = 24
    ORDER_NOT_FOUND = 25
    DUPLICATE_CLIENT_ID = 26
    REDUCE_ONLY_REJECTED = 27
    INSUFFICIENT_FREE_COLLATERAL = 28
    FAUCET_DISABLED = 29
    PRICE_OUTSIDE_BAND = 30
    #: The sender is already a registered block builder.
    BUILDER_EXISTS = 31
    #: The sender is not a registered block builder.
    NOT_A_BUILDER = 32
    #: A builder bond below the chain's minimum (or of nothing).
    BOND_TOO_SMALL = 33
    #: More unbonded than the builder has bonded.
    INSUFFICIENT_BOND = 34
    #: A builder bid anywhere but first in a proposed block (it never enters a mempool),
    #: or one that does not hold (unknown builder, wrong height or proposer, value above
    #: the bond or below the minimum).
    INVALID_BID = 35
    #: The node's mempool is full: the node is busy; retry in a few blocks.
    MEMPOOL_FULL = 40
    #: The sender already has as many txs waiting as one account may; retry once some commit.
    ACCOUNT_QUEUE_FULL = 41
    #: The tx is larger than the chain allows.
    TOO_LARGE = 42
    #: The tx is already in the mempool or was seen recently: nothing to do.
    ALREADY_KNOWN = 43
    #: The node has more work than it can finish soon (more txs wait than the chain
    #: commits in a few blocks, or too many are being admitted at once): the tx was not
    #: looked at; retry after the delay the answer gives.
    BUSY = 44
    #: The application refused it (a test application's own refusal).
    REFUSED = 59
    #: The sender already operates a validator, or the consensus key is another's.
    VALIDATOR_EXISTS = 60
    #: No validator has that operator (or the sender operates none).
    UNKNOWN_VALIDATOR = 61
    #: A consensus key not proven by its signature, or a commission above 100%.
    INVALID_VALIDATOR = 62
    #: Stake of nothing, or a self-bond below the chain's minimum.
    STAKE_TOO_SMALL = 63
    #: More undelegated than the sender's delegation is worth.
    INSUFFICIENT_DELEGATION = 64
    #: The undelegation would leave the chain without a validator.
    LAST_VALIDATOR = 65
    #: Unjail of a validator that is not jailed.
    NOT_JAILED = 66
    #: Unjail before the validator's jail term is over.
    STILL_JAILED = 67
    #: The validator was tombstoned for duplicate votes: no Unjail, no delegation.
    VALIDATOR_TOMBSTONED = 68
    #: WithdrawRewards when the validator owes the sender nothing yet.
    NO_REWARDS = 69
    #: A commission rise above the chain's limit, or too soon after the last one.
    COMMISSION_CHANGE = 70

    @property
    def http_status(self) -> int:
        """The HTTP port's status for a tx answered with this code."""
        return _HTTP_STATUS.get(self, 400)

    @property
    def retryable(self) -> bool:
        """True when the same tx may succeed later without change (the node was busy)."""
        return self in (Code.MEMPOOL_FULL, Code.ACCOUNT_QUEUE_FULL, Code.BUSY)


_HTTP_STATUS = {
    Code.OK: 200,
    Code.ALREADY_KNOWN: 200,
    Code.TOO_LARGE: 413,
    Code.ACCOUNT_QUEUE_FULL: 429,
    Code.MEMPOOL_FULL: 503,
    Code.BUSY: 503,
}


def http_status(code: int) -> int:
    """The HTTP status for a tx answered with ``code`` (400 for a code this node does not
    know, which only another application could have produced)."""
    return Code(code).http_status if code in _CODES else 400


def retryable(code: int) -> bool:
    """True when a tx answered with ``code`` may succeed later unchanged (the node was busy)."""
    return code in _CODES and Code(code).retryable


_CODES = frozenset(int(c) for c in Code)
