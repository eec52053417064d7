"""A validator restarted from its store goes on exactly as one that did not stop
(appchaind.exchange.storage): a resting order keeps its time priority, also one that
rested when its conditional order fired (its priority is then its rest sequence, not its
id, forgotten when it leaves the book); orders and conditional orders that are gone are
gone from the store; and a store is refused unless it is exactly what was committed: the
height and the app hash of its meta record, and records of the types that were written.

Found unguarded by ``make mutate`` (docs/mutation-report.md, app.py's ``_load`` and
``_update_commitment``): the restart tests restored ordinary orders, whose rest priority is
their id, and did not look for entries that should have been deleted.

Markets of tests/exchange/support.py: BTC at 50000 ticks, band ±10%.
"""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from appchaind.exchange import CancelOrder, ExchangeApp, StateError
from appchaind.exchange.commitment import (
    GLOBAL_KEY,
    META_KEY,
    StateCommitment,
    account_key,
    builder_key,
)
from appchaind.exchange.txs import OrderType, RegisterBuilder
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
BALANCES = {"alice": RICH, "bob": RICH, "maker": RICH}


def _run(tmp_path: Path, restart: bool, blocks, last):  # type: ignore[no-untyped-def]
    """Feed ``blocks`` (each a function of the driver giving (txs, prices)), committing
    each; restart from the store if told; then the block ``last``. Returns the app, the
    last block's result and the store (open)."""
    g = genesis(BALANCES)
    store = Store(tmp_path / f"data-{restart}")
    app = ExchangeApp(g, store)
    d = Driver(app)
    for block in blocks:
        txs, prices = block(d)
        d.block(txs, prices)
        app.commit()
    if restart:
        store.close()
        store = Store(tmp_path / f"data-{restart}")
        app = d.app = ExchangeApp(g, store)
    result = d.block(last(d))
    return app, result, store


def test_an_order_that_rested_from_a_trigger_keeps_its_time_priority_across_a_restart(
    tmp_path: Path,
) -> None:
    """Alice's stop-limit bid (50000, 2 lots, trigger 51000) is placed a block before
    Bob's bid of 2 lots at 50000; in Bob's block the oracle reaches 51000 and her stop
    fires: it rests behind Bob's. After a restart (or not), the maker sells 3 lots at
    50000: Bob's 2 fill first, then 1 of Alice's; her fired stop is no longer a conditional
    order; both validators end with the same app hash."""
    blocks = [
        lambda d: (
            [d.tx("alice", conditional(BTC, BUY, OrderType.STOP_LIMIT, 51000, 2, 50000))],
            None,
        ),
        lambda d: ([d.tx("bob", limit(BTC, BUY, 50000, 2))], [51000, 3000]),
    ]
    hashes = []
    for restart in (False, True):
        app, result, store = _run(
            tmp_path, restart, blocks, lambda d: [d.tx("maker", limit(BTC, SELL, 50000, 3, IOC))]
        )
        with store:
            assert result.tx_results[0].code == 0, result.tx_results[0].log
            held = {n: app.account(address(n)).position_size(BTC) for n in ("alice", "bob")}  # type: ignore[union-attr]
            assert held == {"alice": 1, "bob": 2}, restart
            assert app.books[BTC].triggers.order_ids_of(address("alice")) == []
            hashes.append(result.app_hash)
    assert hashes[0] == hashes[1]


def test_cancelled_orders_and_conditional_orders_are_gone_after_a_restart(
    tmp_path: Path,
) -> None:
    """Alice rests a bid and places a stop; Bob rests a bid and places a stop. Alice cancels
    both of hers. A restarted validator's book holds Bob's bid and stop only, and it goes
    on with the same app hash."""
    blocks = [
        lambda d: (
            [
                d.tx("alice", limit(BTC, BUY, 49000, 1, client_id=1)),
                d.tx("alice", conditional(BTC, SELL, OrderType.STOP_MARKET, 45000, 1, client_id=2)),
                d.tx("bob", limit(BTC, BUY, 49000, 1)),
                d.tx("bob", conditional(BTC, SELL, OrderType.STOP_MARKET, 45000, 1, client_id=1)),
            ],
            None,
        ),
        lambda d: (
            [
                d.tx("alice", CancelOrder(BTC, 0, 1, True)),
                d.tx("alice", CancelOrder(BTC, 0, 2, True)),
            ],
            None,
        ),
    ]
    hashes = []
    for restart in (False, True):
        app, result, store = _run(tmp_path, restart, blocks, lambda d: [])
        with store:
            book = app.books[BTC]
            assert book.order_ids_of(address("alice")) == [], restart
            assert book.triggers.order_ids_of(address("alice")) == [], restart
            assert len(book.order_ids_of(address("bob"))) == 1
            assert len(book.triggers.order_ids_of(address("bob"))) == 1
            hashes.append(result.app_hash)
    assert hashes[0] == hashes[1]


