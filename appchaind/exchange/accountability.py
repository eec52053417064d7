"""Accountability: slashing and tombstoning for duplicate votes, jailing for downtime, and
the Unjail tx that ends a jail term (issue 17).

Both steps run at the start of a block (as CometBFT's BeginBlock), from what the block
carries and consensus has already checked:

- **Duplicate votes.** Each piece of the block's evidence names a validator by its
  consensus address and the height of its two votes. A validator of the staking state
  not yet tombstoned loses ``slash_double_sign_ppm`` of its stake (:func:`slash`) and is
  **tombstoned**: never again in the set (its power goes to 0 in this block's validator
  updates), no Unjail, no new delegation; its consensus key stays its own, so it cannot
  come back as a new validator either. Evidence of a validator the staking state does
  not know, or of one already tombstoned (a second piece of evidence, or a second
  offence), changes nothing and is recorded as an ``evidence_ignored`` event.
- **Downtime.** The block's last commit says which validators of the previous height's
  set signed it (a precommit for the block; an absent or nil one is a miss). For each
  validator of that set that the staking state has in the set (power above 0) and not
  jailed, bit ``height % downtime_window`` of its signing info's bitmap
  (:class:`~appchaind.exchange.staking_state.SigningInfo`) becomes 1 for a miss and 0
  for a signature, so the bitmap always holds the last ``downtime_window`` blocks (a
  validator outside the set counts as having signed: its bitmap is cleared when it
  leaves). A validator with more than ``downtime_max_missed`` bits set is **jailed**
  until ``height + downtime_jail_blocks``: out of the set (power 0 in this block's
  updates), slashed by ``slash_downtime_ppm`` (may be 0), its bitmap cleared. It stays
  jailed after that height until its operator sends **Unjail**, which returns it to the
  set (at the end of that block, in effect two heights later) if its self-bond still
  meets ``min_self_bond``. This loops over the previous set only, never over delegators.

**What a slash takes** (:func:`slash`): ``ppm`` of the validator's bonded stake
(``tokens``; delegation shares are untouched, so every delegation, the self-bond
included, loses the same fraction) and of each of its unbonding entries that was still
bonded at the infraction: an entry released at height ``r`` was undelegated at
``r - stake_unbonding_blocks`` (a chain constant), so the entries slashed are those with
``r >= infraction_height + stake_unbonding_blocks``. Each part is rounded up, against
the offender. Unbonding entries are visited in key order; the scan over them is per
offence, not per block.

**Where it goes.** Slashed stake goes to the insurance fund
(:meth:`margin.ClearingHouse.slash_stake`): it leaves ``staked`` and enters
``insurance_fund``, so the quote asset's conservation equation holds as it is, and the
fund that backs the traders' losses is what a misbehaving validator pays. The total
slashed is kept per validator in its signing info (stored and hashed) and summed on load.

Integers only, no clock; the validators of a commit are visited in the order of the
commit's slots (the set's order), the evidence in the block's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from appchaind.abci import APPLIED
from appchaind.chain.codes import Code
from appchaind.chain.events import Event, PendingEvent
from appchaind.chain.types import COMMIT_BLOCK, Commit
from appchaind.consensus.validators import ValidatorSet
from appchaind.exchange.staking_state import StakeValidator, first_release
from config.genesis import PPM
from margin import Account

if TYPE_CHECKING:
    from appchaind.exchange.state import ExchangeState

__all__ = [
    "begin_block", "commit_signers", "punish_duplicate_votes", "record_signatures", "slash",
    "unjail",
]  # fmt: skip


def commit_signers(
    commit: Commit | None, validators: ValidatorSet | None
) -> list[tuple[bytes, bool]] | None:
    """(consensus address, signed) per slot of a block's last ``commit`` read against the
    set that made it, ``validators``: signed = a precommit for the block (absent and nil
    are misses). None without a commit or a set."""
    if commit is None or validators is None:
        return None
    signed = [sig.flag == COMMIT_BLOCK for sig in commit.signatures]
    return list(zip(validators.addresses, signed, strict=False))


def begin_block(
    state: ExchangeState,
    evidence: Sequence[tuple[bytes, int]],
    signers: Sequence[tuple[bytes, bool]] | None,
    events: list[PendingEvent],
) -> None:
    """The accountability step of a block: ``evidence`` = (consensus address, height) of
    each duplicate vote the block carries, ``signers`` = (consensus address, signed) per
    slot of its last commit (None: no commit, or no set to read it against)."""
    if evidence:
        punish_duplicate_votes(state, evidence, events)
    if signers:
        record_signatures(state, signers, events)


def slash(
    state: ExchangeState,
    validator: StakeValidator,
    ppm: int,
    infraction_height: int,
    reason: str,
    events: list[PendingEvent],
) -> int:
    """Take ``ppm`` of ``validator``'s bonded stake and of its unbonding entries still
    bonded at ``infraction_height`` to the insurance fund (each part rounded up); returns
    the micro-units taken."""
    staking = state.staking
    operator = validator.operator
    bonded = min(validator.tokens, -(-validator.tokens * ppm // PPM))
    if bonded:
        validator.tokens -= bonded
        staking.dirty_validators[operator] = None
    unbonding = 0
    first = (infraction_height + state.params.stake_unbonding_blocks).to_bytes(8, "big")
    for key in sorted(staking.unbonding):
        if key[:8] < first or key[8:28] != operator:
            continue
        amount = staking.unbonding[key]
        cut = min(amount, -(-amount * ppm // PPM))
        if not cut:
            continue
        unbonding += cut
        if cut == amount:
            del staking.unbonding[key]
        else:
            staking.unbonding[key] = amount - cut
        staking.dirty_unbonding[key] = None
    staking.next_release = first_release(staking.unbonding)
    total = bonded + unbonding
    if total:
        state.clearing.slash_stake(total)
        info = staking.signing_of(operator)
        info.slashed += total
        staking.slashed_total += total
        staking.dirty_signing[operator] = None
        staking.set_changed = True
    events.append(
        Event(
            "validator_slashed",
            {
                "validator": operator,
                "reason": reason,
                "infraction_height": infraction_height,
                "amount": total,
                "from_unbonding": unbonding,
                "stake": validator.tokens,
            },
        )  # fmt: skip
    )
    return total


def punish_duplicate_votes(
    state: ExchangeState, evidence: Sequence[tuple[bytes, int]], events: list[PendingEvent]
) -> None:
    """Slash and tombstone the validator of each piece of ``evidence`` (in block order)."""
    staking = state.staking
    for consensus_address, height in evidence:
        operator = staking.by_consensus.get(consensus_address)
        info = None if operator is None else staking.signing.get(operator)
        if operator is None or (info is not None and info.tombstoned):
            events.append(
                Event(
                    "evidence_ignored",
                    {
                        "consensus_address": consensus_address,
                        "infraction_height": height,
                        "reason": "unknown validator" if operator is None else "tombstoned",
                    },
                )  # fmt: skip
            )
            continue
        validator = staking.validators[operator]
        slash(
            state, validator, state.params.slash_double_sign_ppm, height, "duplicate_vote", events
        )
        info = staking.signing_of(operator)
        info.tombstoned = True
        info.jailed_until = 0
        info.missed = 0
        info.missed_count = 0
        staking.dirty_signing[operator] = None
        staking.set_changed = True
        events.append(
            Event(
                "validator_tombstoned",
                {
                    "validator": operator,
                    "consensus_address": consensus_address,
                    "infraction_height": height,
                },
            )  # fmt: skip
        )


def record_signatures(
    state: ExchangeState, signers: Sequence[tuple[bytes, bool]], events: list[PendingEvent]
) -> None:
    """Mark this height's bit of each listed validator's bitmap (see the module docstring)
    and jail those that missed more than ``downtime_max_missed`` of the window."""
    staking = state.staking
    params = state.params
    height = state.height
    bit = 1 << (height % params.downtime_window)
    for consensus_address, signed in signers:
        operator = staking.by_consensus.get(consensus_address)
        if operator is None or staking.validators[operator].power == 0:
            continue
        info = staking.signing.get(operator)
        if info is not None and info.jailed:
            continue
        if signed:
            if info is not None and info.missed & bit:
                info.missed &= ~bit
                info.missed_count -= 1
                staking.dirty_signing[operator] = None
            continue
        info = staking.signing_of(operator)
        if info.missed & bit:
            continue  # missed a window ago too: the count stays
        info.missed |= bit
        info.missed_count += 1
        staking.dirty_signing[operator] = None
        if info.missed_count > params.downtime_max_missed:
            _jail(state, operator, events)


def _jail(state: ExchangeState, operator: bytes, events: list[PendingEvent]) -> None:
    staking = state.staking
    params = state.params
    info = staking.signing_of(operator)
    missed = info.missed_count
    info.jailed_until = state.height + params.downtime_jail_blocks
    info.missed = 0
    info.missed_count = 0
    staking.dirty_signing[operator] = None
    staking.set_changed = True
    validator = staking.validators[operator]
    events.append(
        Event(
            "validator_jailed",
            {
                "validator": operator,
                "consensus_address": validator.consensus_address,
                "missed_blocks": missed,
                "window": params.downtime_window,
                "jailed_until": info.jailed_until,
            },
        )  # fmt: skip
    )
    slash(state, validator, params.slash_downtime_ppm, state.height, "downtime", events)


def forget_missed(state: ExchangeState, operator: bytes) -> None:
    """``operator``'s validator left the set: its missed commits no longer count."""
    staking = state.staking
    info = staking.signing.get(operator)
    if info is not None and info.missed:
        info.missed = 0
        info.missed_count = 0
        staking.dirty_signing[operator] = None


