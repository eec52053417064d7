"""The exchange behind the node's interface (appchaind.abci): finalize_block takes the
oracle input from the block's extended commit (each precommit for the previous block with
its signer's power, the whole set's power as the total), extend_vote reports only what
other validators accept, and the local builder judges expiry for the height it builds.

Found unguarded by ``make mutate`` (docs/mutation-report.md): the other exchange tests
drive execute_block with decided prices, so the path from a commit to the prices was not
exercised.
"""

from __future__ import annotations

import dataclasses

from appchaind.chain import codec, types
from appchaind.chain.crypto import PrivateKey
from appchaind.chain.types import (
    COMMIT_ABSENT,
    COMMIT_BLOCK,
    COMMIT_NIL,
    Commit,
    CommitSig,
    sign_tx,
)
from appchaind.consensus.validators import ValidatorSet
from appchaind.exchange import ExchangeApp
from appchaind.exchange.oracle import encode_vote
from tests.exchange.support import (
    CHAIN_ID,
    SELL,
    Driver,
    block_of,
    genesis,
    key,
    limit,
)

BALANCES = {"alice": "1000000"}
VALIDATORS = [PrivateKey(bytes([i + 1]) * 32) for i in range(3)]


def _validator_set(powers: list[int]) -> ValidatorSet:
    return ValidatorSet.from_genesis(
        types.Validator(k.public_key, p) for k, p in zip(VALIDATORS, powers, strict=True)
    )


def _commit(validators: ValidatorSet, slots: dict[bytes, tuple[int, bytes]]) -> Commit:
    """A commit of height 1 with, per validator address, (flag, extension); the others
    absent. Signatures are not the application's to check (consensus did)."""
    sigs = []
    for address in validators.addresses:
        flag, extension = slots.get(address, (COMMIT_ABSENT, b""))
        sigs.append(CommitSig(flag, address, 0, b"", extension, b""))
    return Commit(1, 0, b"\x01" * 32, tuple(sigs))


def _block_with(commit: Commit | None, height: int = 2) -> types.Block:
    block = block_of([], height=height)
    return dataclasses.replace(block, last_commit=commit)


def _prices_after(powers: list[int], slots: dict[int, tuple[int, int]]) -> list[int]:
    """BTC's oracle price after a block whose last commit holds, per validator index,
    (flag, reported BTC price) from a set of ``powers``."""
    app = ExchangeApp(genesis(BALANCES))
    Driver(app).block([])
    validators = _validator_set(powers)
    by_address = {
        VALIDATORS[i].address: (flag, encode_vote({0: price})) for i, (flag, price) in slots.items()
    }
    result = app.finalize_block(_block_with(_commit(validators, by_address)), [], validators)
    assert result.height == 2 == app.height
    return app.oracle_prices()


def test_prices_come_from_the_precommits_for_the_block_in_the_last_commit() -> None:
    """Powers 1, 1, 1; two precommits for the block report 50300 and 50400: exactly 2/3
    of the set's power reported, and the lower median moves the price."""
    assert _prices_after([1, 1, 1], {0: (COMMIT_BLOCK, 50300), 1: (COMMIT_BLOCK, 50400)}) == [
        50300, 3000,
    ]  # fmt: skip


def test_the_total_is_the_whole_sets_power_not_the_reported_power() -> None:
    """One of three validators (power 1 each) reports: less than 2/3 of the stake, the
    price stays (it would move if only the reporters' power were counted)."""
    assert _prices_after([1, 1, 1], {0: (COMMIT_BLOCK, 50300)}) == [50000, 3000]


def test_a_nil_precommit_in_the_last_commit_reports_nothing() -> None:
    """Only precommits for the block carry prices: with the other two nil, one report of
    three is not 2/3 of the power, whatever the nil slots hold."""
    slots = {0: (COMMIT_BLOCK, 50300), 1: (COMMIT_NIL, 50400), 2: (COMMIT_NIL, 50400)}
    assert _prices_after([1, 1, 1], slots) == [50000, 3000]


def test_a_block_without_a_last_commit_leaves_the_prices() -> None:
    app = ExchangeApp(genesis(BALANCES))
    result = app.finalize_block(_block_with(None, height=1), [], _validator_set([1, 1, 1]))
    assert result.tx_results == [] and app.oracle_prices() == [50000, 3000]


class _Source:
    def __init__(self, prices: dict[int, int]) -> None:
        self._prices = prices

    def prices(self) -> dict[int, int]:
        return dict(self._prices)


def test_extend_vote_reports_known_markets_only_and_nothing_without_prices() -> None:
    g = genesis(BALANCES)  # markets 0 and 1
    vote = types.Vote(
        types.PRECOMMIT, 1, 0, b"\x01" * 32, 0, VALIDATORS[0].address, 0, b"", b"", b""
    )
    for source, expected in (
        (None, b""),
        (_Source({}), b""),
        (_Source({0: 50100, 2: 7}), encode_vote({0: 50100})),
        (_Source({1: 3010}), encode_vote({1: 3010})),
    ):
        app = ExchangeApp(g, price_source=source)
        extension = app.extend_vote(1, 0, b"\x01" * 32)
        assert extension == expected
        assert app.verify_vote_extension(dataclasses.replace(vote, extension=extension))


def test_the_local_builder_judges_expiry_for_the_height_it_builds() -> None:
    """At height 1, the next block is height 2: a tx expiring at 2 goes in, one that
    expired at 1 does not."""
    app = ExchangeApp(genesis(BALANCES))
    d = Driver(app)
    d.block([])
    txs = [
        codec.encode(
            sign_tx(key("alice"), CHAIN_ID, d.time_ms + i, expiry, limit(0, SELL, 50000, 1))
        )
        for i, expiry in enumerate((2, 1))
    ]
    assert app.prepare_proposal(2, d.time_ms, txs) == txs[:1]
