"""What a validator's precommit extension carries (appchaind/exchange/app.py
``extend_vote``): its price source's prices for the chain's markets *and* the inclusion
list its node made, both in one extension; b"" only when it has neither. An inclusion
list is carried whether or not the validator reports prices.
"""

from __future__ import annotations

from appchaind.chain import codec
from appchaind.chain.types import sign_tx
from appchaind.exchange import ExchangeApp
from appchaind.exchange.oracle import decode_vote, encode_vote
from tests.exchange.support import CHAIN_ID, SELL, genesis, key, limit


class _Source:
    def __init__(self, prices: dict[int, int]) -> None:
        self._prices = prices

    def prices(self) -> dict[int, int]:
        return dict(self._prices)


def test_an_extension_carries_the_prices_and_the_inclusion_list_together() -> None:
    waiting = codec.encode(sign_tx(key("alice"), CHAIN_ID, 1, 3, limit(0, SELL, 50000, 1)))
    app = ExchangeApp(genesis({"alice": "100"}), price_source=_Source({0: 50100}))
    extension = app.extend_vote(1, 0, b"\x01" * 32, [waiting])
    assert extension == encode_vote({0: 50100}, (waiting,))
    assert decode_vote(extension).include == (waiting,)
    silent = ExchangeApp(genesis({"alice": "100"}))
    assert silent.extend_vote(1, 0, b"\x01" * 32, [waiting]) == encode_vote({}, (waiting,))
    assert silent.extend_vote(1, 0, b"\x01" * 32) == b""