def _rewrite(store: Store, key: bytes, value: bytes) -> None:
    """Replace one entry and write a meta record that matches the store's new contents (the
    height stays): only what the entry holds can make the store unusable."""
    (height, _) = msgpack.unpackb(store.get(META_KEY))
    entries = [(b"s/" + k, v) for k, v in store.iterate(b"s/") if b"s/" + k != META_KEY]
    entries = [(k, value if k == key else v) for k, v in entries]
    batch = WriteBatch()
    batch.put(key, value)
    batch.put(META_KEY, msgpack.packb([height, StateCommitment(entries).app_hash()]))
    store.write(batch)


def _committed_store(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    with Store(path) as store:
        app = ExchangeApp(genesis(BALANCES), store)
        Driver(app).block([])
        app.commit()
    return path


def test_a_store_whose_meta_record_names_another_height_is_refused(tmp_path: Path) -> None:
    """The meta record says height 2 with the right app hash; the state is of height 1."""
    path = _committed_store(tmp_path)
    with Store(path) as store:
        (_, app_hash) = msgpack.unpackb(store.get(META_KEY))
        batch = WriteBatch()
        batch.put(META_KEY, msgpack.packb([2, app_hash]))
        store.write(batch)
    with Store(path) as store, pytest.raises(StateError, match="damaged"):
        ExchangeApp(genesis(BALANCES), store)


def test_a_stored_account_whose_nonces_are_text_is_refused_as_unreadable(tmp_path: Path) -> None:
    """An account's recent nonces are stored as bytes; the same bytes stored as a msgpack
    string (another version's, or a damaged, record) are refused even though the meta
    record's app hash matches them."""
    path = _committed_store(tmp_path)
    key = account_key(address("alice"))
    with Store(path) as store:
        balance, positions, nonces = msgpack.unpackb(store.get(key))
        text = msgpack.packb([balance, positions, nonces.decode("latin-1")], use_bin_type=False)
        _rewrite(store, key, text)
    with Store(path) as store, pytest.raises(StateError, match="unreadable"):
        ExchangeApp(genesis(BALANCES), store)


def test_a_stored_record_that_is_a_map_of_integer_keys_is_refused(tmp_path: Path) -> None:
    """The global record is an array; a map with integer keys in its place (whose keys
    would unpack like the array's values) is refused, even though the meta record's app
    hash matches it."""
    path = _committed_store(tmp_path)
    with Store(path) as store:
        fields = msgpack.unpackb(store.get(GLOBAL_KEY))
        as_map = msgpack.packb({value: 0 for value in fields[:1]} | {100 + i: 0 for i in range(7)})
        _rewrite(store, GLOBAL_KEY, as_map)
    with Store(path) as store, pytest.raises(StateError, match="b's/g' is unreadable"):
        ExchangeApp(genesis(BALANCES), store)


@pytest.mark.parametrize(
    "damage",
    [lambda r: r[:-1], lambda r: [*r[:2], "1000", *r[3:]], lambda r: [*r[:3], [[1]], *r[4:]]],
    ids=["a field missing", "the bond as text", "an unbonding entry without its amount"],
)
def test_an_unreadable_stored_builder_is_refused_naming_it(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    """A builder's record that is not one (another version's, or damaged) stops the
    restart with the StateError that names the builder and the damage, as an account's
    does, not a bare unpacking error."""
    path = tmp_path / "data"
    with Store(path) as store:
        app = ExchangeApp(genesis({"builder": "5000"}), store)
        d = Driver(app)
        d.block([d.tx("builder", RegisterBuilder("b", 2000 * 10**6))])
        app.commit()
    key = builder_key(address("builder"))
    with Store(path) as store:
        record = msgpack.unpackb(store.get(key))
        _rewrite(store, key, msgpack.packb(damage(record)))
    with Store(path) as store, pytest.raises(StateError, match="stored builder .* unreadable"):
        ExchangeApp(genesis({"builder": "5000"}), store)


def test_a_fired_order_that_leaves_the_book_leaves_no_rest_priority_behind() -> None:
    """Alice's stop-limit bid (order 1) fires when Bob's bid (order 2) is placed and rests
    at rest sequence 3, kept aside as its priority; the maker's sell of 4 fills both. Its
    entry goes with it: the validator holds what a restarted one rebuilds from the store
    (nothing), and the entries do not pile up with every fired order for the life of the
    chain."""
    app = ExchangeApp(genesis(BALANCES))
    d = Driver(app)
    d.block([d.tx("alice", conditional(BTC, BUY, OrderType.STOP_LIMIT, 51000, 2, 50000))])
    d.block([d.tx("bob", limit(BTC, BUY, 50000, 2))], [51000, 3000])
    assert app.rest_seq[BTC] == {1: 3}
    d.block([d.tx("maker", limit(BTC, SELL, 50000, 4, IOC))])
    assert app.books[BTC].order_ids_of(address("alice")) == []
    assert app.account(address("alice")).position_size(BTC) == 2  # type: ignore[union-attr]
    assert app.rest_seq[BTC] == {}
