"""What an outsider can reach (docs/security.md): key files private, keys never logged,
no port action without a signed tx, the chain id in every signed message.

The unit tests need no running node; the last ones run one validator (with debug
logging) as a real process and talk to its ports.
"""

from __future__ import annotations

import base64
import inspect
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from appchaind.chain import codec, crypto, types
from appchaind.chain.crypto import KeyFileError, PrivateKey
from appchaind.cli import main as cli_main
from appchaind.client.library import open_client
from appchaind.consensus.privval import FileSignStateStore, file_signer
from appchaind.consensus.wal import WAL
from appchaind.exchange.txs import Faucet
from appchaind.home import init_home
from appchaind.http.routes import make_http_server
from appchaind.localnet.homes import init_localnet
from appchaind.localnet.processes import Localnet
from appchaind.node.node import Node
from appchaind.node.view import NodeView
from appchaind.rpc.server import RpcServer
from p2p.transport import HANDSHAKE_KIND, PeerError, handshake

CHAIN_A = "chain-a"
CHAIN_B = "chain-b"
KEY = PrivateKey(b"\x21" * 32)

#: What the ports answer: reads, and one way in for a change (a signed tx).
RPC_READS = {
    "status", "account", "book", "markets", "builders", "validators", "delegations", "tx",
    "block", "trades", "liquidations",
}  # fmt: skip
RPC_SIGNED_TX = {"broadcast_tx"}
HTTP_READS = {
    ("GET", name)
    for name in ("", "status", "block", "metrics", "tx", "markets", "book", "account",
                 "validators", "net_info", "trades", "liquidations")
}  # fmt: skip
HTTP_SIGNED_TX = {("POST", "tx")}


