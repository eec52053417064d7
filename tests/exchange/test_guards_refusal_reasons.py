"""Every refusal says why (appchaind/abci.py: a TxResult's ``log`` is "what was wrong, for
the trader"; DESIGN.md: check_tx accepts or rejects *with a reason*): a refused tx, in the
mempool or in a block, carries its code and a non-empty text reason. The wording is free;
an empty or missing reason is not. Two refusals only a block can give: a builder bid
anywhere but first (INVALID_BID), and a tx of a kind the exchange does not run (another
application's body, registered in the same process: MALFORMED, naming the kind).
"""

from __future__ import annotations

import dataclasses

from appchaind.abci import TxResult
from appchaind.chain import codec
from appchaind.chain.codes import Code
from appchaind.chain.crypto import merkle_root
from appchaind.exchange import ExchangeApp, Withdraw
from appchaind.exchange.txs import BuilderBid
from appchaind.node.kvapp import KVSet
from tests.exchange.support import Driver, genesis, key

MAX_TX_BYTES = 400


def _app() -> tuple[ExchangeApp, Driver]:
    app = ExchangeApp(genesis({"alice": "100"}, params={"max_tx_bytes": MAX_TX_BYTES}))
    d = Driver(app)
    d.block([])
    return app, d


def _says_why(result: TxResult, code: int) -> None:
    assert result.code == code
    assert isinstance(result.log, str) and result.log.strip(), result.log


def test_the_mempool_says_why_it_refuses_a_tx() -> None:
    app, d = _app()
    used = d.tx("alice", Withdraw(1))
    d.block([used])
    forged = dataclasses.replace(d.tx("alice", Withdraw(1)), signature=bytes(64))
    bid = d.tx("alice", BuilderBid(d.height, 0, key("validator").address, 1, merkle_root([])))
    cases = [
        (b"\x00" * (MAX_TX_BYTES + 1), Code.MALFORMED),
        (b"\x93\x01", Code.MALFORMED),
        (codec.encode(forged), Code.BAD_SIGNATURE),
        (codec.encode(d.tx("stranger", Withdraw(1))), Code.UNKNOWN_ACCOUNT),
        (codec.encode(used), Code.NONCE_REPLAYED),
        (codec.encode(bid), Code.INVALID_BID),
    ]
    for raw, code in cases:
        _says_why(app.check_tx(raw), code)


def test_a_block_says_why_it_refuses_a_tx() -> None:
    app, d = _app()
    used = d.tx("alice", Withdraw(1))
    d.block([used])
    forged = dataclasses.replace(d.tx("alice", Withdraw(1)), signature=bytes(64))
    cases = [
        (b"\x00" * (MAX_TX_BYTES + 1), Code.MALFORMED),
        (b"\x93\x01", Code.MALFORMED),
        (codec.encode(forged), Code.BAD_SIGNATURE),
        (codec.encode(d.tx("stranger", Withdraw(1))), Code.UNKNOWN_ACCOUNT),
        (codec.encode(used), Code.NONCE_REPLAYED),
    ]
    result = app.execute_block(d.height, d.time_ms, [raw for raw, _ in cases])
    for outcome, (_, code) in zip(result.tx_results, cases, strict=True):
        _says_why(outcome, code)


def test_a_block_refuses_a_bid_not_first_and_a_tx_of_a_kind_it_does_not_run() -> None:
    app, d = _app()
    bid = d.tx("alice", BuilderBid(d.height, 0, key("validator").address, 1, merkle_root([])))
    result = d.block([d.tx("alice", Withdraw(1)), bid, d.tx("alice", KVSet(b"k", b"v"))])
    first, late_bid, foreign = result.tx_results
    assert first.code == Code.OK
    _says_why(late_bid, Code.INVALID_BID)
    _says_why(foreign, Code.MALFORMED)
    assert "KVSet" in foreign.log
