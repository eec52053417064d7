"""Property tests of staking over random flows of CreateValidator, Delegate, Undelegate,
EditValidator, Unjail and WithdrawRewards among a few accounts, with trades (whose fees
are the stakers' rewards), duplicate-vote evidence and missed signatures in the blocks'
last commits (slashing, tombstoning, jailing; issue 17).

After every block: quote conserved with the staking pool (the clearing house's equation)
and the pool exactly the validators' stake plus what is unbonding; each validator's
shares the sum of its delegations; the consensus set, carried from the genesis by the
blocks' validator updates as the node carries it, is the set the stake chooses and never
empty (or, when jailing left the stake nothing to choose, the set kept as it was); the
insurance fund grown by exactly what was slashed; and two apps, one of them restarted from its store halfway, agree on the app hash
and the updates at every height.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from appchaind.consensus.validators import ValidatorSet
from appchaind.exchange import ExchangeApp, rewards
from appchaind.exchange.staking import chosen_set, key_signature
from appchaind.exchange.txs import (
    CreateValidator,
    Delegate,
    EditValidator,
    Undelegate,
    Unjail,
    WithdrawRewards,
)
from appchaind.store import Store
from tests.exchange.support import (
    BUY,
    CHAIN_ID,
    IOC,
    SELL,
    Driver,
    address,
    genesis,
    key,
    limit,
)

PEOPLE = ["alice", "bob", "carol", "dave"]
OPERATORS = [*PEOPLE, "validator"]  # "validator": the genesis validator's operator
QUOTE = 1_000_000

action_st = st.tuples(
    st.sampled_from(
        [
            "create",
            "delegate",
            "undelegate",
            "undelegate-all",
            "edit",
            "unjail",
            "trade",
            "withdraw",
        ]
    ),
    st.integers(0, len(PEOPLE) - 1),
    st.integers(0, len(OPERATORS) - 1),
    # Mostly whole quote units (so that stake reaches the minimums), some any micro-units.
    st.one_of(st.integers(1, 40).map(lambda q: q * QUOTE), st.integers(1, 40 * QUOTE)),
)
#: Per block: its txs, the validators of the last commit that missed it (bitmask over the
#: commit's slots), and duplicate-vote evidence against operators (OPERATORS index; one
#: past the end: a consensus address nobody has).
block_st = st.tuples(
    st.lists(action_st, max_size=5),
    st.integers(0, 7),
    st.lists(st.integers(0, len(OPERATORS)), max_size=2),
)
blocks_st = st.lists(block_st, min_size=2, max_size=12)


def _genesis():  # type: ignore[no-untyped-def]
    return genesis(
        {name: "200" for name in PEOPLE} | {"validator": "200"},
        params={
            "stake_unbonding_blocks": 2,
            "power_unit": "2",
            "min_validator_power": 2,
            "min_self_bond": "3",
            "max_validators": 2,
            "slash_double_sign_ppm": 300_000,
            "slash_downtime_ppm": 100_000,
            "downtime_window": 4,
            "downtime_max_missed": 1,
            "downtime_jail_blocks": 2,
        },
    )


def _txs(app: ExchangeApp, d: Driver, action: tuple[str, int, int, int]) -> list[Any]:
    kind, who, which, amount = action
    if kind == "trade":
        # A fill of 1 lot (50 quote) between two people: 20,000 micro-units of fees.
        taker = PEOPLE[(who + 1 + which % 3) % len(PEOPLE)]
        return [
            d.tx(PEOPLE[who], limit(0, SELL if amount % 2 else BUY, 50000, 1)),
            d.tx(taker, limit(0, BUY if amount % 2 else SELL, 50000, 1, IOC)),
        ]
    if kind == "withdraw":
        return [d.tx(PEOPLE[who], WithdrawRewards(address(OPERATORS[which])))]
    return [_tx(app, d, action)]


def _tx(app: ExchangeApp, d: Driver, action: tuple[str, int, int, int]) -> Any:
    kind, who, which, amount = action
    sender = PEOPLE[who]
    operator = address(OPERATORS[which])
    if kind == "create":
        consensus = key(f"{sender}-consensus-{which}")
        signature = key_signature(consensus, CHAIN_ID, address(sender))
        body: Any = CreateValidator(consensus.public_key, signature, sender, "", 0, amount)
    elif kind == "delegate":
        body = Delegate(operator, amount)
    elif kind == "edit":
        body = EditValidator(sender, "edited", amount % 1_100_000)
    elif kind == "unjail":
        body = Unjail()
    else:
        validator = app.staking.validators.get(operator)
        held = app.staking.shares_of(operator, address(sender))
        everything = validator.value_of(held) if validator is not None else 0
        if kind == "undelegate" and everything and amount % 4:
            amount = 1 + amount % everything  # mostly within the delegation
        body = Undelegate(operator, everything if kind == "undelegate-all" else amount)
        if kind == "undelegate-all" and sender == "alice" and OPERATORS[which] == "validator":
            sender = "validator"  # the genesis operator leaves too, now and then
            held = app.staking.shares_of(operator, address(sender))
            body = Undelegate(operator, validator.value_of(held) if validator else 0)
    return d.tx(sender, body)


def _check(app: ExchangeApp, consensus: ValidatorSet, before: ValidatorSet, fund: int) -> None:
    """``before``: the consensus set before the block's updates; ``fund``: the insurance
    fund minus everything slashed (nothing else moves it in these flows)."""
    staking = app.staking
    assert app.clearing.conservation_gap() == 0
    assert app.clearing.fee_pool >= staking.rewards_allocated >= rewards.total_owed(staking)
    assert set(staking.reward_marks) == set(staking.delegations)
    assert app.clearing.insurance_fund - staking.slashed_total == fund
    assert staking.slashed_total == sum(i.slashed for i in staking.signing.values())
    assert app.clearing.staked == sum(v.tokens for v in staking.validators.values()) + sum(
        staking.unbonding.values()
    )
    for operator, validator in staking.validators.items():
        owned = [s for k, s in staking.delegations.items() if k[:20] == operator]
        assert sum(owned) == validator.shares
        assert validator.value_of(validator.shares) <= validator.tokens
    for operator, info in staking.signing.items():
        assert info.missed_count == info.missed.bit_count() <= app.params.downtime_max_missed
        assert not (info.missed and info.jailed)
        if info.jailed:
            assert operator not in chosen_set(staking, app.params)
    chosen = chosen_set(staking, app.params)
    if not chosen:
        # Every validator with power jailed: consensus keeps the set it has.
        assert consensus.validators == before.validators
        return
    want = {staking.validators[op].consensus_address: p for op, p in chosen.items()}
    assert {v.address: v.power for v in consensus.validators} == want
    assert {op: staking.validators[op].power for op in chosen} == chosen


@settings(max_examples=40, deadline=None)
@given(blocks_st)
def test_random_staking_flows_conserve_choose_the_set_and_replicate(blocks) -> None:  # type: ignore[no-untyped-def]
    g = _genesis()
    with tempfile.TemporaryDirectory() as tmp:
        a = ExchangeApp(g)
        store = Store(Path(tmp) / "data")
        b = ExchangeApp(g, store)
        da = Driver(a)
        consensus = ValidatorSet.from_genesis(g.validator_set())
        # An opening block: two more validators, one with a delegation.
        opening = [("create", 0, 0, 10 * QUOTE), ("create", 1, 0, 6 * QUOTE)]
        fund = a.clearing.insurance_fund
        first_block = ([*opening, ("delegate", 2, 0, 5 * QUOTE)], 0, [])
        for i, (actions, missing, accused) in enumerate([first_block, *blocks]):
            if i == len(blocks) // 2 + 1:
                store.close()
                store = Store(Path(tmp) / "data")
                b = ExchangeApp(g, store)
                assert b.app_hash == a.app_hash
            txs = [tx for action in actions for tx in _txs(a, da, action)]
            # The last commit is the current set's; the set as the node would have it for
            # the previous height is close enough: what matters is that it replicates.
            signers = [
                (signer, not missing >> slot & 1) for slot, signer in enumerate(consensus.addresses)
            ]
            evidence = [
                (
                    a.staking.validators[address(OPERATORS[who])].consensus_address
                    if who < len(OPERATORS) and address(OPERATORS[who]) in a.staking.validators
                    else key("nobody").address,
                    max(1, a.height - 1),
                )
                for who in accused
            ]
            kw = {"signers": signers if i else None, "evidence": evidence}
            first = da.block(txs, **kw)
            kinds = {e.kind for r in first.tx_results for e in r.events}
            event(f"rewards paid to a delegator: {'rewards_paid' in kinds}")
            event(
                f"fees handed to validators: {any(e.kind == 'rewards_distributed' for e in first.events)}"
            )
            second = Driver(b).block(txs, **kw)
            b.commit()
            assert first.app_hash == second.app_hash
            assert first.validator_updates == second.validator_updates
            before = consensus
            consensus = consensus.with_updates(first.validator_updates).increment(1)
            _check(a, consensus, before, fund)
        store.close()
