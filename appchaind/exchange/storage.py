"""Loading and saving the state, and the commitment to it (the app hash).

Every replicated value is one key under the node store's ``s/`` prefix holding canonical
msgpack; :mod:`appchaind.exchange.commitment` lists the keys and defines the hash. The
records: the global ``s/g`` is ``[height, time_ms, next_order_id, insurance_fund,
fee_pool, withdrawn, faucet_total, genesis_total, rewards_allocated]`` (funds in
micro-units; the last is the part of the fee pool handed to validators as rewards,
:mod:`appchaind.exchange.rewards`); a market's is
:meth:`margin.MarketState.record`, an account's :meth:`margin.Account.record`; a resting
order's is ``[priority, *OrderRecord]`` (its time priority is its id unless it fired from
a conditional order, prices in ticks, sizes in lots); a conditional order's is
:meth:`orderbook.ConditionalOrder.record`; a block builder's
:meth:`appchaind.exchange.builders.Builder.record`; the staking records are
:mod:`appchaind.exchange.staking_state`'s.

After each block the entries it changed are rehashed (:func:`update_commitment`: the
touched accounts, the changed orders, every market and the global record) and staged;
:func:`write_commit` adds them, with ``s/~meta`` = ``[height, app_hash]``, to the commit's
one write batch. A restart (:func:`load`) rebuilds the books, accounts and markets from
the entries and refuses a state that does not hash to the app hash committed with it.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from appchaind.exchange import staking_state
from appchaind.exchange.builders import Builder, next_release
from appchaind.exchange.commitment import (
    ACCOUNT_PREFIX,
    BUILDER_PREFIX,
    CONDITIONAL_PREFIX,
    GLOBAL_KEY,
    MARKET_PREFIX,
    META_KEY,
    ORDER_PREFIX,
    StateCommitment,
    account_key,
    builder_key,
    conditional_key,
    market_key,
    order_key,
)
from appchaind.exchange.state import RECORD_FLAGS, RECORD_ID, RECORD_OWNER, ExchangeState
from appchaind.store import Store, WriteBatch
from margin import Account
from orderbook import ConditionalOrder, OrderFlag

__all__ = ["StateError", "init_genesis", "load", "update_commitment", "write_commit"]

_REDUCE_ONLY: Final = int(OrderFlag.REDUCE_ONLY)


class StateError(Exception):
    """The stored state is unusable (e.g. its app hash does not match its contents)."""


def _pack(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)


def init_genesis(state: ExchangeState) -> None:
    """Open the genesis accounts with their balances, bond the genesis validators' stake,
    and hash the state."""
    clearing = state.clearing
    for entry in state.genesis.accounts:
        clearing.open_account(entry.address, entry.balance)
        clearing.genesis_total += entry.balance
    staking_state.init_genesis(state)
    state.app_hash = update_commitment(state)


def load(state: ExchangeState, store: Store) -> None:
    """Rebuild accounts, markets and books from the store (a restart). A record that does
    not decode raises StateError naming its key."""
    meta = store.get(META_KEY)
    assert meta is not None
    height, stored_hash = _decode(META_KEY, meta)
    clearing = state.clearing
    resting: list[list[tuple[int, tuple[Any, ...]]]] = [[] for _ in state.markets]
    committed: list[tuple[bytes, bytes]] = []
    for suffix, value in store.iterate(b"s/"):
        key = b"s/" + suffix
        if key == META_KEY:
            continue
        committed.append((key, value))
        _restore(state, key, _decode(key, value), resting)
    state.next_bond_release = next_release(state.builders)
    staking_state.finish_load(state)
    for market_id, orders in enumerate(resting):
        orders.sort()
        book = state.books[market_id]
        for seq, fields in orders:
            book.insert_resting(fields)
            if seq != fields[RECORD_ID]:
                state.rest_seq[market_id][fields[RECORD_ID]] = seq
            if fields[RECORD_FLAGS] & _REDUCE_ONLY:
                state.note_reduce_only(fields[RECORD_OWNER], market_id)
    state.commitment = StateCommitment(committed)
    clearing.take_touched()
    clearing.take_position_changed()
    state.app_hash = state.commitment.app_hash()
    if state.height != height or state.app_hash != stored_hash:
        raise StateError(
            f"stored state at height {height} hashes to {state.app_hash.hex()}, but "
            f"{stored_hash.hex()} was committed; the data directory is damaged"
        )


_UNREADABLE = (ValueError, TypeError, IndexError, KeyError, msgpack.UnpackException)


def _decode(key: bytes, value: bytes) -> Any:
    try:
        return _unpack(value)
    except _UNREADABLE as exc:
        raise _unreadable(key, exc) from None


def _unreadable(key: bytes, exc: Exception) -> StateError:
    return StateError(
        f"stored record {key!r} is unreadable ({type(exc).__name__}: {exc}): the data "
        "directory is damaged or was written by another version"
    )


def _restore(
    state: ExchangeState,
    key: bytes,
    record: Any,
    resting: list[list[tuple[int, tuple[Any, ...]]]],
) -> None:
    """Puts one stored record back where it belongs; StateError names a record whose
    shape is wrong."""
    clearing = state.clearing
    try:
        if key == GLOBAL_KEY:
            (
                state.height, state.time_ms, state.next_order_id, clearing.insurance_fund,
                clearing.fee_pool, clearing.withdrawn, clearing.faucet_total,
                clearing.genesis_total, state.staking.rewards_allocated,
            ) = record  # fmt: skip
        elif key.startswith(MARKET_PREFIX):
            state.markets[int.from_bytes(key[4:8], "big")].restore(record)
        elif key.startswith(ACCOUNT_PREFIX):
            try:
                account = Account.from_record(key[4:], record)
            except ValueError as exc:
                raise StateError(
                    f"stored account {key[4:].hex()} is unreadable ({exc}): the data "
                    "directory is damaged or was written by another version"
                ) from exc
            clearing.restore_account(account)
        elif key.startswith(ORDER_PREFIX):
            market_id = int.from_bytes(key[4:8], "big")
            seq, *fields = record
            resting[market_id].append((seq, tuple(fields)))
        elif key.startswith(CONDITIONAL_PREFIX):
            market_id = int.from_bytes(key[4:8], "big")
            order = ConditionalOrder(*record)
            state.books[market_id].add_conditional(order)
            state.stored_conditionals[market_id][order.order_id] = None
            if order.flags & _REDUCE_ONLY:
                state.note_reduce_only(order.owner, market_id)
        elif key.startswith(BUILDER_PREFIX):
            try:
                builder = Builder.from_record(key[4:], record)
            except (ValueError, TypeError) as exc:
                raise StateError(
                    f"stored builder {key[4:].hex()} is unreadable ({exc}): the data "
                    "directory is damaged or was written by another version"
                ) from exc
            state.builders[builder.address] = builder
            clearing.builder_bonds += builder.bond + builder.unbonding_total()
        elif key[:4] in staking_state.STAKING_PREFIXES:
            try:
                staking_state.restore(state, key, record)
            except (ValueError, TypeError) as exc:
                raise StateError(
                    f"stored staking record {key!r} is unreadable ({exc}): the data "
                    "directory is damaged or was written by another version"
                ) from exc
    except _UNREADABLE as exc:
        raise _unreadable(key, exc) from None


def update_commitment(state: ExchangeState) -> bytes:
    """Rehash what changed since the last block and stage it for :func:`write_commit`;
    returns the app hash."""
    commitment = state.commitment
    clearing = state.clearing
    accounts = clearing.accounts
    packb = msgpack.Packer(use_bin_type=True).pack
    for address in clearing.take_touched():
        account = accounts.get(address)
        if account is None:
            commitment.delete(account_key(address))
        else:
            commitment.put(account_key(address), packb(account.record()))
    for market_id, dirty in enumerate(state.dirty_orders):
        if not dirty:
            continue
        book = state.books[market_id]
        triggers = book.triggers
        rest_seq = state.rest_seq[market_id]
        stored_conditionals = state.stored_conditionals[market_id]
        # order_key(market_id, order_id) is the market's prefix + the id as u64
        prefix = order_key(market_id, 0)[:-8]
        for order_id in dirty:
            order = book.resting(order_id)
            if order is None:
                commitment.delete(prefix + order_id.to_bytes(8, "big"))
                if rest_seq:
                    rest_seq.pop(order_id, None)
            else:
                priority = rest_seq.get(order_id, order_id) if rest_seq else order_id
                commitment.put(prefix + order_id.to_bytes(8, "big"), packb(order.stored(priority)))
            if not stored_conditionals and not len(triggers):
                continue
            conditional = triggers.get(order_id)
            if conditional is not None:
                commitment.put(
                    conditional_key(market_id, order_id), packb(list(conditional.record()))
                )
                stored_conditionals[order_id] = None
            elif order_id in stored_conditionals:
                commitment.delete(conditional_key(market_id, order_id))
                del stored_conditionals[order_id]
        dirty.clear()
    if state.dirty_builders:
        for address in state.dirty_builders:
            commitment.put(builder_key(address), packb(state.builders[address].record()))
        state.dirty_builders.clear()
    staking = state.staking
    if (
        staking.dirty_validators
        or staking.dirty_delegations
        or staking.dirty_unbonding
        or staking.dirty_signing
    ):
        staking_state.stage(state, commitment.put, commitment.delete)
    for market in state.markets:
        commitment.put(market_key(market.market_id), _pack(market.record()))
    commitment.put(
        GLOBAL_KEY,
        _pack(
            [
                state.height, state.time_ms, state.next_order_id, clearing.insurance_fund,
                clearing.fee_pool, clearing.withdrawn, clearing.faucet_total,
                clearing.genesis_total, state.staking.rewards_allocated,
            ]
        ),
    )  # fmt: skip
    return commitment.app_hash()


def write_commit(state: ExchangeState, target: WriteBatch) -> None:
    """Add the staged writes, and the ``[height, app_hash]`` meta record, to ``target``."""
    for key, value in state.commitment.take_writes().items():
        if value is None:
            target.delete(key)
        else:
            target.put(key, value)
    target.put(META_KEY, _pack([state.height, state.app_hash]))
