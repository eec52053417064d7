"""Fuzz target ``codec``: every decoder of untrusted canonical bytes.

Input: one byte choosing the decoder (modulo their number, in :data:`DECODERS`' order),
then the bytes to decode. The decoders: ``codec.decode`` of every message class a peer,
a client or a block carries (txs, votes, proposals, commits, evidence, headers, blocks,
validators, the txs' sign docs, the store's tx index entries and forced-tx lists), the
p2p channels' tagged unions (``decode_message`` with each channel's registry) and the
vote extension checks (``oracle.verify_extension``, ``inclusion.extension_problem``).

A crash is:

- any exception but :class:`~appchaind.chain.codec.CodecError` from a decode (the
  extension checks must not raise at all: they return why an extension is refused);
- a decoded value whose encoding is not the input (the codec accepts only canonical
  bytes), or that does not decode back to itself.
"""

from __future__ import annotations

from collections.abc import Callable

from appchaind.chain import codec, types
from appchaind.exchange import inclusion, oracle
from appchaind.node import messages
from appchaind.node.view import ForcedTxs, TxIndexEntry
from tools.fuzz import samples
from tools.fuzz.harness import Finding, Target

__all__ = ["TARGET", "DECODERS", "one_input"]

_MESSAGES: tuple[type, ...] = (
    types.Tx,
    types.TxSignDoc,
    types.Vote,
    types.Proposal,
    types.Commit,
    types.CommitSig,
    types.DuplicateVoteEvidence,
    types.Header,
    types.Block,
    types.Validator,
    oracle.PrecommitExtension,
    TxIndexEntry,
    ForcedTxs,
)
_CHANNELS: dict[str, dict[int, type]] = {
    "consensus": messages.CONSENSUS_MESSAGES,
    "mempool": messages.MEMPOOL_MESSAGES,
    "evidence": messages.EVIDENCE_MESSAGES,
    "blocksync": messages.BLOCKSYNC_MESSAGES,
    "builder": messages.BUILDER_MESSAGES,
}
_PARAMS = samples.genesis().params
_PRICES = [50_000, 3_000]


def _message_decoder(cls: type) -> Callable[[bytes], None]:
    def check(data: bytes) -> None:
        try:
            value = codec.decode(cls, data)
        except codec.CodecError:
            return
        _check_canonical(value, data, lambda raw: codec.decode(cls, raw), codec.encode)

    return check


def _channel_decoder(registry: dict[int, type]) -> Callable[[bytes], None]:
    def check(data: bytes) -> None:
        try:
            value = messages.decode_message(registry, data, codec.MAX_MESSAGE_BYTES)
        except codec.CodecError:
            return
        _check_canonical(
            value,
            data,
            lambda raw: messages.decode_message(registry, raw, codec.MAX_MESSAGE_BYTES),
            messages.encode_message,
        )

    return check


def _check_canonical(
    value: object,
    data: bytes,
    decode: Callable[[bytes], object],
    encode: Callable[[object], bytes],
) -> None:
    encoded = encode(value)
    if encoded != data:
        raise Finding(f"{type(value).__name__}: accepted non-canonical bytes")
    if decode(encoded) != value:
        raise Finding(f"{type(value).__name__}: decode(encode(x)) != x")


def _extension(data: bytes) -> None:
    for reason in (
        oracle.verify_extension(data, _PRICES),
        inclusion.extension_problem(_PARAMS, data),
    ):
        if reason is not None and type(reason) is not str:
            raise Finding("an extension check answered a non-string", repr(reason))


DECODERS: tuple[tuple[str, Callable[[bytes], None]], ...] = (
    *((cls.__name__, _message_decoder(cls)) for cls in _MESSAGES),
    *((f"channel_{name}", _channel_decoder(reg)) for name, reg in _CHANNELS.items()),
    ("vote_extension", _extension),
)


def one_input(data: bytes) -> None:
    if not data:
        return
    DECODERS[data[0] % len(DECODERS)][1](data[1:])


def seeds() -> dict[str, bytes]:
    block = samples.block()
    bh = block.block_id()
    by_class: dict[type, object] = {
        types.Tx: samples.signed_txs()["place_order"],
        types.TxSignDoc: samples.signed_txs()["replace_order"].sign_doc(),
        types.Vote: samples.vote(),
        types.Proposal: samples.proposal(bh),
        types.Commit: samples.commit(),
        types.CommitSig: samples.commit().signatures[0],
        types.DuplicateVoteEvidence: samples.evidence(),
        types.Header: block.header,
        types.Block: block,
        types.Validator: types.Validator(samples.key("validator").public_key, 10),
        oracle.PrecommitExtension: oracle.decode_vote(samples.extension()),
        TxIndexEntry: TxIndexEntry(2, 0, 0, "ok", b"\x90"),
        ForcedTxs: ForcedTxs(block.txs),
    }
    by_channel: dict[str, list[object]] = {
        "consensus": [
            messages.ProposalMessage(samples.proposal(bh), block),
            messages.VoteMessage(samples.vote()),
            messages.RoundStatus(2, 0, 1, 1, 1),
        ],
        "mempool": [messages.TxsMessage(block.txs)],
        "evidence": [messages.EvidenceMessage(samples.evidence())],
        "blocksync": [
            messages.BlockRequest(2),
            messages.BlockResponse(block, samples.commit()),
            messages.NoBlockResponse(3),
        ],
        "builder": [messages.BidMessage(block.txs[:1], block.txs[1:])],
    }
    names = [name for name, _ in DECODERS]
    out: dict[str, bytes] = {}
    for cls, value in by_class.items():
        out[cls.__name__] = bytes([names.index(cls.__name__)]) + codec.encode(value)
    for channel, values in by_channel.items():
        tag = bytes([names.index(f"channel_{channel}")])
        for value in values:
            out[f"{channel}_{type(value).__name__}"] = tag + messages.encode_message(value)
    for body_name, tx in samples.signed_txs().items():
        out[f"Tx_{body_name}"] = bytes([names.index("Tx")]) + codec.encode(tx)
    out["vote_extension"] = bytes([names.index("vote_extension")]) + samples.extension()
    return out


TARGET = Target(
    "codec",
    one_input,
    seeds,
    tokens=(b"\xc0", b"\xc2", b"\xc3", b"\xcf" + b"\xff" * 8, b"\xd3" + b"\x80" + b"\x00" * 7,
            b"\xdc\xff\xff", b"\xdd\xff\xff\xff\xff", b"\xc4\x20", b"\xc4\x40", b"\x92\x0a",
            b"\x91" * 64, b"\xa0"),
)  # fmt: skip
