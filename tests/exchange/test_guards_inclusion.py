"""The inclusion list's caps, both ends (appchaind/exchange/inclusion.py
``include_problem``): a validator's list may hold up to ``max_inclusion_txs`` txs of up to
``max_inclusion_bytes`` in all, those limits included, and each listed tx must be a tx
this chain would take, so at most ``max_tx_bytes``: a precommit listing a larger one is
refused (``verify_vote_extension``), as one over either cap is.
"""

from __future__ import annotations

from appchaind.chain import codec
from appchaind.exchange import ExchangeApp
from appchaind.exchange.oracle import encode_vote
from tests.exchange.support import BUY, Driver, genesis, limit, precommit_with


def _orders(count: int) -> list[bytes]:
    d = Driver(ExchangeApp(genesis({"alice": "1000"})))
    return [codec.encode(d.tx("alice", limit(0, BUY, 49000 + i, 5))) for i in range(count)]


def _accepts(params: dict[str, int], include: list[bytes]) -> bool:
    app = ExchangeApp(genesis({"alice": "1000"}, params=params))
    return app.verify_vote_extension(precommit_with(encode_vote({}, tuple(include)), 1))


def test_a_list_of_exactly_the_caps_is_accepted_and_one_past_either_is_refused() -> None:
    orders = _orders(4)
    size = sum(map(len, orders[:3]))
    caps = {"max_inclusion_txs": 3, "max_inclusion_bytes": size}
    assert _accepts(caps, orders[:3])
    assert not _accepts(caps, orders)
    assert not _accepts({**caps, "max_inclusion_bytes": size - 1}, orders[:3])


def test_a_listed_tx_larger_than_max_tx_bytes_is_refused() -> None:
    (order,) = _orders(1)
    assert _accepts({"max_tx_bytes": len(order)}, [order])
    assert not _accepts({"max_tx_bytes": len(order) - 1}, [order])
