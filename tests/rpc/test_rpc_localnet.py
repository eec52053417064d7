"""End-to-end tests of the traders' interface on a 4-validator localnet (issue 6).

One localnet serves the whole module (started once: the tests use different accounts
and only ever wait for heights, so they do not disturb each other). Trading goes
through the CLI (``appchaind tx/query/watch ... --json``) and the client library.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio

from appchaind.chain import codec, types
from appchaind.chain.crypto import PrivateKey
from appchaind.client.library import RpcError, open_client
from appchaind.exchange.txs import Faucet
from appchaind.localnet.processes import Localnet

pytestmark = pytest.mark.slow

#: [rpc] settings for the test nodes: a small subscriber queue so the slow-subscriber
#: test drops its subscriber within seconds.
RPC_OVERRIDES = {"subscriber_queue_messages": 16}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    localnet = Localnet(tmp_path_factory.mktemp("rpc") / "net", spare_nodes=0)
    for home in localnet.homes:
        config = home / "config.toml"
        text = config.read_text()
        for key, value in RPC_OVERRIDES.items():
            lines = [f"{key} = {value}" if line.startswith(f"{key} =") else line
                     for line in text.splitlines()]  # fmt: skip
            text = "\n".join(lines) + "\n"
        config.write_text(text)
    localnet.start_all()
    try:
        localnet.wait_height([0, 1, 2, 3], 2)
        yield localnet
    finally:
        localnet.close()


def rpc(net: Localnet, i: int) -> str:
    return f"127.0.0.1:{net.nodes[i].rpc_port}"


def account_key(net: Localnet, name: str) -> Path:
    return net.dir / "accounts" / f"{name}.json"


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "appchaind.cli", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"appchaind {' '.join(args)} failed: {proc.stdout}{proc.stderr}")
    return proc


def cli_json(*args: str, check: bool = True) -> Any:
    return json.loads(cli(*args, "--json", check=check).stdout)


def oracle(net: Localnet, market: str) -> Decimal:
    for m in net.get(0, "/markets")["markets"]:
        if m["market"] == market:
            return Decimal(m["oracle_price"])
    raise AssertionError(market)


def on_tick(price: Decimal, tick: str = "0.1") -> str:
    """``price`` rounded to the tick, as the chain writes decimals (no trailing zeros)."""
    return format(price.quantize(Decimal(tick)).normalize(), "f")


def position(doc: dict[str, Any], market: str) -> Decimal:
    return sum((Decimal(p["size"]) for p in doc["positions"] if p["market"] == market), Decimal(0))


# ---------------------------------------------------------------------------- trading


def test_cli_cross_fill_on_every_node_and_in_watch(net: Localnet) -> None:
    seller, buyer = account_key(net, "trader0"), account_key(net, "trader1")
    buyer_address = PrivateKey.load(buyer).address.hex()
    watch = subprocess.Popen(
        [sys.executable, "-m", "appchaind.cli", "watch", "account", "--key", str(buyer),
         "--node", rpc(net, 3), "--json", "--count", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.5)  # the watcher subscribes before the fill
        price = on_tick(oracle(net, "BTC-PERP"))
        placed = cli_json("tx", "order", "place", "--market", "BTC-PERP", "--side", "sell",
                          "--size", "0.01", "--price", price, "--key", str(seller),
                          "--node", rpc(net, 0))  # fmt: skip
        assert placed["code"] == 0 and placed["fills"] == [] and placed["height"] > 0
        taken = cli_json("tx", "order", "place", "--market", "BTC-PERP", "--side", "buy",
                         "--size", "0.01", "--price", price, "--key", str(buyer),
                         "--node", rpc(net, 2))  # fmt: skip
        assert taken["code"] == 0, taken
        assert set(taken) >= {"tx_hash", "code", "log", "height", "fills"}
        (fill,) = taken["fills"]
        assert Decimal(fill["price"]) == Decimal(price)
        assert fill["size"] == "0.01" and fill["taker_side"] == "buy"
        assert fill["maker_order_id"] == placed["order_id"]
        net.wait_height([0, 1, 2, 3], taken["height"])
        for i in range(4):
            doc = cli_json("query", "account", buyer_address, "--node", rpc(net, i))
            assert doc["address"] == buyer_address
            assert {"balance", "positions", "open_orders"} <= set(doc)
            assert position(doc, "BTC-PERP") >= Decimal("0.01"), (i, doc)
        found = cli_json("query", "tx", taken["tx_hash"], "--node", rpc(net, 1))
        assert found["height"] == taken["height"] and found["fills"] == taken["fills"]
        out, err = watch.communicate(timeout=30)
        item = json.loads(out.splitlines()[0])
        assert item["address"] == buyer_address
        assert any(e["kind"] == "fill" and e["tx_hash"] == taken["tx_hash"] for e in item["events"])
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()


def test_markets_json_and_off_tick_error(net: Localnet) -> None:
    markets = cli_json("query", "markets", "--node", rpc(net, 1))
    btc = next(m for m in markets if m["market"] == "BTC-PERP")
    assert btc["tick_size"] == "0.1" and btc["lot_size"] == "0.0001"
    assert Decimal(btc["oracle_price"]) > 0
    proc = cli("tx", "order", "place", "--market", "BTC-PERP", "--side", "buy", "--size",
               "0.00015", "--price", "65000", "--key", str(account_key(net, "trader2")),
               "--node", rpc(net, 0), check=False)  # fmt: skip
    assert proc.returncode == 1
    assert "nearest valid values are 0.0001 and 0.0002" in proc.stderr
    proc = cli("tx", "order", "place", "--market", "BTC-PERP", "--side", "buy", "--size",
               "0.001", "--price", "65000.05", "--key", str(account_key(net, "trader2")),
               "--node", rpc(net, 0), check=False)  # fmt: skip
    assert "nearest valid values are 65000 and 65000.1" in proc.stderr


async def test_market_post_only_stop_and_cancel(net: Localnet) -> None:
    maker = PrivateKey.load(account_key(net, "trader2"))
    taker = PrivateKey.load(account_key(net, "trader3"))
    async with open_client(rpc(net, 1)) as c:
        price = Decimal((await c.market("ETH-PERP"))["oracle_price"])
        ask = on_tick(price * Decimal("1.001"), "0.01")
        rest = await c.place_order(maker, "ETH-PERP", "sell", "1", price=ask)
        assert rest.ok and rest.fills == []
        # A market buy takes the resting ask at the ask's price.
        market = await c.place_order(taker, "ETH-PERP", "buy", "0.2", order_type="market")
        assert market.ok, market.log
        assert [(f["price"], f["size"]) for f in market.fills] == [(ask, "0.2")]
        # A post-only buy at the ask would take liquidity: refused with code 22.
        post = await c.place_order(taker, "ETH-PERP", "buy", "0.1", price=ask, tif="post-only")
        assert post.code == 22 and "post-only" in post.log
        # A buy stop-market whose trigger the oracle is already above fires at the end of
        # the block and takes the ask.
        trigger = on_tick(price * Decimal("0.95"), "0.01")
        stop = await c.place_order(
            taker, "ETH-PERP", "buy", "0.3", order_type="stop-market", trigger=trigger
        )
        assert stop.ok and stop.fills == []
        assert [e["status"] for e in stop.events if e["kind"] == "order"] == ["conditional"]
        stop_id = stop.order_id
        deadline = trio.current_time() + 20
        while True:
            account = await c.account(taker.address)
            if position(account, "ETH-PERP") >= Decimal("0.5"):
                break
            assert trio.current_time() < deadline, account
            await trio.sleep(0.2)
        assert all(o["order_id"] != stop_id for o in account["open_orders"])
        # Cancel the rest of the maker's ask.
        cancel = await c.cancel_order(maker, "ETH-PERP", order_id=rest.order_id)
        assert cancel.ok, cancel.log
        assert [e["status"] for e in cancel.events if e["kind"] == "order"] == ["cancelled"]
        book = await c.book("ETH-PERP")
        assert [ask, "0.5"] not in book["asks"]
        again = await c.cancel_order(maker, "ETH-PERP", order_id=rest.order_id)
        assert again.code == 25  # ORDER_NOT_FOUND


def test_cli_builder_register_bond_unbond_and_query(net: Localnet) -> None:
    """The localnet's builder account registers with a bond of 1000 through node 0, bonds
    10 more through node 1 and starts unbonding 4 through node 2; node 3 reports the
    builder with bond 1006 and 4 released at the unbonding height."""
    key = str(account_key(net, "builder"))
    address = PrivateKey.load(Path(key)).address.hex()
    done = cli_json("tx", "builder", "register", "--name", "demo-builder", "--bond", "1000",
                    "--key", key, "--node", rpc(net, 0))  # fmt: skip
    assert done["code"] == 0, done
    done = cli_json("tx", "builder", "bond", "--amount", "10", "--key", key,
                    "--node", rpc(net, 1))  # fmt: skip
    assert done["code"] == 0, done
    done = cli_json("tx", "builder", "unbond", "--amount", "4", "--key", key,
                    "--node", rpc(net, 2))  # fmt: skip
    assert done["code"] == 0, done
    (event,) = [e for e in done["events"] if e["kind"] == "builder_unbonding"]
    assert event["amount"] == "4" and event["bond"] == "1006"
    net.wait_height([3], done["height"])
    doc = cli_json("query", "builders", "--node", rpc(net, 3))
    (builder,) = [b for b in doc["builders"] if b["address"] == address]
    assert (builder["name"], builder["bond"]) == ("demo-builder", "1006")
    assert builder["unbonding"] == [{"release_height": event["release_height"], "amount": "4"}]
    again = cli("tx", "builder", "register", "--name", "again", "--bond", "1000", "--key", key,
                "--node", rpc(net, 0), check=False)  # fmt: skip
    assert again.returncode == 1 and "already a builder" in again.stderr + again.stdout
    table = cli("query", "builders", "--node", rpc(net, 3)).stdout
    assert "demo-builder" in table and "1006" in table


async def test_book_and_trade_streams(net: Localnet) -> None:
    maker = PrivateKey.load(account_key(net, "maker"))
    taker = PrivateKey.load(account_key(net, "trader0"))
    async with open_client(rpc(net, 2)) as c:
        book = await c.subscribe("book", market="BTC-PERP")
        trades = await c.subscribe("trades", market="BTC-PERP")
        blocks = await c.subscribe("blocks")
        seq = book.snapshot["seq"]
        bid = on_tick(Decimal((await c.market("BTC-PERP"))["oracle_price"]) * Decimal("0.999"))
        placed = await c.place_order(maker, "BTC-PERP", "buy", "0.02", price=bid)
        with trio.fail_after(20):
            async for item in book:
                assert item["seq"] == seq + 1, "book deltas are gapless"
                seq = item["seq"]
                if [bid, "0.02"] in item["bids"] or any(p == bid for p, _ in item["bids"]):
                    break
            sold = await c.place_order(taker, "BTC-PERP", "sell", "0.02", price=bid, tif="ioc")
            assert sold.ok and sold.fills
            async for item in trades:
                if any(f["taker_order_id"] == sold.order_id for f in item["fills"]):
                    break
            async for block in blocks:
                if block["height"] >= sold.height:
                    break
        assert placed.ok


# ---------------------------------------------------------------------------- operations


def test_metrics_show_consensus_and_exchange(net: Localnet) -> None:
    net.wait_height([0], net.height(0) + 2)
    text = net.get_text(0, "/metrics")
    for name in (
        "appchaind_consensus_height",
        "appchaind_consensus_block_interval_seconds",
        "appchaind_mempool_size",
        "appchaind_p2p_peers",
        'appchaind_exchange_oracle_price{chain_id="test-net",market="BTC-PERP"}',
        "appchaind_exchange_open_interest",
        "appchaind_exchange_insurance_fund",
        "appchaind_exchange_liquidations",
        "appchaind_exchange_mid_price",
        "appchaind_rpc_connections",
    ):
        assert name in text, name
    assert net.get(1, "/validators")["total_power"] == 40
    assert net.get(1, "/net_info")["n_peers"] == 3
    book = net.get(2, "/book/BTC-PERP?depth=5")
    assert set(book) >= {"bids", "asks", "seq", "height"}


def _raw_rpc(port: int, data: bytes) -> list[Any]:
    """Sends ``data`` and reads frames until the server closes or 2 s pass."""
    frames = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        s.settimeout(2)
        buffer = b""
        try:
            while chunk := s.recv(65536):
                buffer += chunk
        except TimeoutError:
            pass
    while len(buffer) >= 4:
        (n,) = struct.unpack(">I", buffer[:4])
        frames.append(msgpack.unpackb(buffer[4 : 4 + n]))
        buffer = buffer[4 + n :]
    return frames


def _frame(value: Any) -> bytes:
    payload = value if isinstance(value, bytes) else msgpack.packb(value)
    return struct.pack(">I", len(payload)) + payload


def test_malformed_requests_get_errors_and_the_node_keeps_committing(net: Localnet) -> None:
    port = net.nodes[0].rpc_port
    before = net.height(0)
    # Garbage inside a frame: an error naming the problem; the connection carries on.
    (garbage, answer) = _raw_rpc(port, _frame(b"\xc1\xc1garbage") + _frame([0, 7, "status", {}]))
    assert garbage[2]["code"] == 1 and "not valid msgpack" in garbage[2]["message"]
    assert answer[1] == 7 and answer[3]["chain_id"] == "test-net"
    (shape,) = _raw_rpc(port, _frame({"method": "status"}))
    assert "[0, id, method, params]" in shape[2]["message"]
    # Oversized: the frame's length prefix is over max_message_bytes.
    (oversized,) = _raw_rpc(port, struct.pack(">I", 50_000_000) + b"x" * 100)
    assert oversized[2]["code"] == 2 and "over the limit" in oversized[2]["message"]
    (unknown,) = _raw_rpc(port, _frame([0, 3, "steal_funds", {}]))
    assert unknown[1] == 3 and unknown[2]["code"] == 3
    assert "unknown method 'steal_funds'" in unknown[2]["message"]
    (bad_params,) = _raw_rpc(port, _frame([0, 4, "account", {"address": "zz"}]))
    assert "address must be 40 hex characters" in bad_params[2]["message"]
    # Bad signature and wrong chain id, on the RPC port and on the HTTP port.
    key = PrivateKey.load(account_key(net, "trader3"))
    expiry = net.height(0) + 100
    now = int(time.time() * 1000)

    def forged(nonce: int) -> bytes:
        """A faucet tx whose nonce was changed after signing."""
        good = types.sign_tx(key, "test-net", nonce, expiry, Faucet(1_000_000))
        return codec.encode(
            types.Tx(good.chain_id, good.sender, nonce + 1, expiry, good.body, good.signature)
        )

    def wrong_chain(nonce: int) -> bytes:
        return codec.encode(types.sign_tx(key, "other-chain", nonce, expiry, Faucet(1)))

    (sig,) = _raw_rpc(port, _frame([0, 5, "broadcast_tx", {"tx": forged(now), "mode": "sync"}]))
    assert sig[3]["code"] == 2 and "invalid signature" in sig[3]["log"]
    (chain,) = _raw_rpc(
        port, _frame([0, 6, "broadcast_tx", {"tx": wrong_chain(now), "mode": "sync"}])
    )
    assert chain[3]["code"] == 3 and "wrong chain id 'other-chain'" in chain[3]["log"]
    http = net.http_ports[0]
    for body, status, words in (
        (b"\x00garbage", 400, "malformed tx"),
        (json.dumps({"tx": forged(now + 10).hex()}).encode(), 400, "invalid signature"),
        (json.dumps({"tx": wrong_chain(now + 10).hex()}).encode(), 400, "wrong chain id"),
        (b"{not json", 400, "expected a JSON body"),
        (b"x" * (2 * 1024 * 1024), 413, "larger than"),
    ):
        request = urllib.request.Request(f"http://127.0.0.1:{http}/tx", data=body, method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == status
        doc = json.loads(caught.value.read())
        assert doc["error"]["code"] == status and words in doc["error"]["message"], doc
    for path, status in (("/nothing", 404), ("/account/xyz", 400), ("/book/DOGE-PERP", 400),
                         ("/tx/" + "00" * 32, 404)):  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"http://127.0.0.1:{http}{path}", timeout=5)
        assert caught.value.code == status
        assert json.loads(caught.value.read())["error"]["message"]
    net.wait_height([0, 1, 2, 3], before + 5)


def test_slow_subscriber_is_dropped_and_blocks_keep_coming(net: Localnet) -> None:
    port = net.nodes[3].rpc_port
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.connect(("127.0.0.1", port))
    try:
        requests = b"".join(
            _frame([0, i, "subscribe", {"stream": "blocks"}]) for i in range(1, 33)
        ) + _frame([0, 99, "subscribe", {"stream": "book", "market": "BTC-PERP"}])
        s.sendall(requests)
        start_height = net.height(3)
        started = time.monotonic()

        def dropped() -> bool:
            for line in net.get_text(3, "/metrics").splitlines():
                if line.startswith("appchaind_rpc_dropped_subscribers_total{"):
                    return float(line.rsplit(" ", 1)[1]) >= 1
            return False

        net.wait_until(dropped, "the slow subscriber to be dropped", deadline_s=60)
        # Blocks kept coming while it was stuck, and still come with it connected.
        net.wait_height([0, 1, 2, 3], start_height + 10)
        assert time.monotonic() - started < 30
    finally:
        s.close()


def test_broadcasts_in_one_write_are_each_answered_and_committed(net: Localnet) -> None:
    """Many ``broadcast_tx`` requests in one write (the node admits a read's txs together):
    each is answered on its own id with its own verdict, a bad request among them changes
    nothing for the others, and every accepted tx commits."""
    port = net.nodes[1].rpc_port
    key = PrivateKey(b"\x5a" * 32)
    expiry = net.height(0) + 100
    now = int(time.time() * 1000)  # nonces are milliseconds, within the chain's window
    txs = [codec.encode(types.sign_tx(key, "test-net", now + n, expiry, Faucet(1_000 + n)))
           for n in range(1, 21)]  # fmt: skip
    good = types.sign_tx(key, "test-net", now + 99, expiry, Faucet(5))
    forged = codec.encode(
        types.Tx(good.chain_id, good.sender, now + 100, expiry, good.body, good.signature)
    )
    requests = [[0, 100 + n, "broadcast_tx", {"tx": raw, "mode": "sync"}]
                for n, raw in enumerate(txs)]  # fmt: skip
    requests[5:5] = [
        [0, 1, "broadcast_tx", {"tx": 5}],
        [0, 2, "status", {}],
        [0, 3, "broadcast_tx", {"tx": forged}],
        [0, 4, "broadcast_tx", {"tx": txs[0]}],
        [0, 5, "broadcast_tx", {"tx": codec.encode(good), "mode": "sync", "timeout_s": -1}],
    ]
    answers = {a[1]: a for a in _raw_rpc(port, b"".join(_frame(r) for r in requests))}
    assert sorted(answers) == [1, 2, 3, 4, 5, *range(100, 120)]
    assert answers[1][2]["code"] == 4 and "tx must be" in answers[1][2]["message"]
    assert answers[2][3]["chain_id"] == "test-net"
    assert answers[3][3]["code"] == 2 and "invalid signature" in answers[3][3]["log"]
    assert answers[4][3]["code"] == 43  # ALREADY_KNOWN: the same tx earlier in the write
    assert answers[5][2]["code"] == 4 and "timeout_s" in answers[5][2]["message"]
    assert [answers[100 + n][3]["code"] for n in range(20)] == [0] * 20
    assert [answers[100 + n][3]["tx_hash"] for n in range(20)] == [
        types.tx_hash(raw).hex() for raw in txs
    ]

    async def committed() -> None:
        async with open_client(f"127.0.0.1:{port}") as client:
            with trio.fail_after(60):
                for raw in txs:
                    while True:
                        try:
                            found = await client.request("tx", {"hash": types.tx_hash(raw).hex()})
                        except RpcError:  # not committed yet
                            await trio.sleep(0.2)
                            continue
                        assert found["code"] == 0 and found["height"] > 0
                        break

    trio.run(committed)
