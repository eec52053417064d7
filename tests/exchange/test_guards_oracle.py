"""Where a validator's oracle prices come from, and what a vote of no power counts for
(appchaind.exchange.oracle).

- The operator's price file (:class:`FilePriceSource`): decimal prices per symbol, rounded
  half-even to the nearest tick; an entry that is not a known symbol with a decimal string
  of a valid price (one tick to below MAX_PRICE) is skipped, the others still count; a
  file that cannot be read, or is not a JSON object, reports nothing.
- The simulated feed of a local network (:class:`SimulatedFeed`): a walk over wall-clock
  seconds from the genesis prices that every validator with the same seed computes alike,
  each second moving each market by a hashed step within ±``step_ppm`` (never below one
  tick); each validator adds its own hashed noise within ±``noise_ppm``. The reference
  below is the walk's definition, written out slowly: validators of one network must
  agree on it, so it may not drift between versions.
- A vote of no power reports nothing, whatever its extension says.

Found unguarded by ``make mutate`` (docs/mutation-report.md): the sources were tested only
through the node's config (a fresh and a stale file, a walk with a step of 0).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from appchaind.exchange.oracle import (
    FilePriceSource,
    SimulatedFeed,
    aggregate,
    encode_vote,
)
from config.genesis import PPM, MarketParams
from orderbook import MAX_PRICE
from tests.exchange.support import GENESIS_MS, genesis, market

SEED = b"network seed"
START_S = GENESIS_MS // 1000


def _markets(*prices: str) -> list[MarketParams]:
    """Markets with tick 1 (BTC, ETH, SOL... at ``prices``)."""
    symbols = ("BTC-PERP", "ETH-PERP", "SOL-PERP")
    return list(
        genesis({}, markets=[market(s, p) for s, p in zip(symbols, prices, strict=False)]).markets
    )


# ------------------------------------------------------------------ the operator's file


def _file_prices(tmp_path: Path, doc: object, markets: list[MarketParams]) -> dict[int, int]:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(doc))
    return FilePriceSource(path, markets).prices()


def test_a_file_price_is_rounded_half_even_to_the_nearest_tick(tmp_path: Path) -> None:
    """Tick 0.5 for BTC: 65000.25 is 130000.5 ticks, so 130000; 65000.75 is 130001.5, so
    130002; 3000.6 at tick 1 is 3001."""
    markets = (
        list(genesis({}, markets=[market("BTC-PERP", "50000", tick_size="0.5")]).markets)
        + _markets("50000", "3000")[1:]
    )
    assert _file_prices(tmp_path, {"BTC-PERP": "65000.25", "ETH-PERP": "3000.6"}, markets) == {
        0: 130000, 1: 3001,
    }  # fmt: skip
    assert _file_prices(tmp_path, {"BTC-PERP": "65000.75"}, markets) == {0: 130002}


def test_a_file_entry_that_is_not_a_valid_price_of_a_known_market_is_skipped(
    tmp_path: Path,
) -> None:
    """Each bad entry comes before a good one, which still counts: an unknown symbol, a
    number instead of a decimal string, text that is no decimal, a price that rounds to
    0 ticks, a negative price, MAX_PRICE ticks. MAX_PRICE - 1 ticks and one tick are
    prices."""
    markets = _markets("50000", "3000", "100")
    cases = [
        ({"DOGE-PERP": "1", "BTC-PERP": "65000"}, {0: 65000}),
        ({"BTC-PERP": 65000, "ETH-PERP": "3100"}, {1: 3100}),
        ({"BTC-PERP": "65k", "ETH-PERP": "3100"}, {1: 3100}),
        ({"BTC-PERP": "0.4", "ETH-PERP": "3100"}, {1: 3100}),
        ({"BTC-PERP": "-5", "ETH-PERP": "3100"}, {1: 3100}),
        ({"BTC-PERP": str(MAX_PRICE), "ETH-PERP": "3100"}, {1: 3100}),
        ({"BTC-PERP": str(MAX_PRICE - 1), "SOL-PERP": "1"}, {0: MAX_PRICE - 1, 2: 1}),
    ]
    for doc, expected in cases:
        assert _file_prices(tmp_path, doc, markets) == expected, doc


def test_an_unreadable_file_or_one_that_is_not_an_object_reports_nothing(tmp_path: Path) -> None:
    markets = _markets("50000", "3000")
    assert FilePriceSource(tmp_path / "missing.json", markets).prices() == {}
    (tmp_path / "bad.json").write_text("{not json")
    assert FilePriceSource(tmp_path / "bad.json", markets).prices() == {}
    assert _file_prices(tmp_path, [["BTC-PERP", "65000"]], markets) == {}


# ------------------------------------------------------------------ the simulated feed


def _hashed(seed: bytes, spread: int) -> int:
    """The definition: the first 8 bytes of SHA-256(seed), big-endian, reduced to an
    integer in [-spread, spread]."""
    value = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big")
    return value % (2 * spread + 1) - spread


def _walk(markets: list[MarketParams], second: int, step_ppm: int) -> list[int]:
    """The shared walk at Unix ``second``: from the genesis prices at the genesis second,
    each later second s moves market m by the step hashed from seed || m (u32) || s (u64),
    rounded down, never below one tick."""
    walk = [m.initial_oracle_price for m in markets]
    for s in range(START_S + 1, second + 1):
        for i, m in enumerate(markets):
            step = _hashed(SEED + m.market_id.to_bytes(4, "big") + s.to_bytes(8, "big"), step_ppm)
            walk[i] = max(1, walk[i] * (PPM + step) // PPM)
    return walk


def _price(walk: int, validator: bytes, market_id: int, now_ms: int, noise_ppm: int) -> int:
    """A validator's price: the walk with its noise hashed from its seed || market (u32) ||
    the millisecond (u64), rounded down, never below one tick."""
    seed = validator + market_id.to_bytes(4, "big") + now_ms.to_bytes(8, "big")
    return max(1, walk * (PPM + _hashed(seed, noise_ppm)) // PPM)


class _Clock:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return self.seconds


def _feed(
    markets: list[MarketParams], validator: bytes, clock: _Clock, **ppm: int
) -> SimulatedFeed:
    return SimulatedFeed(
        markets, seed=SEED, validator_seed=validator, start_ms=GENESIS_MS, clock=clock, **ppm
    )


def test_the_simulated_walk_is_the_hashed_walk_every_validator_computes_alike() -> None:
    """Two validators' feeds, read at different seconds and back in time, give the
    reference walk at every second; each second moves each price by at most step_ppm."""
    markets = _markets("50000", "3000", "3000")
    clock = _Clock(START_S)
    a, b = (
        _feed(markets, b"a", clock, step_ppm=20_000),
        _feed(markets, b"b", clock, step_ppm=20_000),
    )
    assert a.walk_at(START_S) == _walk(markets, START_S, 20_000) == [50000, 3000, 3000]
    for second in (START_S + 5, START_S + 2, START_S + 7, START_S + 7, START_S):
        expected = _walk(markets, second, 20_000)
        assert a.walk_at(second) == expected, second
    for second in (START_S + 7, START_S + 3):
        assert b.walk_at(second) == _walk(markets, second, 20_000), second
    walk = [_walk(markets, START_S + s, 20_000) for s in range(8)]
    for before, after in zip(walk, walk[1:], strict=False):
        for p, q in zip(before, after, strict=True):
            assert abs(q - p) * PPM <= p * 20_000 + PPM
    assert any(w[1] != w[2] for w in walk)  # markets of the same price walk apart


def test_the_simulated_walk_uses_the_default_steps_and_never_goes_below_one_tick() -> None:
    """Without steps given: ±500 ppm a second, ±50 ppm of noise. A market at one tick with
    a step of the whole price stays at one tick or above, and so do the validator's prices
    whatever their noise."""
    markets = _markets("50000", "3000")
    clock = _Clock(START_S + 4.25)
    feed = _feed(markets, b"a", clock)
    walk = _walk(markets, START_S + 4, 500)
    assert feed.walk_at(START_S + 4) == walk
    now_ms = (START_S + 4) * 1000 + 250
    assert feed.prices() == {i: _price(walk[i], b"a", i, now_ms, 50) for i in (0, 1)}
    tiny = _markets("1", "2")
    walk = _feed(tiny, b"a", clock, step_ppm=PPM).walk_at(START_S + 30)
    assert walk == _walk(tiny, START_S + 30, PPM) and min(walk) >= 1
    ones = _markets("1", "1")
    assert _feed(ones, b"a", clock, step_ppm=0, noise_ppm=PPM // 2).prices() == {0: 1, 1: 1}


def test_each_validator_adds_its_own_noise_to_the_walk_at_the_clocks_second() -> None:
    """At 3.7 s after genesis the walk is the one of second 3; each validator's price is
    the walk with its own noise for that millisecond (within ±noise_ppm). A clock before
    genesis reads the genesis walk."""
    markets = _markets("50000", "3000")
    clock = _Clock(START_S + 3.7)
    now_ms = int((START_S + 3.7) * 1000)
    walk = _walk(markets, START_S + 3, 1_000)
    prices = {}
    for validator in (b"a", b"b"):
        feed = _feed(markets, validator, clock, step_ppm=1_000, noise_ppm=5_000)
        prices[validator] = feed.prices()
        assert prices[validator] == {
            i: _price(walk[i], validator, i, now_ms, 5_000) for i in (0, 1)
        }
        for i in (0, 1):
            assert abs(prices[validator][i] - walk[i]) * PPM <= walk[i] * 5_000 + PPM
    assert prices[b"a"] != prices[b"b"]
    early = _Clock(START_S - 100.5)
    feed = _feed(markets, b"a", early, step_ppm=1_000, noise_ppm=0)
    assert feed.prices() == {0: 50000, 1: 3000}


# ------------------------------------------------------------------ aggregation


def test_a_vote_of_no_power_reports_nothing() -> None:
    """A vote of power 0 (the only one, so the total is 0 too) does not move the price."""
    votes = [(0, encode_vote({0: 50300}))]
    assert aggregate(votes, 0, [50000], [100_000]) == [(50000, 50000, 0)]
