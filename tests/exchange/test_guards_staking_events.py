"""Two staking txs' rules and events.

EditValidator keeping the commission (appchaind/exchange/staking.py ``edit_validator``,
rewards.py ``commission_problem``): only a rise of the commission is limited and starts
the wait for the next rise; an edit that keeps it (a new moniker, say) is always
allowed, even within ``commission_rise_blocks`` of a rise, and does not restart that
wait. Every edit is reported in a ``validator_edited`` event (operator, moniker,
commission).

CreateValidator takes a commission of at most 100% (1,000,000 ppm), that included, and
reports the new validator in a ``validator_created`` event (operator, consensus address,
moniker, commission, self-bond). Unjail, accepted once the jail term is over, is reported in a ``validator_unjailed``
event naming the operator.
"""

from __future__ import annotations

from appchaind.chain.codes import Code
from appchaind.exchange.txs import EditValidator, Unjail
from tests.exchange.support import address, key
from tests.exchange.test_accountability import DOWNTIME, _alice_validator, _signed
from tests.exchange.test_rewards import QUOTE, _app, _create

ALICE = address("alice")


def test_keeping_the_commission_is_no_rise_and_does_not_restart_the_wait() -> None:
    app, d = _app({"commission_max_rise_ppm": 20_000, "commission_rise_blocks": 5})
    assert d.block([_create(d, "alice", 30 * QUOTE, 100_000)]).tx_results[0].code == Code.OK

    def edit(moniker: str, commission: int) -> tuple[int, str, list[object]]:
        (result,) = d.block([d.tx("alice", EditValidator(moniker, "", commission))]).tx_results
        return result.code, result.log, [(e.kind, e.attributes) for e in result.events]

    raised_at = d.height
    assert edit("alice", 110_000)[:2] == (Code.OK, "")
    assert edit("alice-2", 110_000) == (
        Code.OK,
        "",
        [
            (
                "validator_edited",
                {"validator": ALICE, "moniker": "alice-2", "commission_ppm": 110_000},
            )
        ],
    )
    validator = app.staking.validators[ALICE]
    assert (validator.moniker, validator.commission_raised_at) == ("alice-2", raised_at)
    while d.height < raised_at + 5:
        d.block([])
    assert edit("alice-2", 120_000)[:2] == (Code.OK, "")


def test_an_unjail_names_the_validator_in_its_event() -> None:
    app, d = _alice_validator(DOWNTIME)
    for _ in range(3):
        d.block([], signers=_signed(alice=False))
    until = app.staking.signing[ALICE].jailed_until
    while app.height + 1 < until:
        d.block([])
    (result,) = d.block([d.tx("alice", Unjail())]).tx_results
    assert (result.code, [(e.kind, e.attributes) for e in result.events]) == (
        Code.OK,
        [("validator_unjailed", {"validator": ALICE})],
    )


def test_create_validator_takes_a_commission_up_to_100_percent_and_reports_it() -> None:
    app, d = _app()
    (over,) = d.block([_create(d, "alice", 30 * QUOTE, 1_000_001)]).tx_results
    assert over.code == Code.INVALID_VALIDATOR
    (created,) = d.block([_create(d, "alice", 30 * QUOTE, 1_000_000)]).tx_results
    assert (created.code, [(e.kind, e.attributes) for e in created.events]) == (
        Code.OK,
        [
            (
                "validator_created",
                {
                    "validator": ALICE,
                    "consensus_address": key("alice-consensus").address,
                    "moniker": "alice",
                    "commission_ppm": 1_000_000,
                    "amount": 30 * QUOTE,
                },
            )
        ],
    )
