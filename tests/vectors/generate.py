"""Writes the scenario vectors of tests/vectors/*.json.

Each scenario states its rule in ``expect``: hand-derived numbers that are checked before
the vector (pre state, codes, post state) is written. Run from the repository root:
``python -m tests.vectors.generate``.
"""

from __future__ import annotations

import json
from typing import Any

from tests.exchange.support import address
from tests.vectors.runner import VECTOR_DIR, replay

BUY, SELL = 1, 0
GTC, POST_ONLY, IOC, FOK = 0, 1, 2, 3
LIMIT, MARKET, STOP_MARKET, STOP_LIMIT, TP_MARKET, TP_LIMIT = range(6)
Q = 1000  # quantum: micro-units per tick-lot in both markets


def order(signer, side, price, size, *, tif=GTC, otype=LIMIT, trigger=0, reduce_only=False,
          client_id=0, good_til_block=0, market_id=0, nonce=None) -> dict[str, Any]:  # fmt: skip
    tx = {
        "signer": signer,
        "type": "PlaceOrder",
        "fields": {
            "market_id": market_id, "side": side, "order_type": otype, "time_in_force": tif,
            "price": price, "size": size, "trigger_price": trigger, "reduce_only": reduce_only,
            "client_id": client_id, "good_til_block": good_til_block,
        },
    }  # fmt: skip
    if nonce is not None:
        tx["nonce"] = nonce
    return tx


def block(*txs, prices=None) -> dict[str, Any]:
    return {"prices": prices, "txs": list(txs)}


def acct(app, name):
    return app.account(address(name))


def pos(app, name, market_id=0):
    account = acct(app, name)
    return 0 if account is None else account.position_size(market_id)


BIG = {"alice": "1000000", "bob": "1000000", "carol": "1000000"}

SCENARIOS: list[dict[str, Any]] = []


def scenario(name, description, genesis, setup, blocks, expect):
    SCENARIOS.append(
        {"name": name, "description": description, "genesis": genesis, "setup": setup,
         "blocks": blocks, "expect": expect}
    )  # fmt: skip


def _full_fill(app, codes, kinds):
    assert codes == [[0]]
    assert pos(app, "alice") == -10 and pos(app, "bob") == 10
    notional = 10 * 50000 * Q
    assert acct(app, "bob").balance == 1_000_000_000_000 - notional - notional * 500 // 10**6
    assert acct(app, "alice").balance == 1_000_000_000_000 + notional + notional * 100 // 10**6
    assert app.state_summary()["markets"][0]["orders"] == []


scenario(
    "full_fill",
    "A resting sell of 10 lots is filled entirely by a buy of 10: maker "
    "gets the 100 ppm rebate, taker pays 500 ppm.",
    {"balances": BIG},
    [block(order("alice", SELL, 50000, 10))],
    [block(order("bob", BUY, 50000, 10))],
    _full_fill,
)


def _partial_fill(app, codes, kinds):
    assert codes == [[0]]
    assert pos(app, "bob") == 4
    assert app.state_summary()["markets"][0]["orders"] == [
        [1, address("alice").hex(), SELL, 50000, 6]
    ]


scenario(
    "partial_fill",
    "A buy of 4 lots partially fills a resting sell of 10; 6 lots keep "
    "resting with their time priority.",
    {"balances": BIG},
    [block(order("alice", SELL, 50000, 10))],
    [block(order("bob", BUY, 50000, 4))],
    _partial_fill,
)


def _post_only(app, codes, kinds):
    assert codes == [[22]]
    assert pos(app, "bob") == 0


scenario(
    "post_only_reject",
    "A post-only buy at the best ask would take liquidity: rejected "
    "whole (code 22), nothing fills.",
    {"balances": BIG},
    [block(order("alice", SELL, 50000, 10))],
    [block(order("bob", BUY, 50000, 3, tif=POST_ONLY))],
    _post_only,
)


def _fok(app, codes, kinds):
    assert codes == [[23]]
    assert pos(app, "bob") == 0
    assert app.state_summary()["markets"][0]["orders"][0][4] == 5


scenario(
    "fok_kill",
    "A fill-or-kill buy of 10 against 5 lots of asks cannot fill completely: "
    "killed (code 23), the book is untouched.",
    {"balances": BIG},
    [block(order("alice", SELL, 50000, 5))],
    [block(order("bob", BUY, 50100, 10, tif=FOK))],
    _fok,
)


def _reduce_only(app, codes, kinds):
    assert codes == [[0]]
    assert pos(app, "bob") == 4
    orders = app.state_summary()["markets"][0]["orders"]
    reduce_order = [o for o in orders if o[1] == address("bob").hex()]
    assert reduce_order and reduce_order[0][4] == 4, orders