def unjail(state: ExchangeState, account: Account, events: list[PendingEvent]) -> tuple[int, str]:
    """The Unjail tx: the sender's validator, jailed for downtime and its term over, goes
    back to the validators the set is chosen from."""
    staking = state.staking
    validator = staking.validators.get(account.address)
    if validator is None:
        return Code.UNKNOWN_VALIDATOR, "the sender operates no validator"
    info = staking.signing.get(validator.operator)
    if info is not None and info.tombstoned:
        return (
            Code.VALIDATOR_TOMBSTONED,
            "the validator was tombstoned for duplicate votes: it can never rejoin the set",
        )
    if info is None or not info.jailed_until:
        return Code.NOT_JAILED, "the validator is not jailed"
    if state.height < info.jailed_until:
        return (
            Code.STILL_JAILED,
            f"the validator is jailed until height {info.jailed_until} (this is {state.height})",
        )
    self_bond = validator.value_of(staking.self_shares(validator))
    if self_bond < state.params.min_self_bond:
        return (
            Code.STAKE_TOO_SMALL,
            f"the self-bond is {self_bond} micro-units, below the minimum of "
            f"{state.params.min_self_bond}: delegate more to it first",
        )
    info.jailed_until = 0
    staking.dirty_signing[validator.operator] = None
    staking.set_changed = True
    events.append(Event("validator_unjailed", {"validator": validator.operator}))
    return APPLIED
