"""The staking state: validators, delegations and unbonding stake; their stored records,
the genesis validators' self-bonds, and what a restart derives again.

The rules that change it are :mod:`appchaind.exchange.staking`'s; this module is the
data and its storage (the app hash covers every record, :mod:`~appchaind.exchange.commitment`):

==============================================  ==========================================
``s/v/`` + operator                             ``[public_key, moniker, details,
                                                commission_ppm, tokens, shares, power,
                                                reward_index, commission_owed,
                                                commission_raised_at]``
``s/d/`` + operator + owner                     ``[shares, reward_mark]``
``s/u/`` + u64 release height + operator + owner  ``[micro-units]``
``s/j/`` + operator                             ``[jailed_until, tombstoned, slashed,
                                                missed bitmap]`` (only when not all 0)
==============================================  ==========================================

A validator is known by its **operator**'s address (the account that created it; for a
genesis validator, the address of its consensus key) and signs with its **consensus key**
(``public_key``). ``tokens`` is the stake bonded to it (micro-units of the quote asset);
``shares`` the delegation shares issued against them (a delegation's value is
``shares × tokens ÷ shares of the validator``, rounded down: until the validator is
slashed, one share is one micro-unit). ``power`` is the voting power the application last gave
consensus for it (0: not in the set), so the validator updates of a block are the
difference between the set the rules choose and these.

Rewards (:mod:`~appchaind.exchange.rewards`): ``reward_index`` is what one delegation
share of the validator has earned since it was created, in units of
``1 / REWARD_SCALE`` micro-units (stored as big-endian bytes: it outgrows 64 bits);
a delegation's ``reward_mark`` is the index when its rewards were last paid, so it is
owed ``shares × (reward_index − reward_mark) ÷ REWARD_SCALE`` (rounded down).
``commission_owed`` is the validator's commission not yet paid to its operator;
``commission_raised_at`` the height its commission was last raised (0: never).
``rewards_allocated`` (in the global record, :mod:`~appchaind.exchange.storage`) is the
part of the fee pool already handed to validators. Unbonding stake is keyed by the
height it is released at (big-endian, so the keys sort by height).

A validator's **signing info** (:class:`SigningInfo`, the rules are
:mod:`~appchaind.exchange.accountability`'s) is its conduct: jailed until a height (0: not
jailed), tombstoned (for good), the micro-units slashed from it in all, and which of the
last ``downtime_window`` commits it missed (bit ``height % downtime_window`` of a
little-endian bitmap of ``ceil(downtime_window / 8)`` bytes). A validator that never
missed a commit and was never punished has no record.

Derived on load, never stored: the consensus address -> operator index, the next release
height, the clearing house's ``staked`` (every validator's tokens plus every unbonding
amount) and ``genesis_stake`` (a function of the genesis), each signing info's count of
missed commits and the total slashed. Pure Python (a rare tx and a
small end-of-block step: nothing here is on the order path).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgpack

from appchaind.chain.crypto import address_of
from appchaind.exchange.commitment import (
    DELEGATION_PREFIX,
    SIGNING_PREFIX,
    UNBONDING_PREFIX,
    VALIDATOR_PREFIX,
)
from config.genesis import Genesis

if TYPE_CHECKING:
    from appchaind.exchange.state import ExchangeState

__all__ = [
    "StakeValidator", "SigningInfo", "Staking", "genesis_stake", "init_genesis", "restore", "finish_load",
    "stage", "first_release", "STAKING_PREFIXES", "index_bytes", "index_of",
]  # fmt: skip

#: The key prefixes of staking records (all four bytes long).
STAKING_PREFIXES = (VALIDATOR_PREFIX, DELEGATION_PREFIX, UNBONDING_PREFIX, SIGNING_PREFIX)


class StakeValidator:
    """A validator (see the module docstring for the fields)."""

    __slots__ = (
        "operator", "public_key", "consensus_address", "moniker", "details",
        "commission_ppm", "tokens", "shares", "power", "reward_index", "commission_owed",
        "commission_raised_at",
    )  # fmt: skip

    def __init__(
        self,
        operator: bytes,
        public_key: bytes,
        moniker: str,
        details: str = "",
        commission_ppm: int = 0,
        tokens: int = 0,
        shares: int = 0,
        power: int = 0,
        reward_index: int = 0,
        commission_owed: int = 0,
        commission_raised_at: int = 0,
    ) -> None:
        self.operator = operator
        self.public_key = public_key
        self.consensus_address = address_of(public_key)
        self.moniker = moniker
        self.details = details
        self.commission_ppm = commission_ppm
        self.tokens = tokens
        self.shares = shares
        self.power = power
        self.reward_index = reward_index
        self.commission_owed = commission_owed
        self.commission_raised_at = commission_raised_at

    def value_of(self, shares: int) -> int:
        """The micro-units ``shares`` of this validator are worth (rounded down)."""
        return shares * self.tokens // self.shares if self.shares else 0

    def record(self) -> list[Any]:
        return [
            self.public_key, self.moniker, self.details, self.commission_ppm, self.tokens,
            self.shares, self.power, index_bytes(self.reward_index), self.commission_owed,
            self.commission_raised_at,
        ]  # fmt: skip

    @staticmethod
    def from_record(operator: bytes, record: list[Any]) -> StakeValidator:
        """The validator stored as ``record``; ValueError if it is not one."""
        try:
            (
                public_key, moniker, details, commission, tokens, shares, power, index, owed,
                raised_at,
            ) = record  # fmt: skip
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a validator record: {exc}") from None
        numbers = (commission, tokens, shares, power, owed, raised_at)
        if not all(type(v) is int and v >= 0 for v in numbers):
            raise ValueError(
                "not a validator record: commission, stake, power and rewards are integers"
            )
        if type(public_key) is not bytes or len(public_key) != 32:
            raise ValueError("not a validator record: the consensus key is 32 bytes")
        return StakeValidator(
            operator, public_key, str(moniker), str(details), commission, tokens, shares, power,
            index_of(index), owed, raised_at,
        )  # fmt: skip


class SigningInfo:
    """A validator's conduct (see the module docstring): ``jailed_until`` a height (0: not
    jailed; it stays jailed after that height until its operator's Unjail),
    ``tombstoned`` (never again in the set), ``slashed`` micro-units in all, ``missed`` a
    bitmap of missed commits (bit ``height % downtime_window``) and ``missed_count`` its
    bits set (derived)."""

    __slots__ = ("jailed_until", "tombstoned", "slashed", "missed", "missed_count")

    def __init__(
        self, jailed_until: int = 0, tombstoned: bool = False, slashed: int = 0, missed: int = 0
    ) -> None:
        self.jailed_until = jailed_until
        self.tombstoned = tombstoned
        self.slashed = slashed
        self.missed = missed
        self.missed_count = missed.bit_count()

    @property
    def jailed(self) -> bool:
        """Out of the set for now (until an Unjail) or for good."""
        return self.jailed_until > 0 or self.tombstoned

    def is_default(self) -> bool:
        return not (self.jailed_until or self.tombstoned or self.slashed or self.missed)

    def record(self, window: int) -> list[Any]:
        bitmap = self.missed.to_bytes((window + 7) // 8, "little")
        return [self.jailed_until, int(self.tombstoned), self.slashed, bitmap]

    @staticmethod
    def from_record(record: list[Any], window: int) -> SigningInfo:
        """The signing info stored as ``record``; ValueError if it is not one."""
        try:
            jailed_until, tombstoned, slashed, bitmap = record
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a signing info record: {exc}") from None
        if not all(type(v) is int and v >= 0 for v in (jailed_until, slashed)):
            raise ValueError("not a signing info record: jailed_until and slashed are integers")
        if tombstoned not in (0, 1) or type(tombstoned) is not int:
            raise ValueError("not a signing info record: tombstoned is 0 or 1")
        if type(bitmap) is not bytes or len(bitmap) != (window + 7) // 8:
            raise ValueError("not a signing info record: the bitmap is one bit per window block")
        missed = int.from_bytes(bitmap, "little")
        if missed >> window:
            raise ValueError("not a signing info record: a bit beyond the window is set")
        return SigningInfo(jailed_until, bool(tombstoned), slashed, missed)


class Staking:
    """The staking part of the exchange's state (``ExchangeState.staking``)."""

    def __init__(self) -> None:
        #: Operator address -> validator.
        self.validators: dict[bytes, StakeValidator] = {}
        #: Consensus address -> operator address (derived).
        self.by_consensus: dict[bytes, bytes] = {}
        #: operator + owner (40 bytes) -> shares.
        self.delegations: dict[bytes, int] = {}
        #: operator + owner -> the validator's reward index when the delegation's rewards
        #: were last paid (one entry per delegation).
        self.reward_marks: dict[bytes, int] = {}
        #: Micro-units of the fee pool handed to validators (their commission and their
        #: delegators' reward indexes) and not yet paid out.
        self.rewards_allocated = 0
        #: u64 release height + operator + owner (48 bytes) -> micro-units.
        self.unbonding: dict[bytes, int] = {}
        #: Operator address -> its signing info (none: never missed, never punished).
        self.signing: dict[bytes, SigningInfo] = {}
        #: Micro-units slashed from every validator in all (derived).
        self.slashed_total = 0
        #: The first height at which unbonding stake is due (0: none; derived).
        self.next_release = 0
        #: Whether stake moved since the set was last chosen (the set is chosen again at
        #: the end of such a block; a restart happens between blocks, so never stored).
        self.set_changed = False
        #: Records changed since the last commitment update.
        self.dirty_validators: dict[bytes, None] = {}
        self.dirty_delegations: dict[bytes, None] = {}
        self.dirty_unbonding: dict[bytes, None] = {}
        self.dirty_signing: dict[bytes, None] = {}

    def signing_of(self, operator: bytes) -> SigningInfo:
        """``operator``'s signing info, made (not yet dirty) if it has none."""
        info = self.signing.get(operator)
        if info is None:
            info = self.signing[operator] = SigningInfo()
        return info

    def is_jailed(self, operator: bytes) -> bool:
        info = self.signing.get(operator)
        return info is not None and info.jailed

    def shares_of(self, operator: bytes, owner: bytes) -> int:
        return self.delegations.get(operator + owner, 0)

    def self_shares(self, validator: StakeValidator) -> int:
        return self.delegations.get(validator.operator + validator.operator, 0)

    def add_validator(self, validator: StakeValidator) -> None:
        self.validators[validator.operator] = validator
        self.by_consensus[validator.consensus_address] = validator.operator
        self.dirty_validators[validator.operator] = None

    def set_delegation(self, operator: bytes, owner: bytes, shares: int, mark: int) -> None:
        """``owner`` holds ``shares`` of ``operator``'s validator (0: none), its rewards
        paid up to reward index ``mark``."""
        key = operator + owner
        if shares:
            self.delegations[key] = shares
            self.reward_marks[key] = mark
        else:
            self.delegations.pop(key, None)
            self.reward_marks.pop(key, None)
        self.dirty_delegations[key] = None

    def add_unbonding(self, height: int, operator: bytes, owner: bytes, amount: int) -> None:
        """``amount`` more micro-units of ``owner``'s stake with ``operator`` come back at
        the end of block ``height`` (one entry per height, validator and owner)."""
        key = height.to_bytes(8, "big") + operator + owner
        self.unbonding[key] = self.unbonding.get(key, 0) + amount
        self.dirty_unbonding[key] = None
        if self.next_release == 0 or height < self.next_release:
            self.next_release = height

    def unbonding_of(self, owner: bytes) -> list[tuple[int, bytes, int]]:
        """``owner``'s unbonding stake: (release height, operator, micro-units), in order."""
        return [
            (int.from_bytes(k[:8], "big"), k[8:28], a)
            for k, a in sorted(self.unbonding.items())
            if k[28:] == owner
        ]