@pytest.fixture
def private_umask() -> Iterator[None]:
    """No umask: a file's mode is what the code asked for, not what the shell masks."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


# ---------------------------------------------------------------------------- key files


@pytest.mark.usefixtures("private_umask")
def test_every_secret_file_is_written_0600_whatever_the_umask(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_home(home, moniker="v", chain_id=CHAIN_A, genesis_time="2026-01-01T00:00:00Z")
    assert _mode(home / "node_key.json") == 0o600
    assert _mode(home / "validator_key.json") == 0o600
    assert cli_main(["keys", "add", "alice", "--keyring", str(tmp_path / "keys")]) == 0
    assert _mode(tmp_path / "keys" / "alice.json") == 0o600
    init_localnet(tmp_path / "net", 1, base_port=30000)
    accounts = list((tmp_path / "net" / "accounts").glob("*.json"))
    assert accounts and all(_mode(path) == 0o600 for path in accounts)
    # The signer's state and the WAL, including when a crash left a temporary file
    # behind with a looser mode (os.open's mode applies only to a new file).
    data = home / "data"
    for leftover in ("sign_state.tmp", "cs.tmp"):
        (data / leftover).write_text("left by a crash")
        os.chmod(data / leftover, 0o644)
    signer = file_signer(KEY, CHAIN_A, data / "sign_state.json")
    signer.sign_proposal(types.Proposal(1, 0, -1, b"\x01" * 32, 1, KEY.address, b"\x00" * 64))
    assert _mode(data / "sign_state.json") == 0o600
    wal = WAL(data / "cs.wal")
    assert _mode(data / "cs.wal") == 0o600
    wal.append(b"record")
    wal.reset(b"next height")
    wal.close()
    assert _mode(data / "cs.wal") == 0o600
    assert FileSignStateStore(data / "sign_state.json").load() is not None


@pytest.mark.parametrize("name", ["validator_key.json", "node_key.json"])
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660], ids=oct)
def test_a_node_refuses_a_key_file_other_users_can_open(
    tmp_path: Path, name: str, mode: int
) -> None:
    # Chosen: refuse, as ssh refuses such a private key. A warning in a log nobody reads
    # would leave a validator key readable by every account on the machine.
    home = tmp_path / "home"
    init_home(home, moniker="v", chain_id=CHAIN_A, genesis_time="2026-01-01T00:00:00Z")
    os.chmod(home / name, mode)
    with pytest.raises(KeyFileError, match=rf"{name} is open to other users .*chmod 600"):
        Node(home)
    os.chmod(home / name, 0o600)
    Node(home).store.close()


def test_a_private_key_never_shows_in_its_repr() -> None:
    seed = KEY.seed
    for text in (repr(KEY), str(KEY)):
        assert seed.hex() not in text
        assert base64.b64encode(seed).decode() not in text


# ---------------------------------------------------------------------------- the ports


def test_the_ports_offer_reads_and_signed_txs_and_nothing_else(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_home(home, moniker="v", chain_id=CHAIN_A, genesis_time="2026-01-01T00:00:00Z")
    node = Node(home)
    try:
        rpc = RpcServer(node)
        assert set(rpc._methods) == RPC_READS | RPC_SIGNED_TX
        http = make_http_server(node, rpc, lambda: b"")
        assert set(http.routes) == HTTP_READS | HTTP_SIGNED_TX
    finally:
        node.store.close()
    # What the ports see of the node: its only way to change anything admits a signed tx
    # into the mempool (subscribe/unsubscribe are per connection, in the RPC server).
    members = {name for name in dir(NodeView) if not name.startswith("_")}
    changing = {name for name in members if inspect.iscoroutinefunction(getattr(NodeView, name))}
    assert changing == {"submit_tx", "submit_txs"}


# ---------------------------------------------------------------------------- chain ids


def test_every_signed_message_binds_the_chain_id() -> None:
    # A tx: its envelope names the chain, and the signature covers the name.
    tx = types.sign_tx(KEY, CHAIN_A, 1, 10, Faucet(5))
    assert tx.verify_signature()
    moved = types.Tx(CHAIN_B, tx.sender, tx.nonce, tx.expiry_height, tx.body, tx.signature)
    assert not moved.verify_signature()
    # A vote and its extension, a proposal: signed for A, they do not verify for B.
    vote = types.sign_vote(
        KEY, CHAIN_A, kind=types.PRECOMMIT, height=5, round=0, block_hash=b"\xaa" * 32,
        timestamp_ms=1, validator_index=0, extension=b"prices",
    )  # fmt: skip
    assert vote.verify_signature(CHAIN_A, KEY.public_key)
    assert not vote.verify_signature(CHAIN_B, KEY.public_key)
    assert not crypto.verify(
        KEY.public_key, vote.extension_sign_bytes(CHAIN_B), vote.extension_signature
    )
    proposal = types.sign_proposal(
        KEY, CHAIN_A, height=5, round=0, pol_round=-1, block_hash=b"\xaa" * 32, timestamp_ms=1
    )
    assert proposal.verify_signature(CHAIN_A, KEY.public_key)
    assert not proposal.verify_signature(CHAIN_B, KEY.public_key)
    # The p2p handshake's transcript signature, and sign_bytes for any kind.
    transcript = b"\x01" * 64
    signature = KEY.sign_message(CHAIN_A, HANDSHAKE_KIND, transcript)
    assert crypto.verify(
        KEY.public_key, crypto.sign_bytes(CHAIN_A, HANDSHAKE_KIND, transcript), signature
    )
    assert not crypto.verify(
        KEY.public_key, crypto.sign_bytes(CHAIN_B, HANDSHAKE_KIND, transcript), signature
    )


def test_the_p2p_handshake_refuses_a_peer_of_another_chain() -> None:
    async def main() -> list[str]:
        left, right = trio.testing.memory_stream_pair()
        errors: list[str] = []

        async def side(stream: trio.abc.Stream, key: PrivateKey, chain_id: str) -> None:
            try:
                await handshake(stream, key, chain_id)
            except PeerError as exc:
                errors.append(str(exc))
            await stream.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(side, left, PrivateKey(b"\x01" * 32), CHAIN_A)
            nursery.start_soon(side, right, PrivateKey(b"\x02" * 32), CHAIN_B)
        return errors

    errors = trio.run(main)
    assert any("peer is on chain" in error for error in errors), errors


# ---------------------------------------------------------------------------- a running node


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    net = Localnet(
        tmp_path_factory.mktemp("security") / "net", validators=1, spare_nodes=0,
        config_overrides={"logging": {"level": "debug"}},
    )  # fmt: skip
    try:
        net.start_all()
        net.wait_height([0], 2)
        yield net
    finally:
        net.close()


def _post(net: Localnet, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{net.http_ports[0]}{path}", data=body, method="POST",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _rpc(net: Localnet, method: str, params: dict[str, Any]) -> Any:
    address = f"127.0.0.1:{net.nodes[0].rpc_port}"

    async def call() -> Any:
        async with open_client(address) as client:
            try:
                return await client.request(method, params)
            except Exception as exc:  # the RPC error, as the client raises it
                return exc

    return trio.run(call)


@pytest.mark.slow
def test_txs_not_signed_by_their_sender_are_refused_on_both_ports(running: Localnet) -> None:
    trader = PrivateKey(b"\x31" * 32)
    good = types.sign_tx(trader, running.chain_id, 1, 10_000, Faucet(5))
    forged = codec.encode(
        types.Tx(good.chain_id, good.sender, good.nonce, good.expiry_height, Faucet(6),
                 good.signature)
    )  # fmt: skip
    unsigned = codec.encode(
        types.Tx(good.chain_id, good.sender, 2, good.expiry_height, Faucet(5), b"\x00" * 64)
    )
    other_chain = codec.encode(types.sign_tx(trader, "another-net", 3, 10_000, Faucet(5)))
    for raw in (forged, unsigned, other_chain):
        status, answer = _post(running, "/tx", json.dumps({"tx": raw.hex()}).encode())
        assert answer.get("code", 0) != 0, (status, answer)
        reply = _rpc(running, "broadcast_tx", {"tx": raw})
        assert isinstance(reply, dict) and reply["code"] != 0, reply


@pytest.mark.slow
def test_no_admin_method_answers_on_either_port(running: Localnet) -> None:
    for method in ("unsafe_reset_all", "unsafe_flush_mempool", "dial_peers", "stop", "admin"):
        reply = _rpc(running, method, {})
        assert "unknown method" in str(reply).lower(), reply
        status, _ = _post(running, f"/{method}", b"{}")
        assert status in (404, 405)


@pytest.mark.slow
def test_no_key_material_in_a_debug_log(running: Localnet) -> None:
    # A tx admitted and committed, blocks proposed and signed, all at debug level.
    trader = PrivateKey.load(next((running.dir / "accounts").glob("*.json")))
    answer = running.submit(0, running.faucet_tx(trader, 1_000))
    assert answer["code"] == 0, answer
    running.wait_height([0], running.height(0) + 2)
    home = running.homes[0]
    log = (home / "node.log").read_text()
    assert 'level = "debug"' in (home / "config.toml").read_text()
    for key in (PrivateKey.load(home / "validator_key.json"),
                PrivateKey.load(home / "node_key.json"), trader):  # fmt: skip
        secret = key.seed + key.public_key  # libsodium's 64-byte secret key
        for material in (key.seed, secret):
            for text in (material.hex(), base64.b64encode(material).decode(),
                         base64.urlsafe_b64encode(material).decode(), repr(material)[2:-1]):  # fmt: skip
                assert text not in log
