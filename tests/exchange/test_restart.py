"""A validator restarted from its store goes on exactly as one that did not stop: what it
derives from the stored state (which accounts have reduce-only orders to keep within their
positions) is rebuilt, a store whose contents do not match the app hash it committed is
refused, and the genesis app hash commits to the genesis state.

Found unguarded by ``make mutate`` (docs/mutation-report.md): the restart tests covered
accounts, nonces and the app hash, not the rules that read derived state.
"""

from __future__ import annotations

from hashlib import blake2s
from pathlib import Path

import msgpack
import pytest

from appchaind.exchange import ExchangeApp, StateError
from appchaind.exchange.commitment import DOMAIN, META_KEY, account_key
from appchaind.exchange.txs import OrderType
from appchaind.store import Store, WriteBatch
from tests.exchange.support import (
    BUY,
    IOC,
    SELL,
    Driver,
    address,
    conditional,
    genesis,
    limit,
)

BTC = 0
RICH = "1000000"
BALANCES = {"alice": RICH, "maker": RICH}


def _orders(events) -> list[tuple[int, str, int]]:  # type: ignore[no-untyped-def]
    return [
        (a["order_id"], a["status"], a["size"])
        for a in (e.attributes for e in events if e.kind == "order")
    ]


def test_a_restarted_validator_still_keeps_reduce_only_orders_within_the_position(
    tmp_path: Path,
) -> None:
    """Alice holds +5 with a reduce-only ask of 5; Bob holds +5 with a reduce-only stop of
    5. The validator restarts; each sells 3: the ask and the stop are resized to 2 at the
    end of the block, as on a validator that did not restart."""
    g = genesis({"alice": RICH, "bob": RICH, "maker": RICH})
    hashes = []
    for restart in (False, True):
        store = Store(tmp_path / f"data-{restart}")
        app = ExchangeApp(g, store)
        d = Driver(app)
        for txs in (
            [
                d.tx("maker", limit(BTC, SELL, 50000, 10)),
                d.tx("alice", limit(BTC, BUY, 50000, 5, IOC)),
                d.tx("bob", limit(BTC, BUY, 50000, 5, IOC)),
            ],
            [
                d.tx("alice", limit(BTC, SELL, 53000, 5, reduce_only=True)),
                d.tx(
                    "bob", conditional(BTC, SELL, OrderType.STOP_MARKET, 45000, 5, reduce_only=True)
                ),
                d.tx("maker", limit(BTC, BUY, 49000, 10, client_id=1)),
            ],
        ):
            d.block(txs)
            app.commit()
        if restart:
            store.close()
            store = Store(tmp_path / f"data-{restart}")
            app = d.app = ExchangeApp(g, store)  # the same driver: the same nonces, txs
        (ask,) = app.books[BTC].order_ids_of(address("alice"))
        (stop,) = app.books[BTC].triggers.order_ids_of(address("bob"))
        result = d.block([
            d.tx("alice", limit(BTC, SELL, 49000, 3, IOC)),
            d.tx("bob", limit(BTC, SELL, 49000, 3, IOC)),
        ])  # fmt: skip
        for name in ("alice", "bob"):
            assert app.account(address(name)).position_size(BTC) == 2  # type: ignore[union-attr]
        assert _orders(result.events) == [(ask, "resized", 2), (stop, "resized", 2)], restart
        hashes.append(result.app_hash)
        store.close()
    assert hashes[0] == hashes[1]


def test_a_store_whose_contents_differ_from_its_committed_app_hash_is_refused(
    tmp_path: Path,
) -> None:
    """One account's balance changed on disk behind the validator's back (a well-formed
    record): the state no longer hashes to what was committed at that height."""
    g = genesis(BALANCES)
    with Store(tmp_path / "data") as store:
        app = ExchangeApp(g, store)
        Driver(app).block([])
        app.commit()
        key = account_key(address("alice"))
        balance, positions, nonces = msgpack.unpackb(store.get(key))
        batch = WriteBatch()
        batch.put(key, msgpack.packb([balance + 1, positions, nonces]))
        store.write(batch)
    with Store(tmp_path / "data") as store, pytest.raises(StateError, match="damaged"):
        ExchangeApp(g, store)


def test_the_genesis_app_hash_commits_to_the_genesis_state() -> None:
    same = ExchangeApp(genesis(BALANCES)).app_hash
    assert isinstance(same, bytes) and len(same) == 32
    assert ExchangeApp(genesis(BALANCES)).app_hash == same
    assert ExchangeApp(genesis({"alice": RICH, "maker": "1000000.000001"})).app_hash != same


def test_the_app_hash_is_blake2s_of_the_sum_of_the_stored_entries_leaf_hashes(
    tmp_path: Path,
) -> None:
    """The definition other implementations rely on (appchaind.exchange.commitment),
    recomputed from what a validator stored: every ``s/`` entry but the meta record
    contributes BLAKE2s-256(len(key) || key || value) as a 256-bit integer; the sum modulo
    2**256, after DOMAIN, hashed again, is the app hash."""
    with Store(tmp_path / "data") as store:
        app = ExchangeApp(genesis(BALANCES), store)
        d = Driver(app)
        d.block([
            d.tx("maker", limit(BTC, SELL, 50000, 5)),
            d.tx("alice", limit(BTC, BUY, 50100, 3)),
            d.tx("alice", conditional(BTC, SELL, OrderType.STOP_MARKET, 45000, 1, client_id=1)),
        ])  # fmt: skip
        app.commit()
        # the documented layout: s/o/ and s/c/ + market id (u32) + order id (u64), big-endian
        (ask,) = app.books[BTC].order_ids_of(address("maker"))
        (stop,) = app.books[BTC].triggers.order_ids_of(address("alice"))
        where = (0).to_bytes(4, "big")
        assert store.get(b"s/o/" + where + ask.to_bytes(8, "big")) is not None
        assert store.get(b"s/c/" + where + stop.to_bytes(8, "big")) is not None
        total = 0
        for suffix, value in store.iterate(b"s/"):
            key = b"s/" + suffix
            if key != META_KEY:
                total += int.from_bytes(blake2s(bytes((len(key),)) + key + value).digest(), "big")
        expected = blake2s(DOMAIN + (total % 2**256).to_bytes(32, "big")).digest()
        assert app.app_hash == expected