scenario(
    "reduce_only_resize",
    "Bob is long 10 with a resting reduce-only sell of 10 at 51000; "
    "he sells 6 to Carol's bid, so the reduce-only order shrinks to his position of 4.",
    {"balances": BIG},
    [
        block(order("alice", SELL, 50000, 10)),
        block(order("bob", BUY, 50000, 10)),
        block(
            order("bob", SELL, 51000, 10, reduce_only=True, client_id=1),
            order("carol", BUY, 49900, 6, client_id=2),
        ),
    ],
    [block(order("bob", SELL, 49900, 6, tif=IOC))],
    _reduce_only,
)


def _self_trade(app, codes, kinds):
    assert codes == [[0]]
    orders = app.state_summary()["markets"][0]["orders"]
    assert orders == [[2, address("alice").hex(), BUY, 50000, 5]], orders
    assert pos(app, "alice") == 0


scenario(
    "self_trade",
    "Alice's buy reaches her own resting sell: self-trade prevention expires "
    "the resting maker, no fill, and the buy rests.",
    {"balances": BIG},
    [block(order("alice", SELL, 50000, 10, client_id=1))],
    [block(order("alice", BUY, 50000, 5, client_id=2))],
    _self_trade,
)


def _stop(app, codes, kinds):
    assert codes == [[]]
    assert pos(app, "bob") == 0 and pos(app, "carol") == 10
    assert "order" in kinds and "fill" in kinds


scenario(
    "stop_trigger",
    "Bob (long 10) holds a stop-market sell triggered at 49000; the oracle "
    "falls to 48900 and the stop fires at the end of the block, selling into Carol's bid.",
    {"balances": BIG},
    [
        block(order("alice", SELL, 50000, 10)),
        block(order("bob", BUY, 50000, 10)),
        block(
            order("bob", SELL, 0, 10, otype=STOP_MARKET, trigger=49000, tif=IOC),
            order("carol", BUY, 48800, 10),
        ),
    ],
    [block(prices=[48900, 3000])],
    _stop,
)


def _take_profit(app, codes, kinds):
    assert codes == [[]]
    assert pos(app, "bob") == 0 and pos(app, "carol") == 10


scenario(
    "take_profit_trigger",
    "Bob (long 10) holds a take-profit-limit sell at 51000 "
    "triggered at 51000; the oracle rises to 51000 and the order fills against Carol's bid.",
    {"balances": BIG},
    [
        block(order("alice", SELL, 50000, 10)),
        block(order("bob", BUY, 50000, 10)),
        block(
            order("bob", SELL, 51000, 10, otype=TP_LIMIT, trigger=51000, client_id=7),
            order("carol", BUY, 51000, 10, client_id=8),
        ),
    ],
    [block(prices=[51000, 3000])],
    _take_profit,
)


def _expiry(app, codes, kinds):
    assert app.state_summary()["markets"][0]["orders"] == []
    assert "order" in kinds


scenario(
    "expiry",
    "A GTC sell good through block 2 is removed at the end of block 2.",
    {"balances": BIG},
    [block(order("alice", SELL, 50500, 10, good_til_block=2))],
    [block()],
    _expiry,
)

# Bob buys 100 lots at 50000 (notional 100 × 50000 × 1000 micro = 5000 quote) with 600
# quote, paying 2.5 taker fee: 8.4x. At 46000 his net collateral is 597.5 - 400 = 197.5 quote,
# below the 5% maintenance of 230; his bankruptcy price is 46000 - 197.5e6 / (100 × 1000)
# = 44025 ticks.
LEVERAGED = {"alice": "1000000", "bob": "600", "carol": "1000000"}


def _liq_book(app, codes, kinds):
    assert pos(app, "bob") == 0
    assert pos(app, "carol") == 100
    assert "liquidation" in kinds and "liquidation_fee" in kinds and "adl" not in kinds
    # Fee: 1% of 4600 quote = 46 quote, within the surplus over bankruptcy (197.5 quote).
    assert app.clearing.insurance_fund == 100_000 * 10**6 + 46 * 10**6
    # The setup trade's net fee (500 - 100 ppm of 5000 quote); the liquidation adds none.
    assert app.clearing.fee_pool == 2_000_000
    assert acct(app, "bob").balance == 197_500_000 - 46 * 10**6


scenario(
    "liquidation_through_book",
    "Bob is long 100 lots with 600 quote; the oracle falls to "
    "46000 (below maintenance); his position is sold into Carol's bid at 46000, above the "
    "bankruptcy price, and the liquidation fee goes to the insurance fund. The liquidation's "
    "fill pays no taker fee and Carol, its maker, no rebate: the fee pool keeps the setup "
    "trade's 2 quote.",
    {"balances": LEVERAGED},
    [
        block(order("alice", SELL, 50000, 100)),
        block(order("bob", BUY, 50000, 100)),
        block(order("carol", BUY, 46000, 100)),
    ],
    [block(prices=[46000, 3000])],
    _liq_book,
)


