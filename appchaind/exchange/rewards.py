"""Staking rewards: the trading fees and the proposers' income from builders' bids, paid
to the validators and their delegators pro rata to stake, less commission, lazily.

**Where rewards come from.** Every fill adds its net fee (maker plus taker, a rebate
counting against it) to the clearing house's fee pool; a winning builder's bid adds the
proposer's share (``builder_bid_proposer_ppm``, :mod:`~appchaind.exchange.builders`).
The fee pool holds both until they are paid out, so the quote asset stays conserved
through rewards with no new term (:mod:`margin.clearing`).

**Who gets them.**

- The proposer's share of a bid is the proposing validator's reward at once
  (:func:`credit_proposer`; a proposer the staking state does not know, or that is jailed
  or tombstoned, leaves it to the next distribution).
- At the end of every block (:func:`distribute`), the part of the fee pool not yet
  handed out (``fee_pool − rewards_allocated``) goes to the validators with power in the
  set and not jailed (a validator jailed or tombstoned in this very block earns none of
  it), each ``new × tokens ÷ Σ tokens`` (rounded down; what rounding leaves waits for the
  next block). A block without fees costs one subtraction. The stake counted is the
  stake at the end of the block, as in Cosmos: a delegation made in a block shares that
  block's fees.

The fee pool never shrinks but by what is paid out (a fill's net fee is never negative:
a liquidation's fill, whose taker pays no fee, pays its maker no rebate,
:meth:`margin.ClearingHouse.settle_fill`), so what was handed out stays covered.

A validator's reward (:func:`credit`): ``commission_ppm`` of it (rounded down) is its
operator's commission (``commission_owed``); the rest is its delegators', the operator's
self-bond among them, pro rata to delegation shares: the validator's ``reward_index``
grows by ``rest × REWARD_SCALE ÷ shares`` (rounded down). Slashing takes stake, never
shares, so rewards earned before a slash are kept whole.

**Paid lazily.** No block visits a delegation. A delegation of ``s`` shares whose rewards
were last paid at index ``mark`` is owed ``s × (reward_index − mark) ÷ REWARD_SCALE``
(rounded down); it is paid into the owner's balance (out of the fee pool,
:meth:`margin.ClearingHouse.pay_rewards`), with the operator's commission when the owner
is the operator, whenever its shares change (Delegate, Undelegate: before they change)
and on a **WithdrawRewards** tx. Because each delegation is paid at every change of its
shares, the sum of what is owed never exceeds what was allocated:
``fee_pool ≥ rewards_allocated ≥ Σ owed`` (the property tests check it after every
block); the rounding of the index stays in ``rewards_allocated`` for good.

**Commission.** A validator may lower its commission whenever it likes; it may raise it by
at most ``commission_max_rise_ppm`` at once, and only ``commission_rise_blocks`` after
its previous rise (:func:`commission_problem`), so that a delegator always has time to
leave before the next rise.

Integers only, validators visited in operator-address order. Pure Python: the
distribution is one pass over the validators in the set per block with fees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from appchaind.abci import APPLIED
from appchaind.chain.codes import Code
from appchaind.chain.events import Event, PendingEvent
from appchaind.exchange.staking_state import StakeValidator, Staking
from appchaind.exchange.txs import WithdrawRewards
from config.genesis import PPM, ChainParams
from margin import Account

if TYPE_CHECKING:
    from appchaind.exchange.state import ExchangeState

__all__ = [
    "REWARD_SCALE", "distribute", "credit", "credit_proposer", "owed", "pay", "withdraw",
    "total_owed", "commission_problem",
]  # fmt: skip

#: A reward index counts micro-units per share in units of 1 / REWARD_SCALE: fine enough
#: that a block's fees, spread over every share of a large stake, still move it.
REWARD_SCALE = 10**18


def distribute(state: ExchangeState, events: list[PendingEvent]) -> None:
    """End of block: hand the fee pool's new part to the validators with power, pro rata
    to their stake (rounded down; the remainder waits for the next block)."""
    staking = state.staking
    new = state.clearing.fee_pool - staking.rewards_allocated
    if new <= 0:
        return
    validators = staking.validators
    earning = [
        validators[op]
        for op in sorted(validators)
        if validators[op].power > 0 and not staking.is_jailed(op)
    ]
    total = sum(v.tokens for v in earning)
    if total == 0:
        return
    given = 0
    for validator in earning:
        amount = new * validator.tokens // total
        if amount:
            credit(staking, validator, amount)
            given += amount
    staking.rewards_allocated += given
    if given:
        events.append(Event("rewards_distributed", {"amount": given, "validators": len(earning)}))


def credit(staking: Staking, validator: StakeValidator, amount: int) -> None:
    """Give ``validator`` a reward of ``amount`` micro-units (already in the fee pool and
    counted in ``rewards_allocated`` by the caller): its commission, then its delegators'
    part through the reward index."""
    commission = amount * validator.commission_ppm // PPM
    rest = amount - commission
    if validator.shares:
        validator.reward_index += rest * REWARD_SCALE // validator.shares
    else:
        # No delegation to share it (a validator with power always has its self-bond):
        # the operator's.
        commission = amount
    validator.commission_owed += commission
    staking.dirty_validators[validator.operator] = None


def credit_proposer(state: ExchangeState, proposer: bytes, share: int) -> None:
    """The proposer's ``share`` of a builder's bid (just added to the fee pool) is the
    reward of the validator whose consensus address is ``proposer``; if the staking state
    has none, the share stays in the pool for the next distribution."""
    staking = state.staking
    operator = staking.by_consensus.get(proposer)
    if operator is None or share <= 0 or staking.is_jailed(operator):
        return
    credit(staking, staking.validators[operator], share)
    staking.rewards_allocated += share


def _earned(staking: Staking, validator: StakeValidator, key: bytes, shares: int) -> int:
    """The rewards of the delegation ``key`` (``shares`` of ``validator``) since it was last
    paid (rounded down)."""
    return shares * (validator.reward_index - staking.reward_marks[key]) // REWARD_SCALE


def owed(staking: Staking, validator: StakeValidator, owner: bytes) -> tuple[int, int]:
    """What ``owner`` is owed by ``validator``: (its delegation's rewards, the commission
    if ``owner`` is the operator, else 0)."""
    key = validator.operator + owner
    shares = staking.delegations.get(key, 0)
    rewards = _earned(staking, validator, key, shares) if shares else 0
    commission = validator.commission_owed if owner == validator.operator else 0
    return rewards, commission


def pay(
    state: ExchangeState, validator: StakeValidator, owner: bytes, events: list[PendingEvent]
) -> int:
    """Pay ``owner`` what ``validator`` owes it (its delegation's rewards, and the
    commission if it is the operator) and mark its delegation paid up to the validator's
    index. Returns the micro-units paid."""
    staking = state.staking
    rewards, commission = owed(staking, validator, owner)
    key = validator.operator + owner
    if key in staking.delegations and staking.reward_marks[key] != validator.reward_index:
        staking.reward_marks[key] = validator.reward_index
        staking.dirty_delegations[key] = None
    if commission:
        validator.commission_owed = 0
        staking.dirty_validators[validator.operator] = None
    amount = rewards + commission
    if amount == 0:
        return 0
    staking.rewards_allocated -= amount
    state.clearing.pay_rewards(owner, amount)
    events.append(
        Event(
            "rewards_paid",
            {
                "delegator": owner,
                "validator": validator.operator,
                "rewards": rewards,
                "commission": commission,
            },
        )  # fmt: skip
    )
    return amount


def withdraw(
    state: ExchangeState, account: Account, body: WithdrawRewards, events: list[PendingEvent]
) -> tuple[int, str]:
    """The WithdrawRewards tx: pay the sender what the validator ``body.validator`` owes
    it (its delegation's rewards and, for the operator, the commission)."""
    validator = state.staking.validators.get(body.validator)
    if validator is None:
        return Code.UNKNOWN_VALIDATOR, f"no validator has operator {body.validator.hex()}"
    if sum(owed(state.staking, validator, account.address)) == 0:
        # Refused before anything changes (not even the delegation's mark).
        return (
            Code.NO_REWARDS,
            "the validator owes the sender nothing yet (rewards come from trading fees and "
            "builders' bids, paid at the end of each block)",
        )
    pay(state, validator, account.address, events)
    return APPLIED


def total_owed(staking: Staking) -> int:
    """Everything the validators owe, commissions and every delegation's rewards (a
    check: it is at most ``rewards_allocated``; visits every delegation)."""
    total = sum(v.commission_owed for v in staking.validators.values())
    for key, shares in staking.delegations.items():
        total += _earned(staking, staking.validators[key[:20]], key, shares)
    return total


def commission_problem(
    params: ChainParams, validator: StakeValidator, commission_ppm: int, height: int
) -> tuple[int, str] | None:
    """Why ``validator`` may not set its commission to ``commission_ppm`` at ``height``,
    or None: a rise above ``commission_max_rise_ppm``, or within
    ``commission_rise_blocks`` of its previous rise."""
    rise = commission_ppm - validator.commission_ppm
    if rise <= 0:
        return None
    if params.commission_max_rise_ppm == 0:
        return (
            Code.COMMISSION_CHANGE,
            "this chain allows no commission rise (commission_max_rise_ppm is 0); "
            f"the commission may only fall from {validator.commission_ppm} ppm",
        )
    if rise > params.commission_max_rise_ppm:
        return (
            Code.COMMISSION_CHANGE,
            f"the commission may rise by at most {params.commission_max_rise_ppm} ppm at once "
            f"(from {validator.commission_ppm} to {commission_ppm} is {rise})",
        )
    last = validator.commission_raised_at
    if last and height < last + params.commission_rise_blocks:
        return (
            Code.COMMISSION_CHANGE,
            f"the commission was raised at height {last}; the next rise may come at height "
            f"{last + params.commission_rise_blocks} (this is {height})",
        )
    return None
