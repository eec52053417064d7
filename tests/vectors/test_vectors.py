"""Replays every scenario vector: the pre state, the result codes and the post state must
match what the file says."""

from __future__ import annotations

import pytest

from tests.vectors.runner import load_vectors, replay

VECTORS = load_vectors()


def test_every_required_scenario_has_a_vector():
    names = {v["name"] for v in VECTORS}
    required = {
        "full_fill", "partial_fill", "post_only_reject", "fok_kill", "reduce_only_resize",
        "self_trade", "stop_trigger", "take_profit_trigger", "expiry",
        "liquidation_through_book", "insurance_fund_shortfall", "adl", "funding_tick",
        "withdraw_above_free_collateral", "replayed_nonce",
    }  # fmt: skip
    assert required <= names


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector(vector):
    pre, codes, kinds, app = replay(vector)
    assert pre == vector["pre"]
    assert codes == vector["post"]["results"]
    assert kinds == vector["post"]["events"]
    assert app.state_summary() == vector["post"]["state"]