def _shortfall(app, codes, kinds):
    assert codes == [[0]]
    assert pos(app, "bob") == 0 and pos(app, "carol") == 100
    assert "insurance_cover" in kinds and "adl" not in kinds
    # The fund pays (44025 - 43000) × 100 × 1000 micro = 102.5 quote; Bob ends at zero.
    assert app.clearing.insurance_fund == 100_000 * 10**6 - 102_500_000
    assert acct(app, "bob").balance == 0


scenario(
    "insurance_fund_shortfall",
    "The oracle gaps from 50000 to 43500, past Bob's bankruptcy "
    "price of 44025; the only bid is Carol's at 43000, so the book close is worse than bankruptcy and "
    "the insurance fund pays the shortfall.",
    {"balances": LEVERAGED},
    [block(order("alice", SELL, 50000, 100)), block(order("bob", BUY, 50000, 100))],
    [block(order("carol", BUY, 43000, 100), prices=[43500, 3000])],
    _shortfall,
)


def _adl(app, codes, kinds):
    assert pos(app, "bob") == 0
    assert pos(app, "alice") == 0, "the short counterparty is deleveraged"
    assert "adl" in kinds
    # Closed at the bankruptcy price 44025: Bob ends at exactly zero, Alice gains 5975 ticks/lot.
    assert acct(app, "bob").balance == 0
    alice = 1_000_000 * 10**6 + 100 * 50000 * Q + 100 * 50000 * Q * 100 // 10**6
    assert acct(app, "alice").balance == alice - 100 * 44025 * Q


scenario(
    "adl",
    "The insurance fund is empty and nobody bids: Bob's liquidated long is closed "
    "against Alice, the most profitable short, at Bob's bankruptcy price.",
    {"balances": LEVERAGED, "insurance_fund": "0"},
    [block(order("alice", SELL, 50000, 100)), block(order("bob", BUY, 50000, 100))],
    [block(prices=[43500, 3000])],
    _adl,
)


def _funding(app, codes, kinds):
    market = app.markets[0]
    assert market.funding_index != 0 and market.last_funding_rate_ppm > 0
    assert "funding" in kinds
    assert app.clearing.conservation_gap() == 0


scenario(
    "funding_tick",
    "Bids and asks sit above the oracle (premium); at the funding "
    "interval (every 4 blocks here) the clamped rate moves the index; longs pay.",
    {"balances": BIG, "markets": {"0": {"funding_interval_blocks": 4}}},
    [
        block(
            order("alice", SELL, 50300, 20, client_id=1),
            order("carol", BUY, 50200, 20, client_id=2),
        ),
        block(order("bob", BUY, 50300, 5)),
    ],
    [block(), block(order("bob", SELL, 50200, 1))],
    _funding,
)


def _withdraw(app, codes, kinds):
    assert codes == [[28, 0]]
    assert app.clearing.withdrawn == 1000 * 10**6


scenario(
    "withdraw_above_free_collateral",
    "Bob (600 quote, long 100 lots needing 500 initial "
    "margin) cannot withdraw 500 (code 28); a smaller withdrawal of 1000 from Carol works.",
    {"balances": LEVERAGED},
    [block(order("alice", SELL, 50000, 100)), block(order("bob", BUY, 50000, 100))],
    [
        block(
            {"signer": "bob", "type": "Withdraw", "fields": {"amount": 500 * 10**6}},
            {"signer": "carol", "type": "Withdraw", "fields": {"amount": 1000 * 10**6}},
        )
    ],
    _withdraw,
)


def _replay(app, codes, kinds):
    assert codes == [[0, 6], [6]]
    assert pos(app, "bob") == 2


_NONCE = 1767225600000 + 1500
scenario(
    "replayed_nonce",
    "The same signed buy included twice in a block and again in the next: "
    "only the first applies (code 6 for the replays).",
    {"balances": BIG},
    [block(order("alice", SELL, 50000, 10))],
    [
        block(
            order("bob", BUY, 50000, 2, tif=IOC, nonce=_NONCE),
            order("bob", BUY, 50000, 2, tif=IOC, nonce=_NONCE),
        ),
        block(order("bob", BUY, 50000, 2, tif=IOC, nonce=_NONCE)),
    ],
    _replay,
)


def main() -> None:
    for old in VECTOR_DIR.glob("*.json"):
        old.unlink()
    for spec in SCENARIOS:
        vector = {k: spec[k] for k in ("name", "description", "genesis", "setup", "blocks")}
        pre, codes, kinds, app = replay(vector)
        spec["expect"](app, codes, kinds)
        vector["pre"] = pre
        vector["post"] = {"results": codes, "events": kinds, "state": app.state_summary()}
        (VECTOR_DIR / f"{spec['name']}.json").write_text(json.dumps(vector, indent=1) + "\n")
        print("wrote", spec["name"])


if __name__ == "__main__":
    main()
