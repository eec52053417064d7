"""Fuzz target ``tx``: tx admission and the tx rules of the exchange application.

Input: one mode byte, then

- mode 0, **raw tx bytes**: the mempool's admission of a client's bytes,
  :meth:`~appchaind.exchange.app.ExchangeApp.check_tx` (decoding, signature, envelope,
  sender and nonce); when the bytes decode, ``check_tx`` again as if the node had verified
  the signature (so the envelope rules run on fuzzed fields), and every validator's check
  of a block made of them (``process_proposal``'s :meth:`builder_block_problem`);
- mode 1, **signed tx bodies**: records ``[sender][u16 length][body]``, each body the
  codec's ``[tag, fields]`` of a tx kind (bytes that do not decode are skipped: the codec
  target covers them). The harness signs each with a funded genesis key (``sender``
  chooses which; its high bit starts a second block), with a valid nonce and expiry, so
  the body reaches the exchange's rules: ``check_tx``, then the blocks run on two fresh
  applications of one genesis.

A crash is any exception out of ``check_tx``, ``builder_block_problem`` or
``execute_block`` (each must answer a refusal with a result code and a reason), an
accepted result with a refusal's reason or a refusal without one, a conservation gap in
the clearing house after a block, or two applications that end with different app hashes
from the same blocks.
"""

from __future__ import annotations

from appchaind.chain import codec, types
from appchaind.chain.codes import Code
from appchaind.exchange import ExchangeApp
from tools.fuzz import samples
from tools.fuzz.harness import Finding, Target

__all__ = ["TARGET", "one_input"]

GENESIS = samples.genesis()
SENDERS = ("alice", "bob", "validator")
KEYS = tuple(samples.key(name) for name in SENDERS)
PRICES = [50_000, 3_000]
_APP = ExchangeApp(GENESIS)


def _check_result(result: object, where: str) -> None:
    code = getattr(result, "code", None)
    log = getattr(result, "log", None)
    if type(log) is not str or not isinstance(code, int):
        raise Finding(f"{where} answered no result", repr(result))
    if (code == Code.OK) != (log == ""):
        raise Finding(f"{where}: a code and a log that disagree", f"code {code}, log {log!r}")


def _raw_tx(raw: bytes) -> None:
    app = _APP
    _check_result(app.check_tx(raw), "check_tx")
    try:
        tx = codec.decode(types.Tx, raw, max_bytes=GENESIS.params.max_tx_bytes)
    except codec.CodecError:
        return
    _check_result(app.check_tx(raw, tx), "check_tx (verified)")
    problem = app.builder_block_problem([raw], 1, samples.GENESIS_MS + 1000, KEYS[2].address)
    if problem is not None and type(problem) is not str:
        raise Finding("builder_block_problem answered a non-string", repr(problem))


def _blocks(records: bytes) -> list[list[types.Tx]]:
    blocks: list[list[types.Tx]] = [[]]
    nonce = samples.GENESIS_MS
    while len(records) >= 3 and len(blocks) <= 2:
        sender, length = records[0], int.from_bytes(records[1:3], "big")
        body, records = records[3 : 3 + length], records[3 + length :]
        if sender & 0x80 and blocks[-1]:
            blocks.append([])
        try:
            decoded = codec.decode_union(types.TX_BODIES, body)
        except codec.CodecError:
            continue
        height = len(blocks)
        nonce += 1
        key = KEYS[(sender & 0x7F) % len(KEYS)]
        blocks[-1].append(types.sign_tx(key, samples.CHAIN_ID, nonce, height + 5, decoded))
    return blocks[:2]


def _signed_bodies(records: bytes) -> None:
    blocks = _blocks(records)
    hashes = []
    for _ in range(2):
        app = ExchangeApp(GENESIS)
        for height, txs in enumerate(blocks, start=1):
            for tx in txs:
                _check_result(app.check_tx(codec.encode(tx), tx), "check_tx")
            result = app.execute_block(
                height, samples.GENESIS_MS + height * 1000, txs,
                oracle_prices=PRICES, signatures_verified=True,
            )  # fmt: skip
            for tx_result in result.tx_results:
                _check_result(tx_result, "execute_block")
            gap = app.clearing.conservation_gap()
            if gap != 0:
                raise Finding("a conservation gap after a block", f"{gap} after block {height}")
        hashes.append(app.commit())
    if hashes[0] != hashes[1]:
        raise Finding("the same blocks gave two app hashes")


def one_input(data: bytes) -> None:
    if not data:
        return
    if data[0] % 2 == 0:
        _raw_tx(data[1:])
    else:
        _signed_bodies(data[1:])


def _record(sender: int, body: object) -> bytes:
    encoded = codec.encode_union(body)
    return bytes([sender]) + len(encoded).to_bytes(2, "big") + encoded


def seeds() -> dict[str, bytes]:
    out = {}
    for name, tx in samples.signed_txs().items():
        out[f"raw_{name}"] = b"\x00" + codec.encode(tx)
    bodies = samples.tx_bodies()
    for i, (name, body) in enumerate(bodies.items()):
        out[f"signed_{name}"] = b"\x01" + _record(i % 2, body)
    # A maker and a taker that cross, then a cancel in a second block.
    out["signed_cross"] = b"\x01" + b"".join(
        [_record(0, bodies["place_order"]), _record(1, bodies["place_order"].__class__(
            0, 0, 0, 0, 50_000, 4, 0, False, 9, 0)), _record(0x80, bodies["cancel_all"])]
    )  # fmt: skip
    return out


TARGET = Target(
    "tx",
    one_input,
    seeds,
    tokens=(b"\x9a", b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff", b"\xce\xff\xff\xff\xff", b"\x00",
            b"\xc3", b"\xc2", b"\x92\x0a", b"\x92\x0b", b"\x92\x0d", b"\x92\x0e", b"\x92\x10",
            b"\x92\x11", b"\x92\x14", b"\x92\x15", b"\x92\x16", b"\x92\x17", b"\x92\x18",
            b"\xcd\xc3\x50", b"\xcc\xff", samples.CHAIN_ID.encode()),
)  # fmt: skip
