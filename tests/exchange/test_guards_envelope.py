"""The tx envelope's window (appchaind/exchange/envelope.py), in a block and in the
mempool: at height h and block time t, a tx applies when
``h <= expiry_height <= h + max_tx_lifetime_blocks`` (EXPIRED otherwise) and
``t - nonce_window_past_ms <= nonce <= t + nonce_window_future_ms`` (NONCE_OUT_OF_WINDOW
otherwise), both ends included. The mempool judges a tx for the next block (h + 1, at the
last block's time).
"""

from __future__ import annotations

from appchaind.chain import codec
from appchaind.chain.codes import Code
from appchaind.chain.types import Tx, sign_tx
from appchaind.exchange import ExchangeApp, Withdraw
from tests.exchange.support import CHAIN_ID, Driver, genesis, key

LIFETIME = 5
PAST_MS = 10_000
FUTURE_MS = 2_000
PARAMS = {
    "max_tx_lifetime_blocks": LIFETIME,
    "nonce_window_past_ms": PAST_MS,
    "nonce_window_future_ms": FUTURE_MS,
}


def _app_at_height_three() -> tuple[ExchangeApp, Driver]:
    app = ExchangeApp(genesis({"alice": "100"}, params=PARAMS))
    d = Driver(app)
    for _ in range(3):
        d.block([])
    return app, d


def _withdrawal(nonce: int, expiry: int) -> Tx:
    return sign_tx(key("alice"), CHAIN_ID, nonce, expiry, Withdraw(1))


def test_a_delivered_tx_expires_outside_its_lifetime_window_both_ends_included() -> None:
    _, d = _app_at_height_three()
    height, t = d.height, d.time_ms  # of the next block: 4
    expiries = (height - 1, height, height + LIFETIME, height + LIFETIME + 1)
    result = d.block([_withdrawal(t + i, expiry) for i, expiry in enumerate(expiries)])
    assert [r.code for r in result.tx_results] == [Code.EXPIRED, Code.OK, Code.OK, Code.EXPIRED]


def test_a_delivered_tx_needs_a_nonce_within_the_blocks_time_window_both_ends_included() -> None:
    _, d = _app_at_height_three()
    height, t = d.height, d.time_ms
    nonces = (t - PAST_MS - 1, t - PAST_MS, t + FUTURE_MS, t + FUTURE_MS + 1)
    result = d.block([_withdrawal(nonce, height) for nonce in nonces])
    out = Code.NONCE_OUT_OF_WINDOW
    assert [r.code for r in result.tx_results] == [out, Code.OK, Code.OK, out]


def test_the_mempool_judges_the_nonce_window_at_the_last_blocks_time() -> None:
    app, d = _app_at_height_three()
    t = app.time_ms
    nonces = (t - PAST_MS - 1, t - PAST_MS, t + FUTURE_MS, t + FUTURE_MS + 1)
    codes = [app.check_tx(codec.encode(_withdrawal(n, d.height))).code for n in nonces]
    out = Code.NONCE_OUT_OF_WINDOW
    assert codes == [out, Code.OK, Code.OK, out]
