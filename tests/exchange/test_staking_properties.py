"""Property tests of staking over random flows of CreateValidator, Delegate, Undelegate
and EditValidator among a few accounts (issue 17).

After every block: quote conserved with the staking pool (the clearing house's equation)
and the pool exactly the validators' stake plus what is unbonding; each validator's
shares the sum of its delegations; the consensus set, carried from the genesis by the
blocks' validator updates as the node carries it, is the set the stake chooses and never
empty; and two apps, one of them restarted from its store halfway, agree on the app hash
and the updates at every height.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from appchaind.consensus.validators import ValidatorSet
from appchaind.exchange import ExchangeApp
from appchaind.exchange.staking import chosen_set, key_signature
from appchaind.exchange.txs import CreateValidator, Delegate, EditValidator, Undelegate
from appchaind.store import Store
from tests.exchange.support import CHAIN_ID, Driver, address, genesis, key

PEOPLE = ["alice", "bob", "carol", "dave"]
OPERATORS = [*PEOPLE, "validator"]  # "validator": the genesis validator's operator
QUOTE = 1_000_000

action_st = st.tuples(
    st.sampled_from(["create", "delegate", "undelegate", "undelegate-all", "edit"]),
    st.integers(0, len(PEOPLE) - 1),
    st.integers(0, len(OPERATORS) - 1),
    # Mostly whole quote units (so that stake reaches the minimums), some any micro-units.
    st.one_of(st.integers(1, 40).map(lambda q: q * QUOTE), st.integers(1, 40 * QUOTE)),
)
blocks_st = st.lists(st.lists(action_st, max_size=5), min_size=2, max_size=10)


def _genesis():  # type: ignore[no-untyped-def]
    return genesis(
        {name: "200" for name in PEOPLE} | {"validator": "200"},
        params={
            "stake_unbonding_blocks": 2,
            "power_unit": "2",
            "min_validator_power": 2,
            "min_self_bond": "3",
            "max_validators": 2,
        },
    )


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


def _check(app: ExchangeApp, consensus: ValidatorSet) -> None:
    staking = app.staking
    assert app.clearing.conservation_gap() == 0
    assert app.clearing.staked == sum(v.tokens for v in staking.validators.values()) + sum(
        staking.unbonding.values()
    )
    for operator, validator in staking.validators.items():
        owned = [s for k, s in staking.delegations.items() if k[:20] == operator]
        assert sum(owned) == validator.shares
        assert validator.value_of(validator.shares) <= validator.tokens
    chosen = chosen_set(staking, app.params)
    assert chosen, "the stake chose no validator"
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
        for i, actions in enumerate([[*opening, ("delegate", 2, 0, 5 * QUOTE)], *blocks]):
            if i == len(blocks) // 2 + 1:
                store.close()
                store = Store(Path(tmp) / "data")
                b = ExchangeApp(g, store)
                assert b.app_hash == a.app_hash
            txs = [_tx(a, da, action) for action in actions]
            first = da.block(txs)
            second = Driver(b).block(txs)
            b.commit()
            assert first.app_hash == second.app_hash
            assert first.validator_updates == second.validator_updates
            consensus = consensus.with_updates(first.validator_updates).increment(1)
            _check(a, consensus)
        store.close()
