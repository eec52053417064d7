"""The block's prices (appchaind.exchange.prices): decided prices given with a block are
clamped to a valid price, from one tick to below MAX_PRICE; each market whose oracle price
moves reports an ``oracle`` event with its price, the previous one, the reported power and
the total power (the votes' power, reporting or not, when the set's power is not given);
and the price band of the block, the oracle price ± ``price_band_ppm``, admits limit
prices at both of its ends and none beyond, around the price of this very block.

Found unguarded by ``make mutate`` (docs/mutation-report.md, app.py's ``_update_oracle``,
``_refresh_bands``): the tests moved decided prices within range and did not read the
oracle events.

Markets of tests/exchange/support.py: BTC at 50000 and ETH at 3000 ticks, band ±10%.
"""

from __future__ import annotations

from appchaind.chain.codes import Code
from appchaind.exchange import ExchangeApp
from appchaind.exchange.oracle import encode_vote
from orderbook import MAX_PRICE
from tests.exchange.support import BUY, SELL, Driver, genesis, limit

BTC, ETH = 0, 1
BALANCES = {"alice": "1000000"}


def _oracle_events(result) -> list[dict[str, int]]:  # type: ignore[no-untyped-def]
    return [e.attributes for e in result.events if e.kind == "oracle"]


def test_decided_prices_are_clamped_to_one_tick_and_below_max_price() -> None:
    """Decided prices 0 and MAX_PRICE become 1 and MAX_PRICE - 1, reported with no votes
    behind them (reported and total power 0). Decided again, the same prices move nothing
    and report nothing."""
    app = ExchangeApp(genesis(BALANCES))
    d = Driver(app)
    result = d.block([], prices=[0, MAX_PRICE])
    assert app.oracle_prices() == [1, MAX_PRICE - 1]
    assert _oracle_events(result) == [
        {"market": BTC, "price": 1, "previous": 50000, "reported_power": 0, "total_power": 0},
        {
            "market": ETH, "price": MAX_PRICE - 1, "previous": 3000, "reported_power": 0,
            "total_power": 0,
        },
    ]  # fmt: skip
    again = d.block([], prices=[1, MAX_PRICE - 1])
    assert _oracle_events(again) == [] and app.oracle_prices() == [1, MAX_PRICE - 1]


def test_without_the_sets_power_the_total_is_the_power_of_all_votes() -> None:
    """Votes of power 2 (50300), 1 (50400) and 1 (no prices), no total given: the total is
    4, the 3 that reported are at least 2/3 of it, and the lower median, 50300, is the
    price; ETH, reported by nobody, stays and reports nothing. Given a set's power of 5,
    the same votes are less than 2/3 and the price stays."""
    votes = [(2, encode_vote({BTC: 50300})), (1, encode_vote({BTC: 50400})), (1, b"")]
    app = ExchangeApp(genesis(BALANCES))
    result = Driver(app).block([], oracle_votes=votes)
    assert app.oracle_prices() == [50300, 3000]
    assert _oracle_events(result) == [
        {"market": BTC, "price": 50300, "previous": 50000, "reported_power": 3, "total_power": 4}
    ]
    app = ExchangeApp(genesis(BALANCES))
    result = Driver(app).block([], oracle_votes=votes, total_power=5)
    assert app.oracle_prices() == [50000, 3000] and _oracle_events(result) == []


def test_a_limit_price_at_either_end_of_the_blocks_band_is_accepted_and_beyond_refused() -> None:
    """The block moves BTC's oracle to 60000: its band is [54000, 66000] in that block. On
    an empty book, a bid at 66000 and (on another chain) an ask at 54000 rest; a bid at
    66001 and an ask at 53999 are refused as outside the band."""
    for side, inside, outside in ((BUY, 66000, 66001), (SELL, 54000, 53999)):
        app = ExchangeApp(genesis(BALANCES))
        d = Driver(app)
        result = d.block(
            [
                d.tx("alice", limit(BTC, side, inside, 1)),
                d.tx("alice", limit(BTC, side, outside, 1)),
            ],
            prices=[60000, 3000],
        )
        codes = [r.code for r in result.tx_results]
        assert codes == [Code.OK, Code.PRICE_OUTSIDE_BAND], (
            side,
            [r.log for r in result.tx_results],
        )
