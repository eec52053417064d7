"""A duplicate vote's slash and tombstone (appchaind/exchange/accountability.py
``slash``, ``punish_duplicate_votes``): every unbonding entry still bonded at the
infraction loses its part (each rounded up), and the slash's ``from_unbonding`` and
``amount`` add them all up; the tombstoned validator's record has no jail term (it is
out for good, not until a height), and the ``validator_tombstoned`` event names the
operator, the consensus address and the infraction's height.
"""

from __future__ import annotations

from typing import Any

from appchaind.exchange.txs import Undelegate
from tests.exchange.support import address
from tests.exchange.test_accountability import ALICE, _alice_validator
from tests.exchange.test_staking import UNIT


def _events(result: Any, kind: str) -> list[dict[str, Any]]:
    return [e.attributes for e in result.events if e.kind == kind]


def test_a_slash_takes_its_part_of_every_unbonding_entry_and_tombstones_for_good() -> None:
    app, d = _alice_validator({"slash_double_sign_ppm": 100_000})
    infraction = d.height
    d.block([d.tx("bob", Undelegate(address("alice"), 2 * UNIT))])
    d.block([d.tx("bob", Undelegate(address("alice"), 4 * UNIT))])
    fund = app.clearing.insurance_fund
    result = d.block([], evidence=[(ALICE, infraction)])
    from_unbonding = 2 * UNIT // 10 + 4 * UNIT // 10
    bonded = 24 * UNIT // 10
    (slashed,) = _events(result, "validator_slashed")
    assert (slashed["from_unbonding"], slashed["amount"]) == (
        from_unbonding,
        bonded + from_unbonding,
    )
    assert app.clearing.insurance_fund == fund + bonded + from_unbonding
    assert _events(result, "validator_tombstoned") == [
        {"validator": address("alice"), "consensus_address": ALICE, "infraction_height": infraction}
    ]
    info = app.staking.signing[address("alice")]
    assert (info.tombstoned, info.jailed_until, info.slashed) == (
        True,
        0,
        bonded + from_unbonding,
    )
