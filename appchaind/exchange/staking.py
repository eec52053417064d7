"""Proof of stake: validators, delegations, unbonding, and the validator set they choose.

The validator set is no longer fixed at genesis: it is the stake's. The application keeps
the stake (:mod:`~appchaind.exchange.staking_state`), and at the end of a block in which
stake moved it chooses the set again and hands consensus the difference as validator
updates (:class:`~appchaind.abci.FinalizeResult`), which take effect two heights later
(CometBFT's rule, :meth:`appchaind.consensus.validators.ValidatorSet.with_updates`).

**The staking token is the quote asset.** Stake is collateral an account moves out of
its free collateral (:meth:`margin.ClearingHouse.stake`) into the staking pool
(``clearing.staked``: bonded and unbonding stake) and gets back after unbonding, so one
asset is conserved (:mod:`margin.clearing`)::

    Σ balances + insurance_fund + fee_pool + withdrawn + builder_bonds + staked
        = genesis_total + genesis_stake + faucet_total

The genesis validators are validators of the staking state from height 0: each one its
own operator (the address of its consensus key), with a self-bond of its genesis power ×
``power_unit``, so that the stake chooses the same set as the genesis. That stake is
created by the genesis, like the accounts' balances: it is ``genesis_stake``, and when
it is undelegated it goes to the operator's account (opened then if it has none).

The txs (:mod:`~appchaind.exchange.txs`), each refused with a code and a reason:

- **CreateValidator**: the sender becomes a validator's operator, with a consensus key
  (never one another validator has had: the key's signature of the operator's address
  proves the sender holds it), a description, a commission (at most 1,000,000 ppm) and a
  self-bond of at least ``min_self_bond``. One validator per operator.
- **Delegate**: bonds free collateral to a validator for delegation shares (issued at the
  validator's shares per micro-unit of stake, one for one until it is slashed; rounded
  down). Refused to a tombstoned validator.
- **Undelegate**: takes stake off a validator at once (it counts for nothing from the
  end of this block) and returns it to the sender at the end of block
  ``h + stake_unbonding_blocks``; shares burnt rounded up (the whole delegation when
  its whole value is taken). The operator's own delegation, its self-bond, must stay at
  least ``min_self_bond`` or go entirely; a validator without a self-bond has no power
  (its delegators' stake stays with it until they undelegate). Refused when it would
  leave no validator able to be in the set: consensus cannot run without one, and the
  chain could never choose one again (the stake of a halted chain cannot move).
- **EditValidator**: a new description and commission for the sender's validator (a
  rise limited in size and frequency, :func:`~appchaind.exchange.rewards.commission_problem`).
- **Unjail**: the sender's validator, jailed for downtime, may be chosen again
  (:mod:`~appchaind.exchange.accountability`, which also slashes, tombstones and jails).
- **WithdrawRewards**: the sender's rewards from a validator, and its commission if it
  is the operator (:mod:`~appchaind.exchange.rewards`, which also pays a delegation's
  rewards whenever its shares change, and limits commission rises).

**The set.** A validator's power is its stake (``tokens``) divided by ``power_unit``,
rounded down, if it has a self-bond and at least ``min_validator_power`` and is neither
jailed nor tombstoned, else 0; the set is the ``max_validators`` validators of highest
power (ties: the lower operator address first). At the end of a block in which stake
moved (:func:`end_block`) the set is chosen again and, per validator in operator-address
order, a power that differs from the one consensus was last given becomes an update
(power 0 removes it). Consensus's safety
across a change holds because the old set decides it; its liveness needs more than 2/3 of
the new set's power online, which no rule here can know (as in CometBFT, any change is
allowed but an empty set).

Integers only; rounding down wherever a division is stated; validators, delegations and
unbonding entries are visited in key order wherever the order shows. Pure Python: these
are rare txs and a short end-of-block step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from appchaind.abci import APPLIED
from appchaind.chain.codes import Code
from appchaind.chain.crypto import PrivateKey, address_of, sign_bytes, verify
from appchaind.chain.events import Event, PendingEvent
from appchaind.chain.types import Tx, Validator
from appchaind.exchange import accountability, rewards
from appchaind.exchange.staking_state import StakeValidator, Staking, first_release
from appchaind.exchange.statistics import StakingStatistics
from appchaind.exchange.txs import (
    CreateValidator,
    Delegate,
    EditValidator,
    Undelegate,
    Unjail,
    WithdrawRewards,
)
from config.genesis import PPM, ChainParams
from margin import Account, ClearingError

if TYPE_CHECKING:
    from appchaind.exchange.state import ExchangeState

__all__ = [
    "TX_KINDS", "deliver", "end_block", "power_of", "chosen_set", "key_signature",
    "KEY_SIGNATURE_KIND", "validator_view", "signing_view", "statistics",
]  # fmt: skip

#: The tx bodies of this module (the application dispatches them to :func:`deliver`).
TX_KINDS = (CreateValidator, Delegate, Undelegate, EditValidator, Unjail, WithdrawRewards)
#: What a consensus key signs to be put in a validator (domain-separated from votes).
KEY_SIGNATURE_KIND = "create-validator"


def key_signature(consensus_key: PrivateKey, chain_id: str, operator: bytes) -> bytes:
    """The ``key_signature`` of a :class:`CreateValidator`: ``consensus_key`` consents to
    sign for the validator of ``operator`` on ``chain_id``."""
    return consensus_key.sign_message(chain_id, KEY_SIGNATURE_KIND, operator)


def deliver(
    state: ExchangeState, account: Account, tx: Tx, events: list[PendingEvent]
) -> tuple[int, str]:
    """Apply one staking tx (its envelope and nonce already accepted)."""
    body = tx.body
    if type(body) is Delegate:
        return delegate(state, account, body, events)
    if type(body) is Undelegate:
        return undelegate(state, account, body, events)
    if type(body) is CreateValidator:
        return create_validator(state, account, body, events)
    if type(body) is Unjail:
        return accountability.unjail(state, account, events)
    if type(body) is WithdrawRewards:
        return rewards.withdraw(state, account, body, events)
    assert type(body) is EditValidator
    return edit_validator(state, account, body, events)


def _commission_problem(commission_ppm: int) -> tuple[int, str] | None:
    if commission_ppm > PPM:
        return (
            Code.INVALID_VALIDATOR,
            f"commission_ppm = {commission_ppm} is above {PPM} (100%)",
        )
    return None


def create_validator(
    state: ExchangeState, account: Account, body: CreateValidator, events: list[PendingEvent]
) -> tuple[int, str]:
    staking = state.staking
    operator = account.address
    if operator in staking.validators:
        return (
            Code.VALIDATOR_EXISTS,
            "the sender already operates a validator; bond more with Delegate to it",
        )
    consensus_address = address_of(body.public_key)
    if consensus_address in staking.by_consensus:
        owner = staking.by_consensus[consensus_address]
        return (
            Code.VALIDATOR_EXISTS,
            f"the consensus key is validator {owner.hex()}'s; each validator needs a key of its own",
        )
    problem = _commission_problem(body.commission_ppm)
    if problem is not None:
        return problem
    message = sign_bytes(state.chain_id, KEY_SIGNATURE_KIND, operator)
    if not verify(body.public_key, message, body.key_signature):
        return (
            Code.INVALID_VALIDATOR,
            "key_signature is not the consensus key's signature of the sender's address on "
            "this chain (sign it with the validator key)",
        )
    minimum = state.params.min_self_bond
    if body.amount < minimum:
        return (
            Code.STAKE_TOO_SMALL,
            f"a validator's self-bond must be at least {minimum} micro-units, got {body.amount}",
        )
    try:
        state.clearing.stake(account, body.amount)
    except ClearingError as exc:
        return Code.INSUFFICIENT_FREE_COLLATERAL, str(exc)
    validator = StakeValidator(
        operator, body.public_key, body.moniker, body.details, body.commission_ppm,
        body.amount, body.amount,
    )  # fmt: skip
    staking.add_validator(validator)
    staking.set_delegation(operator, operator, body.amount, 0)
    staking.set_changed = True
    events.append(
        Event(
            "validator_created",
            {
                "validator": operator,
                "consensus_address": consensus_address,
                "moniker": body.moniker,
                "commission_ppm": body.commission_ppm,
                "amount": body.amount,
            },
        )  # fmt: skip
    )
    return APPLIED


def delegate(
    state: ExchangeState, account: Account, body: Delegate, events: list[PendingEvent]
) -> tuple[int, str]:
    staking = state.staking
    validator = staking.validators.get(body.validator)
    if validator is None:
        return Code.UNKNOWN_VALIDATOR, f"no validator has operator {body.validator.hex()}"
    signing = staking.signing.get(validator.operator)
    if signing is not None and signing.tombstoned:
        return (
            Code.VALIDATOR_TOMBSTONED,
            "the validator was tombstoned for duplicate votes and can never rejoin the set",
        )
    amount = body.amount
    owner = account.address
    if validator.shares == 0:
        issued = amount
    elif validator.tokens == 0:
        return Code.UNKNOWN_VALIDATOR, "the validator has no stake left to delegate to"
    else:
        issued = amount * validator.shares // validator.tokens
    if issued == 0:
        return Code.STAKE_TOO_SMALL, f"a delegation of {amount} micro-units buys no share"
    held = staking.shares_of(validator.operator, owner)
    if owner == validator.operator:
        after = (held + issued) * (validator.tokens + amount) // (validator.shares + issued)
        if after < state.params.min_self_bond:
            return (
                Code.STAKE_TOO_SMALL,
                f"the self-bond would be {after} micro-units, below the minimum of "
                f"{state.params.min_self_bond}",
            )
    try:
        state.clearing.stake(account, amount)
    except ClearingError as exc:
        return Code.INSUFFICIENT_FREE_COLLATERAL, str(exc)
    # The rewards of the shares held so far are paid before the shares change.
    rewards.pay(state, validator, owner, events)
    validator.tokens += amount
    validator.shares += issued
    staking.dirty_validators[validator.operator] = None
    staking.set_delegation(validator.operator, owner, held + issued, validator.reward_index)
    staking.set_changed = True
    events.append(
        Event(
            "delegated",
            {
                "delegator": owner,
                "validator": validator.operator,
                "amount": amount,
                "stake": validator.tokens,
            },
        )  # fmt: skip
    )
    return APPLIED


def undelegate(
    state: ExchangeState, account: Account, body: Undelegate, events: list[PendingEvent]
) -> tuple[int, str]:
    staking = state.staking
    params = state.params
    validator = staking.validators.get(body.validator)
    if validator is None:
        return Code.UNKNOWN_VALIDATOR, f"no validator has operator {body.validator.hex()}"
    owner = account.address
    held = staking.shares_of(validator.operator, owner)
    value = validator.value_of(held)
    amount = body.amount
    if not 0 < amount <= value:
        return (
            Code.INSUFFICIENT_DELEGATION,
            f"undelegate 1 to {value} micro-units (the sender's delegation to this validator)",
        )
    # Rounded up against the delegator; the whole delegation when its whole value goes.
    burnt = held if amount == value else -(-amount * validator.shares // validator.tokens)
    tokens = validator.tokens - amount
    shares = validator.shares - burnt
    self_shares = staking.self_shares(validator)
    if owner == validator.operator:
        self_shares -= burnt
        left = self_shares * tokens // shares if shares else 0
        if 0 < left < params.min_self_bond:
            return (
                Code.STAKE_TOO_SMALL,
                f"the self-bond would be {left} micro-units, below the minimum of "
                f"{params.min_self_bond}; undelegate all of it ({value}) or less",
            )
    if power_of(params, tokens, self_shares) == 0 and not any(
        power_of(params, other.tokens, staking.self_shares(other))
        for other in staking.validators.values()
        if other is not validator and not staking.is_jailed(other.operator)
    ):
        return (
            Code.LAST_VALIDATOR,
            "this would leave no validator with power: the chain needs one to go on",
        )
    rewards.pay(state, validator, owner, events)
    validator.tokens = tokens
    validator.shares = shares
    staking.dirty_validators[validator.operator] = None
    staking.set_delegation(validator.operator, owner, held - burnt, validator.reward_index)
    release = state.height + params.stake_unbonding_blocks
    staking.add_unbonding(release, validator.operator, owner, amount)
    staking.set_changed = True
    events.append(
        Event(
            "undelegated",
            {
                "delegator": owner,
                "validator": validator.operator,
                "amount": amount,
                "stake": validator.tokens,
                "release_height": release,
            },
        )  # fmt: skip
    )
    return APPLIED


def edit_validator(
    state: ExchangeState, account: Account, body: EditValidator, events: list[PendingEvent]
) -> tuple[int, str]:
    validator = state.staking.validators.get(account.address)
    if validator is None:
        return Code.UNKNOWN_VALIDATOR, "the sender operates no validator; create one first"
    problem = _commission_problem(body.commission_ppm) or rewards.commission_problem(
        state.params, validator, body.commission_ppm, state.height
    )
    if problem is not None:
        return problem
    if body.commission_ppm > validator.commission_ppm:
        validator.commission_raised_at = state.height
    validator.moniker = body.moniker
    validator.details = body.details
    validator.commission_ppm = body.commission_ppm
    state.staking.dirty_validators[validator.operator] = None
    events.append(
        Event(
            "validator_edited",
            {
                "validator": validator.operator,
                "moniker": body.moniker,
                "commission_ppm": body.commission_ppm,
            },
        )  # fmt: skip
    )
    return APPLIED


# ====================================================================== the end of a block


def power_of(params: ChainParams, tokens: int, self_shares: int) -> int:
    """The power a validator with ``tokens`` micro-units of stake, its operator holding
    ``self_shares`` of them, may have in the set: ``tokens // power_unit`` if it has a
    self-bond and that reaches ``min_validator_power``, else 0."""
    if self_shares <= 0:
        return 0
    power = tokens // params.power_unit
    return power if power >= params.min_validator_power else 0


def chosen_set(staking: Staking, params: ChainParams) -> dict[bytes, int]:
    """Operator -> power of the validators the stake puts in the set."""
    candidates = []
    for operator in sorted(staking.validators):
        validator = staking.validators[operator]
        if staking.is_jailed(operator):
            continue
        power = power_of(params, validator.tokens, staking.self_shares(validator))
        if power:
            candidates.append((-power, operator))
    candidates.sort()
    return {operator: -negative for negative, operator in candidates[: params.max_validators]}


def end_block(state: ExchangeState, events: list[PendingEvent]) -> list[Validator]:
    """The staking step of the end of a block: the block's rewards to the validators in
    the set (:func:`~appchaind.exchange.rewards.distribute`), the unbonding stake due
    released, then, if stake moved in the block, the validator updates (in
    operator-address order)."""
    rewards.distribute(state, events)
    _release_unbonded(state, events)
    staking = state.staking
    if not staking.set_changed:
        return []
    staking.set_changed = False
    chosen = chosen_set(staking, state.params)
    if not chosen:
        # Undelegate refuses to leave no validator with power, so this cannot happen;
        # were it to, consensus keeps the set it has rather than be handed an empty one.
        return []
    updates = []
    effective = state.height + 2
    for operator in sorted(staking.validators):
        validator = staking.validators[operator]
        power = chosen.get(operator, 0)
        if power == validator.power:
            continue
        validator.power = power
        staking.dirty_validators[operator] = None
        if power == 0:
            accountability.forget_missed(state, operator)
        updates.append(Validator(validator.public_key, power))
        events.append(
            Event(
                "validator_power",
                {
                    "validator": operator,
                    "consensus_address": validator.consensus_address,
                    "power": power,
                    "effective_height": effective,
                },
            )  # fmt: skip
        )
    return updates


def _release_unbonded(state: ExchangeState, events: list[PendingEvent]) -> None:
    """Return to their owners the unbonding stake due at or before this height (in key
    order: height, operator, owner)."""
    staking = state.staking
    due = staking.next_release
    if due == 0 or due > state.height:
        return
    last = state.height.to_bytes(8, "big")
    for key in sorted(staking.unbonding):
        if key[:8] > last:
            break
        amount = staking.unbonding.pop(key)
        staking.dirty_unbonding[key] = None
        owner = key[28:]
        state.clearing.release_stake(owner, amount)
        events.append(
            Event("stake_released", {"delegator": owner, "validator": key[8:28], "amount": amount})
        )
    staking.next_release = first_release(staking.unbonding)


# ====================================================================== queries


def validator_view(staking: Staking, validator: StakeValidator) -> dict[str, Any]:
    """One validator as the query ports show it (amounts in micro-units, bytes as hex):
    ``jailed_until`` 0 when not jailed, ``missed_blocks`` of the downtime window."""
    signing = staking.signing.get(validator.operator)
    return {
        "operator": validator.operator.hex(),
        "consensus_address": validator.consensus_address.hex(),
        "public_key": validator.public_key.hex(),
        "moniker": validator.moniker,
        "details": validator.details,
        "commission_ppm": validator.commission_ppm,
        "commission_owed": validator.commission_owed,
        "commission_raised_at": validator.commission_raised_at,
        "stake": validator.tokens,
        "self_bond": validator.value_of(staking.self_shares(validator)),
        "power": validator.power,
        "jailed": signing is not None and signing.jailed,
        "jailed_until": 0 if signing is None else signing.jailed_until,
        "tombstoned": signing is not None and signing.tombstoned,
        "missed_blocks": 0 if signing is None else signing.missed_count,
        "slashed": 0 if signing is None else signing.slashed,
    }


def signing_view(staking: Staking, consensus_address: bytes) -> dict[str, Any] | None:
    """The signing statistics of the validator with ``consensus_address`` (None: the
    staking state has no such validator): missed blocks of the window, jailed, tombstoned."""
    operator = staking.by_consensus.get(consensus_address)
    if operator is None:
        return None
    signing = staking.signing.get(operator)
    return {
        "operator": operator.hex(),
        "missed_blocks": 0 if signing is None else signing.missed_count,
        "jailed": signing is not None and signing.jailed,
        "tombstoned": signing is not None and signing.tombstoned,
    }


def statistics(state: ExchangeState) -> StakingStatistics:
    """The staking figures of the node's metrics."""
    staking = state.staking
    validators = [staking.validators[op] for op in sorted(staking.validators)]
    return StakingStatistics(
        len(validators),
        sum(1 for v in validators if v.power),
        sum(v.tokens for v in validators),
        sum(staking.unbonding.values()),
        tuple((v.operator, v.moniker, v.power) for v in validators),
        sum(1 for v in validators if staking.is_jailed(v.operator)),
        sum(1 for info in staking.signing.values() if info.tombstoned),
        staking.slashed_total,
        tuple(
            (op, staking.signing[op].missed_count)
            for op in sorted(staking.signing)
            if staking.signing[op].missed_count
        ),
        staking.rewards_allocated,
    )
