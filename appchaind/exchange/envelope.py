"""The tx envelope: what every tx must satisfy before its body runs.

- **Encoding and size**: canonical bytes of a :class:`~appchaind.chain.types.Tx`, at most
  ``max_tx_bytes``.
- **Signature**: the sender's ed25519 signature of the envelope. The node checks each
  once, on its worker threads, with the one verdict cache of
  :class:`appchaind.chain.signatures.SignatureVerifier`, and hands the application txs it
  verified; :func:`decode` checks the others (the application keeps no verdicts).
- **Chain id**: the chain's own.
- **Expiry**: ``height <= expiry_height <= height + max_tx_lifetime_blocks``.
- **Nonce window**: ``time - nonce_window_past_ms <= nonce <= time + nonce_window_future_ms``
  (block time in milliseconds: a millisecond timestamp works as a nonce).
- **Sender and nonce**: an existing account (a faucet tx on a chain with a faucet opens
  one) that has not used the nonce: it must not be among the account's recent nonces and,
  once ``max_recent_nonces`` are kept, must be above the smallest of them
  (:meth:`margin.Account.accept_nonce`).

A nonce is recorded when the envelope is accepted, even if the body is then refused, so
no tx can run twice.
"""

from __future__ import annotations

from typing import Final

from appchaind.abci import TxResult
from appchaind.chain import codec
from appchaind.chain.codes import Code
from appchaind.chain.crypto import address_of
from appchaind.chain.types import Tx
from appchaind.exchange.state import ExchangeState
from appchaind.exchange.txs import Faucet
from margin import Account

__all__ = [
    "decode",
    "check_envelope",
    "set_envelope_bounds",
    "sender_account",
    "CACHE_LIMIT",
]

#: Entries kept in each of the address and sender caches.
CACHE_LIMIT: Final = 200_000


def decode(
    state: ExchangeState, tx: bytes | Tx, verified: bool
) -> tuple[Tx | None, TxResult | None]:
    """``tx`` decoded (raw bytes: canonical, at most ``max_tx_bytes``) and, unless
    ``verified`` (the node checked it), its signature checked; or why not."""
    if isinstance(tx, Tx):
        decoded = tx
    else:
        max_bytes = state.params.max_tx_bytes
        if len(tx) > max_bytes:
            return None, TxResult(Code.MALFORMED, f"tx is {len(tx)} bytes, more than allowed")
        try:
            decoded = codec.decode(Tx, tx, max_bytes=max_bytes)
        except codec.CodecError as exc:
            return None, TxResult(Code.MALFORMED, f"not a valid tx: {exc}")
    if not verified and not decoded.verify_signature():
        return None, TxResult(Code.BAD_SIGNATURE, "signature does not match the sender")
    return decoded, None


def check_envelope(
    state: ExchangeState, tx: Tx, height: int, time_ms: int, *, read_only: bool
) -> TxResult | None:
    """Why the envelope cannot be applied at (height, time_ms), or None. ``read_only``
    (mempool admission, the local builder) also checks the sender and its nonce against
    the committed state."""
    params = state.params
    if tx.chain_id != state.chain_id:
        return TxResult(
            Code.WRONG_CHAIN, f"tx is for chain {tx.chain_id!r}, this is {state.chain_id!r}"
        )
    if not height <= tx.expiry_height <= height + params.max_tx_lifetime_blocks:
        return TxResult(
            Code.EXPIRED,
            f"expiry_height {tx.expiry_height} must be in [{height}, "
            f"{height + params.max_tx_lifetime_blocks}] at height {height}",
        )
    nonce = tx.nonce
    if (
        not time_ms - params.nonce_window_past_ms
        <= nonce
        <= time_ms + params.nonce_window_future_ms
    ):
        return TxResult(
            Code.NONCE_OUT_OF_WINDOW,
            f"nonce {nonce} is outside [{time_ms - params.nonce_window_past_ms}, "
            f"{time_ms + params.nonce_window_future_ms}] (block time ± window); "
            "use the current time in milliseconds",
        )
    if read_only:
        account = state.clearing.accounts.get(_address_of(state, tx.sender))
        if account is None:
            if type(tx.body) is Faucet and params.faucet_enabled:
                return None
            return TxResult(Code.UNKNOWN_ACCOUNT, "the sender has no account; fund it first")
        problem = account.check_nonce(nonce, params.max_recent_nonces)
        if problem is not None:
            return TxResult(Code.NONCE_REPLAYED, problem)
    return None


def set_envelope_bounds(state: ExchangeState, height: int, time_ms: int) -> None:
    """The expiry and nonce bounds of the block at (height, time_ms), precomputed: a tx
    within them passes :func:`check_envelope` (the sender and its nonce aside)."""
    params = state.params
    state.envelope_bounds = (
        state.chain_id, height, height + params.max_tx_lifetime_blocks,
        time_ms - params.nonce_window_past_ms, time_ms + params.nonce_window_future_ms,
    )  # fmt: skip


def _address_of(state: ExchangeState, public_key: bytes) -> bytes:
    addresses = state.addresses
    address = addresses.get(public_key)
    if address is None:
        if len(addresses) >= CACHE_LIMIT:
            addresses.clear()
        address = addresses[public_key] = address_of(public_key)
    return address


def sender_account(state: ExchangeState, public_key: bytes, faucet: bool) -> Account | None:
    """The sender's account (opened empty for a faucet tx on a chain with a faucet), or
    None; remembered in ``state.senders`` once it exists."""
    address = _address_of(state, public_key)
    account = state.clearing.accounts.get(address)
    if account is None:
        if not (faucet and state.params.faucet_enabled):
            return None
        account = state.clearing.open_account(address, 0)
    senders = state.senders
    if len(senders) >= CACHE_LIMIT:
        senders.clear()
    senders[public_key] = account
    return account
