"""Block builders on chain (issue 15): registering with a minimum bond taken from free
collateral, bonding more, unbonding released only after the unbonding delay, each change
committed to the app hash and restored on restart, quote conserved throughout."""

from __future__ import annotations

from pathlib import Path

from appchaind.chain.codes import Code
from appchaind.exchange import ExchangeApp
from appchaind.exchange.txs import BondBuilder, RegisterBuilder, Transfer, UnbondBuilder
from appchaind.store import Store
from tests.exchange.support import BUY, IOC, SELL, Driver, address, genesis, key, limit

BTC = 0
QUOTE = 1_000_000  # micro-units per quote unit
MIN_BOND = 1000 * QUOTE  # the genesis default of min_builder_bond
DELAY = 3


def _app(balances: dict[str, str] | None = None) -> tuple[ExchangeApp, Driver]:
    app = ExchangeApp(
        genesis(
            balances or {"bob": "5000", "carol": "5000", "maker": "1000000"},
            params={"builder_unbonding_blocks": DELAY},
        )
    )
    return app, Driver(app)


def _balance(app: ExchangeApp, name: str) -> int:
    account = app.account(address(name))
    assert account is not None
    return account.balance


def _codes(result) -> list[int]:  # type: ignore[no-untyped-def]
    return [r.code for r in result.tx_results]


def test_registering_bonds_at_least_the_minimum_out_of_the_balance() -> None:
    app, d = _app()
    result = d.block([
        d.tx("carol", RegisterBuilder("too-small", MIN_BOND - 1)),
        d.tx("bob", RegisterBuilder("bob-builds", MIN_BOND)),
        d.tx("bob", RegisterBuilder("again", MIN_BOND)),
    ])  # fmt: skip
    assert _codes(result) == [Code.BOND_TOO_SMALL, Code.OK, Code.BUILDER_EXISTS]
    builder = app.builders[address("bob")]
    assert (builder.name, builder.bond, builder.public_key) == (
        "bob-builds",
        MIN_BOND,
        key("bob").public_key,
    )
    assert address("carol") not in app.builders
    assert _balance(app, "bob") == 5000 * QUOTE - MIN_BOND
    assert _balance(app, "carol") == 5000 * QUOTE
    assert app.clearing.builder_bonds == MIN_BOND
    assert app.clearing.conservation_gap() == 0
    (event,) = result.tx_results[1].events
    assert (event.kind, event.attributes) == (
        "builder_registered",
        {"builder": address("bob"), "name": "bob-builds", "bond": MIN_BOND},
    )


def test_a_bond_comes_only_from_free_collateral_against_the_initial_requirement() -> None:
    """Bob holds 1 BTC long at 50,000 (initial margin 10%: 5,000 quote) with 5,600 quote:
    600 quote are free, so a first bond of 1,000 is refused, and once registered (after a
    deposit) a bond of more than what is free is refused too."""
    app, d = _app({"bob": "5600", "maker": "1000000", "alice": "1000000"})
    d.block([
        d.tx("maker", limit(BTC, SELL, 50000, 1000)),
        d.tx("bob", limit(BTC, BUY, 50000, 1000, IOC)),
    ])  # fmt: skip
    assert app.account(address("bob")).position_size(BTC) == 1000  # type: ignore[union-attr]
    result = d.block([d.tx("bob", RegisterBuilder("bob", MIN_BOND))])
    assert _codes(result) == [Code.INSUFFICIENT_FREE_COLLATERAL]
    assert address("bob") not in app.builders
    free = app.clearing.health(app.account(address("bob"))).free_collateral  # type: ignore[arg-type]
    result = d.block([
        d.tx("alice", Transfer(address("bob"), MIN_BOND)),
        d.tx("bob", RegisterBuilder("bob", MIN_BOND)),
    ])  # fmt: skip
    assert _codes(result) == [Code.OK, Code.OK]
    result = d.block([d.tx("bob", BondBuilder(free + 1)), d.tx("bob", BondBuilder(free))])
    assert _codes(result) == [Code.INSUFFICIENT_FREE_COLLATERAL, Code.OK]
    assert app.builders[address("bob")].bond == MIN_BOND + free
    assert app.clearing.conservation_gap() == 0


