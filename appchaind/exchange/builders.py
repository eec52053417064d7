"""Block builders on chain: registration, bonds and unbonding (proposer-builder separation).

A builder is an account that bids for the right to build blocks. Its bond is collateral it
moved out of its balance (:meth:`margin.ClearingHouse.bond`): a bid may never be worth more
than the builder's bond, and a winning bid is paid from it, so a bid binds whatever the
builder's own txs do.

- **RegisterBuilder** (:class:`~appchaind.exchange.txs.RegisterBuilder`): the sender
  becomes a builder named ``name`` with a first bond of at least ``min_builder_bond``; its
  public key is the one its bids are signed with.
- **BondBuilder**: adds free collateral to the bond.
- **UnbondBuilder**: takes ``amount`` out of the bond at once (it backs no bid from then
  on) and returns it to the builder's balance at height ``h + builder_unbonding_blocks``,
  at the end of that block (:func:`release_unbonded`), so that a builder cannot bid, win,
  and pull its bond in the same block.
- **BuilderBid** (the first tx of a builder-built block, never in a mempool): paid when
  the block executes, before its other txs (:func:`pay_bid`): the value leaves the bond,
  ``builder_bid_proposer_ppm`` of it (rounded down) is the block's proposer's reward
  (:func:`appchaind.exchange.rewards.credit_proposer`: its commission and delegators) and the
  rest to the insurance fund. :func:`bid_problem` is the check every validator makes in
  ``process_proposal`` against the state before the block, which is the state the bid is
  paid from: a bid that passes always pays, whatever the builder's own txs do.

A bid names the round it is for; ``process_proposal`` checks that the block's proposer
proposes in that round (from the proposer schedule of the height alone, never from the
round a node happens to be in: every validator, whenever it judges the block, gives the
same answer), and rounds stop at :data:`MAX_BID_ROUND`.

Units: amounts in quote micro-units, heights in blocks. A builder is never removed: with a
bond of 0 and nothing unbonding it simply cannot bid. Builders are iterated in address
order wherever the order matters (the dict's insertion order differs after a restart).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from appchaind.abci import APPLIED
from appchaind.chain.codes import Code
from appchaind.chain.crypto import address_of, merkle_root
from appchaind.chain.events import Event, PendingEvent
from appchaind.chain.types import Tx
from appchaind.exchange import envelope, rewards
from appchaind.exchange.state import ExchangeState
from appchaind.exchange.txs import BondBuilder, BuilderBid, RegisterBuilder, UnbondBuilder
from margin import Account, ClearingError

__all__ = [
    "Builder", "register", "bond", "unbond", "release_unbonded", "next_release",
    "bid_problem", "block_problem", "pay_bid", "MAX_BID_ROUND",
]  # fmt: skip

#: The last round a bid may name. Whether a bid's round is one its proposer proposes in
#: is every validator's check of a builder's block, against the proposer schedule, which
#: costs a step per round; rounds this far past 0 mean the chain is in trouble and the
#: proposers build their own blocks.
MAX_BID_ROUND = 16


class Builder:
    """A registered builder. ``bond``: micro-units backing its bids; ``unbonding``: list
    of ``[release height, micro-units]`` in release order; ``bids_won`` and ``paid``: the
    winning bids paid from its bond (count and micro-units)."""

    def __init__(
        self,
        address: bytes,
        public_key: bytes,
        name: str,
        bond: int = 0,
        unbonding: list[list[int]] | None = None,
        bids_won: int = 0,
        paid: int = 0,
    ) -> None:
        self.address = address
        self.public_key = public_key
        self.name = name
        self.bond = bond
        self.unbonding: list[list[int]] = unbonding if unbonding is not None else []
        self.bids_won = bids_won
        self.paid = paid

    def unbonding_total(self) -> int:
        return sum(amount for _, amount in self.unbonding)

    def record(self) -> list[Any]:
        """The stored record (canonical msgpack of this list; the address is the key)."""
        return [
            self.public_key, self.name, self.bond, [list(e) for e in self.unbonding],
            self.bids_won, self.paid,
        ]  # fmt: skip

    @staticmethod
    def from_record(address: bytes, record: list[Any]) -> Builder:
        """The builder stored as ``record`` (:meth:`record`); ValueError if it is not one."""
        try:
            public_key, name, bond_, unbonding, bids_won, paid = record
            entries = [[int(h), int(a)] for h, a in unbonding]
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a builder record: {exc}") from None
        if not all(type(v) is int and v >= 0 for v in (bond_, bids_won, paid)):
            raise ValueError("not a builder record: bond, bids won and paid must be integers")
        return Builder(address, bytes(public_key), str(name), bond_, entries, bids_won, paid)


def _changed(state: ExchangeState, builder: Builder) -> None:
    state.dirty_builders[builder.address] = None


def register(
    state: ExchangeState,
    account: Account,
    public_key: bytes,
    body: RegisterBuilder,
    events: list[PendingEvent],
) -> tuple[int, str]:
    address = account.address
    if address in state.builders:
        return Code.BUILDER_EXISTS, "this account is already a builder; bond more with BondBuilder"
    minimum = state.params.min_builder_bond
    if body.bond < minimum:
        return Code.BOND_TOO_SMALL, f"a builder's first bond must be at least {minimum} micro-units"
    try:
        state.clearing.bond(account, body.bond)
    except ClearingError as exc:
        return Code.INSUFFICIENT_FREE_COLLATERAL, str(exc)
    builder = state.builders[address] = Builder(address, public_key, body.name, body.bond)
    _changed(state, builder)
    events.append(
        Event("builder_registered", {"builder": address, "name": body.name, "bond": body.bond})
    )
    return APPLIED


def bond(
    state: ExchangeState, account: Account, body: BondBuilder, events: list[PendingEvent]
) -> tuple[int, str]:
    builder = state.builders.get(account.address)
    if builder is None:
        return Code.NOT_A_BUILDER, "the sender is not a builder; register with RegisterBuilder"
    if body.amount == 0:
        return Code.BOND_TOO_SMALL, "bond amount must be at least 1 micro-unit"
    try:
        state.clearing.bond(account, body.amount)
    except ClearingError as exc:
        return Code.INSUFFICIENT_FREE_COLLATERAL, str(exc)
    builder.bond += body.amount
    _changed(state, builder)
    events.append(
        Event(
            "builder_bonded",
            {"builder": builder.address, "amount": body.amount, "bond": builder.bond},
        )
    )
    return APPLIED


def unbond(
    state: ExchangeState, account: Account, body: UnbondBuilder, events: list[PendingEvent]
) -> tuple[int, str]:
    builder = state.builders.get(account.address)
    if builder is None:
        return Code.NOT_A_BUILDER, "the sender is not a builder; register with RegisterBuilder"
    amount = body.amount
    if not 0 < amount <= builder.bond:
        return (
            Code.INSUFFICIENT_BOND,
            f"unbond amount must be 1 to the bond of {builder.bond} micro-units",
        )
    release = state.height + state.params.builder_unbonding_blocks
    builder.bond -= amount
    builder.unbonding.append([release, amount])
    if state.next_bond_release == 0 or release < state.next_bond_release:
        state.next_bond_release = release
    _changed(state, builder)
    events.append(
        Event(
            "builder_unbonding",
            {
                "builder": builder.address,
                "amount": amount,
                "bond": builder.bond,
                "release_height": release,
            },
        )  # fmt: skip
    )
    return APPLIED


def bid_problem(state: ExchangeState, tx: Tx, height: int, proposer: bytes) -> str | None:
    """Why the bid ``tx`` (its body a :class:`BuilderBid`) cannot be paid first in the
    block at ``height`` proposed by ``proposer``, or None. The tx's envelope (chain,
    expiry, nonce) and the match of ``txs_hash`` with the block are checked elsewhere."""
    body = tx.body
    assert isinstance(body, BuilderBid)
    builder = state.builders.get(address_of(tx.sender))
    if builder is None or builder.public_key != tx.sender:
        return "the bid's signer is not a registered builder"
    if body.height != height:
        return f"the bid is for height {body.height}, the block is at {height}"
    if not 0 <= body.round <= MAX_BID_ROUND:
        return f"the bid is for round {body.round}, beyond the last round bids may name ({MAX_BID_ROUND})"
    if body.proposer != proposer:
        return f"the bid is for proposer {body.proposer.hex()}, the block's is {proposer.hex()}"
    minimum = state.params.min_builder_bid
    if body.value < minimum:
        return f"bid value {body.value} is below the minimum bid of {minimum} micro-units"
    if body.value > builder.bond:
        return f"bid value {body.value} exceeds the builder's bond of {builder.bond} micro-units"
    return None


def block_problem(
    state: ExchangeState,
    txs: Sequence[bytes],
    height: int,
    time_ms: int,
    proposer: bytes,
    proposer_of_round: Callable[[int], bytes | None] | None = None,
) -> str | None:
    """Why ``txs`` cannot be the block at (``height``, ``time_ms``) proposed by
    ``proposer``, or None: over the limits, a tx that is not a canonical envelope for this
    chain, or a builder bid that is not first or does not hold (against
    :func:`bid_problem`, with an envelope that applies, for exactly the other txs, and,
    given ``proposer_of_round``, for a round whose proposer is ``proposer``)."""
    params = state.params
    if len(txs) > params.max_block_txs:
        return f"{len(txs)} txs, more than {params.max_block_txs}"
    if sum(len(tx) for tx in txs) > params.max_block_bytes:
        return "block bytes exceed max_block_bytes"
    for i, tx in enumerate(txs):
        decoded, error = envelope.decode(state, tx, True)
        if error is not None:
            return f"tx {i}: {error.log}"
        assert decoded is not None
        if decoded.chain_id != state.chain_id:
            return f"tx {i}: chain id {decoded.chain_id!r}"
        if type(decoded.body) is not BuilderBid:
            continue
        if i != 0:
            return f"tx {i}: a builder bid must be the block's first tx"
        problem = envelope.check_envelope(state, decoded, height, time_ms, read_only=True)
        if problem is not None:
            return f"builder bid: {problem.log}"
        reason = bid_problem(state, decoded, height, proposer)
        if reason is not None:
            return f"builder bid: {reason}"
        bid = decoded.body
        assert isinstance(bid, BuilderBid)
        if bid.txs_hash != merkle_root(list(txs[1:])):
            return "builder bid: the block's txs do not hash to the bid's txs_hash"
        if proposer_of_round is not None and proposer_of_round(bid.round) != proposer:
            return f"builder bid: the block's proposer does not propose in round {bid.round}"
    return None


def pay_bid(
    state: ExchangeState, tx: Tx, proposer: bytes, events: list[PendingEvent]
) -> tuple[int, str]:
    """Pay the bid ``tx`` (first in the block being executed, proposed by ``proposer``)."""
    problem = bid_problem(state, tx, state.height, proposer)
    if problem is not None:
        return Code.INVALID_BID, problem
    body = tx.body
    assert isinstance(body, BuilderBid)
    builder = state.builders[address_of(tx.sender)]
    value = body.value
    builder.bond -= value
    builder.bids_won += 1
    builder.paid += value
    _changed(state, builder)
    share = state.clearing.pay_from_bonds(value, state.params.builder_bid_proposer_ppm)
    rewards.credit_proposer(state, proposer, share)
    events.append(
        Event(
            "bid_paid",
            {
                "builder": builder.address,
                "proposer": proposer,
                "amount": value,
                "to_proposer": share,
                "to_insurance_fund": value - share,
            },
        )  # fmt: skip
    )
    return APPLIED


def release_unbonded(state: ExchangeState, events: list[PendingEvent]) -> None:
    """End of block: return to their builders' balances the unbonding amounts due at or
    before this height (in builder address order)."""
    due = state.next_bond_release
    if due == 0 or due > state.height:
        return
    height = state.height
    clearing = state.clearing
    for address in sorted(state.builders):
        builder = state.builders[address]
        if not builder.unbonding:
            continue
        released = sum(amount for release, amount in builder.unbonding if release <= height)
        if released:
            builder.unbonding = [e for e in builder.unbonding if e[0] > height]
            clearing.release_bond(address, released)
            _changed(state, builder)
            events.append(Event("builder_released", {"builder": address, "amount": released}))
    state.next_bond_release = next_release(state.builders)


def next_release(builders: dict[bytes, Builder]) -> int:
    """The first height at which an unbonding amount is due (0: none)."""
    heights = [e[0] for b in builders.values() for e in b.unbonding]
    return min(heights) if heights else 0