def index_bytes(index: int) -> bytes:
    """A reward index as stored: big-endian, no leading zero byte (0 is empty)."""
    return index.to_bytes((index.bit_length() + 7) // 8, "big")


def index_of(stored: Any) -> int:
    """The reward index stored as ``stored``; ValueError if it is not one."""
    if type(stored) is not bytes or stored[:1] == b"\0":
        raise ValueError("not a reward index: big-endian bytes without a leading zero")
    return int.from_bytes(stored, "big")


def first_release(unbonding: dict[bytes, int]) -> int:
    """The first height at which an unbonding entry is due (0: none)."""
    return int.from_bytes(min(unbonding)[:8], "big") if unbonding else 0


def genesis_stake(genesis: Genesis) -> int:
    """The micro-units the genesis bonds: each genesis validator's power × ``power_unit``."""
    unit = genesis.params.power_unit
    return sum(v.power * unit for v in genesis.validators)


def init_genesis(state: ExchangeState) -> None:
    """The genesis validators, each its own operator (the address of its consensus key)
    with a self-bond of its power × ``power_unit`` and that power in the set. The stake is
    created by the genesis (``clearing.genesis_stake``), as the accounts' balances are."""
    staking = state.staking
    unit = state.params.power_unit
    for entry in state.genesis.validators:
        bond = entry.power * unit
        operator = address_of(entry.public_key)
        staking.add_validator(
            StakeValidator(operator, entry.public_key, entry.name, "", 0, bond, bond, entry.power)
        )
        staking.set_delegation(operator, operator, bond, 0)
    total = genesis_stake(state.genesis)
    state.clearing.staked += total
    state.clearing.genesis_stake = total


def restore(state: ExchangeState, key: bytes, record: Any) -> None:
    """Put one stored staking record back (a restart); ValueError if it is not one."""
    staking = state.staking
    prefix = key[:4]
    if prefix == SIGNING_PREFIX:
        if len(key) != 24:
            raise ValueError("not a signing info record")
        info = SigningInfo.from_record(record, state.params.downtime_window)
        staking.signing[key[4:]] = info
        staking.slashed_total += info.slashed
    elif prefix == VALIDATOR_PREFIX:
        validator = StakeValidator.from_record(key[4:], record)
        staking.validators[validator.operator] = validator
        state.clearing.staked += validator.tokens
    elif prefix == DELEGATION_PREFIX:
        shares, mark = record
        if type(shares) is not int or shares <= 0 or len(key) != 44:
            raise ValueError("not a delegation record")
        staking.delegations[key[4:]] = shares
        staking.reward_marks[key[4:]] = index_of(mark)
    else:
        (amount,) = record
        if type(amount) is not int or amount <= 0 or len(key) != 52:
            raise ValueError("not an unbonding record")
        staking.unbonding[key[4:]] = amount
        state.clearing.staked += amount


def finish_load(state: ExchangeState) -> None:
    """After every record is restored: what the staking state derives."""
    staking = state.staking
    staking.by_consensus = {v.consensus_address: op for op, v in staking.validators.items()}
    staking.next_release = first_release(staking.unbonding)
    state.clearing.genesis_stake = genesis_stake(state.genesis)


def stage(
    state: ExchangeState, put: Callable[[bytes, bytes], None], delete: Callable[[bytes], None]
) -> None:
    """Hand the records changed since the last call to the commitment."""
    staking = state.staking
    packb = msgpack.Packer(use_bin_type=True).pack
    for operator in staking.dirty_validators:
        put(VALIDATOR_PREFIX + operator, packb(staking.validators[operator].record()))
    for key in staking.dirty_delegations:
        shares = staking.delegations.get(key, 0)
        if shares:
            put(DELEGATION_PREFIX + key, packb([shares, index_bytes(staking.reward_marks[key])]))
        else:
            delete(DELEGATION_PREFIX + key)
    for key in staking.dirty_unbonding:
        amount = staking.unbonding.get(key, 0)
        if amount:
            put(UNBONDING_PREFIX + key, packb([amount]))
        else:
            delete(UNBONDING_PREFIX + key)
    window = state.params.downtime_window
    for operator in staking.dirty_signing:
        info = staking.signing.get(operator)
        if info is None or info.is_default():
            staking.signing.pop(operator, None)
            delete(SIGNING_PREFIX + operator)
        else:
            put(SIGNING_PREFIX + operator, packb(info.record(window)))
    staking.dirty_validators.clear()
    staking.dirty_delegations.clear()
    staking.dirty_unbonding.clear()
    staking.dirty_signing.clear()