def test_only_a_builder_bonds_or_unbonds_and_only_what_it_has() -> None:
    app, d = _app()
    d.block([d.tx("bob", RegisterBuilder("bob", MIN_BOND))])
    result = d.block([
        d.tx("carol", BondBuilder(QUOTE)),
        d.tx("carol", UnbondBuilder(QUOTE)),
        d.tx("bob", BondBuilder(0)),
        d.tx("bob", UnbondBuilder(0)),
        d.tx("bob", UnbondBuilder(MIN_BOND + 1)),
        d.tx("bob", BondBuilder(QUOTE)),
        d.tx("bob", UnbondBuilder(MIN_BOND + QUOTE)),
    ])  # fmt: skip
    assert _codes(result) == [
        Code.NOT_A_BUILDER,
        Code.NOT_A_BUILDER,
        Code.BOND_TOO_SMALL,
        Code.INSUFFICIENT_BOND,
        Code.INSUFFICIENT_BOND,
        Code.OK,
        Code.OK,
    ]
    builder = app.builders[address("bob")]
    assert builder.bond == 0
    assert builder.unbonding == [[app.height + DELAY, MIN_BOND + QUOTE]]
    assert app.clearing.builder_bonds == MIN_BOND + QUOTE
    assert app.clearing.conservation_gap() == 0


def test_an_unbonded_amount_returns_to_the_balance_exactly_after_the_delay() -> None:
    """Unbonding 400 at height h and 100 at h+1: the balance is unchanged through h+2,
    gets 400 back at the end of block h+3 and 100 at h+4, each with a release event."""
    app, d = _app()
    d.block([d.tx("bob", RegisterBuilder("bob", MIN_BOND))])
    before = _balance(app, "bob")
    d.block([d.tx("bob", UnbondBuilder(400 * QUOTE))])
    h = app.height
    d.block([d.tx("bob", UnbondBuilder(100 * QUOTE))])
    released = {}
    while app.height < h + DELAY + 1:
        result = d.block([])
        released[app.height] = [
            (e.attributes["builder"], e.attributes["amount"])
            for e in result.events
            if e.kind == "builder_released"
        ]
        if app.height < h + DELAY:
            assert _balance(app, "bob") == before
    assert released == {
        h + 2: [],
        h + DELAY: [(address("bob"), 400 * QUOTE)],
        h + DELAY + 1: [(address("bob"), 100 * QUOTE)],
    }
    assert _balance(app, "bob") == before + 500 * QUOTE
    assert app.builders[address("bob")].bond == MIN_BOND - 500 * QUOTE
    assert app.builders[address("bob")].unbonding == []
    assert app.clearing.builder_bonds == MIN_BOND - 500 * QUOTE
    assert app.clearing.conservation_gap() == 0


def test_builders_are_committed_and_a_restarted_validator_releases_on_time(
    tmp_path: Path,
) -> None:
    """Two validators run the same blocks; one restarts from its store while an unbonding
    is pending. Every app hash is the same, a builder changes the app hash, and the
    restarted one releases the bond at the same height."""
    g = genesis({"bob": "5000", "carol": "5000"}, params={"builder_unbonding_blocks": DELAY})
    runs = []
    for restart in (False, True):
        store = Store(tmp_path / f"data-{restart}")
        app = ExchangeApp(g, store)
        d = Driver(app)
        hashes = [app.app_hash]
        for txs in (
            [d.tx("bob", RegisterBuilder("bob", MIN_BOND))],
            [d.tx("carol", RegisterBuilder("carol", MIN_BOND + 7))],
            [d.tx("bob", UnbondBuilder(MIN_BOND)), d.tx("carol", UnbondBuilder(7))],
        ):
            hashes.append(d.block(txs).app_hash)
            app.commit()
        if restart:
            store.close()
            store = Store(tmp_path / f"data-{restart}")
            app = d.app = ExchangeApp(g, store)
            assert app.app_hash == hashes[-1]
            assert app.clearing.builder_bonds == 2 * MIN_BOND + 7
        for _ in range(DELAY):
            hashes.append(d.block([]).app_hash)
            app.commit()
        assert app.builders[address("bob")].unbonding == []
        assert _balance(app, "bob") == 5000 * QUOTE
        assert app.clearing.builder_bonds == MIN_BOND
        assert app.clearing.conservation_gap() == 0
        runs.append(hashes)
        store.close()
    assert runs[0] == runs[1]
    assert len(set(runs[0][:3])) == 3  # registering changes the app hash
