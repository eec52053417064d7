"""Moving collateral (appchaind/exchange/transfers.py) and who may have an account
(appchaind/exchange/envelope.py, ``sender_account``):

- a transfer moves ``amount`` micro-units to the recipient (opening its account) and
  reports a ``transfer`` event (sender, recipient, amount); a withdrawal takes ``amount``
  off the chain (``withdraw`` event: sender, amount);
- the faucet mints 1 to ``faucet_max_amount`` micro-units (0 and one more than the maximum
  are refused, INVALID_ORDER), only on a chain whose genesis enables it (else
  FAUCET_DISABLED), and reports a ``faucet`` event (recipient, amount);
- a sender without an account gets UNKNOWN_ACCOUNT, and no account, for every tx but a
  faucet tx on a chain with the faucet enabled, which opens its account.
"""

from __future__ import annotations

from typing import Any

from appchaind.chain import codec
from appchaind.chain.codes import Code
from appchaind.exchange import ExchangeApp, Faucet, Transfer, Withdraw
from tests.exchange.support import SELL, Driver, address, genesis, limit

MAX = 5_000_000  # faucet_max_amount of "5" quote


def _app(faucet_enabled: bool = True) -> tuple[ExchangeApp, Driver]:
    params = {"faucet_enabled": faucet_enabled, "faucet_max_amount": "5"}
    app = ExchangeApp(genesis({"alice": "100", "bob": "100"}, params=params))
    return app, Driver(app)


def _events(result: Any, index: int) -> list[tuple[str, dict[str, Any]]]:
    return [(e.kind, e.attributes) for e in result.tx_results[index].events]


def _balance(app: ExchangeApp, name: str) -> int | None:
    account = app.account(address(name))
    return None if account is None else account.balance


def test_a_transfer_moves_the_amount_opens_the_recipients_account_and_is_reported() -> None:
    app, d = _app()
    result = d.block([
        d.tx("alice", Transfer(address("bob"), 1_500_000)),
        d.tx("alice", Transfer(address("carol"), 2_000_000)),
    ])  # fmt: skip
    assert [r.code for r in result.tx_results] == [Code.OK, Code.OK]
    assert _events(result, 0) == [
        ("transfer", {"sender": address("alice"), "recipient": address("bob"), "amount": 1_500_000})
    ]
    assert _events(result, 1) == [
        (
            "transfer",
            {"sender": address("alice"), "recipient": address("carol"), "amount": 2_000_000},
        )
    ]
    assert (_balance(app, "alice"), _balance(app, "bob"), _balance(app, "carol")) == (
        96_500_000, 101_500_000, 2_000_000,
    )  # fmt: skip


def test_a_withdrawal_leaves_the_chain_and_is_reported() -> None:
    app, d = _app()
    result = d.block([d.tx("alice", Withdraw(2_500_000))])
    assert result.tx_results[0].code == Code.OK
    assert _events(result, 0) == [("withdraw", {"sender": address("alice"), "amount": 2_500_000})]
    assert _balance(app, "alice") == 97_500_000
    assert app.clearing.withdrawn == 2_500_000
    assert app.clearing.conservation_gap() == 0


def test_the_faucet_mints_from_one_micro_unit_to_its_maximum() -> None:
    app, d = _app()
    result = d.block([d.tx("alice", Faucet(amount)) for amount in (0, 1, MAX, MAX + 1)])
    bad = Code.INVALID_ORDER
    assert [r.code for r in result.tx_results] == [bad, Code.OK, Code.OK, bad]
    assert _events(result, 1) == [("faucet", {"recipient": address("alice"), "amount": 1})]
    assert _events(result, 2) == [("faucet", {"recipient": address("alice"), "amount": MAX})]
    assert _events(result, 0) == _events(result, 3) == []
    assert _balance(app, "alice") == 100_000_000 + 1 + MAX
    assert app.clearing.faucet_total == 1 + MAX


def test_a_faucet_tx_opens_the_senders_account_only_on_a_chain_with_the_faucet() -> None:
    for enabled in (True, False):
        app, d = _app(enabled)
        newcomer = d.tx("newcomer", Faucet(MAX))
        assert app.check_tx(codec.encode(newcomer)).code == (
            Code.OK if enabled else Code.UNKNOWN_ACCOUNT
        )
        result = d.block([newcomer, d.tx("alice", Faucet(MAX))])
        if enabled:
            assert [r.code for r in result.tx_results] == [Code.OK, Code.OK]
            assert _balance(app, "newcomer") == MAX
        else:
            codes = [r.code for r in result.tx_results]
            assert codes == [Code.UNKNOWN_ACCOUNT, Code.FAUCET_DISABLED]
            assert _balance(app, "newcomer") is None
            assert _balance(app, "alice") == 100_000_000


def test_only_a_faucet_tx_opens_an_account() -> None:
    """Strangers' orders, transfers and withdrawals, even of nothing, on a chain with the
    faucet: UNKNOWN_ACCOUNT in the mempool and in a block, and no account."""
    app, d = _app()
    bodies = [limit(0, SELL, 50000, 1), Transfer(address("alice"), 0), Withdraw(0)]
    txs = [d.tx("stranger", body) for body in bodies]
    assert [app.check_tx(codec.encode(tx)).code for tx in txs] == [Code.UNKNOWN_ACCOUNT] * 3
    result = d.block(txs)
    assert [r.code for r in result.tx_results] == [Code.UNKNOWN_ACCOUNT] * 3
    assert _balance(app, "stranger") is None
