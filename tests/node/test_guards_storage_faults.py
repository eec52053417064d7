"""Storage faults on a real node's home, with real ``appchaind start`` processes: a
torn WAL tail is recovered and the node goes on; a WAL damaged in the middle, a damaged
LevelDB or another chain's genesis stops the node at start with one line that names the
damage and what to do, exit status 1, no traceback.

One single-validator chain is run once (to height 5, over two starts, so the LevelDB
holds a table file and a log); each test damages a copy of it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import plyvel
import pytest

from appchaind.chain import types
from appchaind.chain.crypto import PrivateKey
from appchaind.consensus.privval import file_signer
from appchaind.consensus.wal import WAL
from appchaind.localnet.processes import Localnet
from appchaind.node.messages import VoteMessage, encode_message
from appchaind.store import Store

START_TIMEOUT_S = 60

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The directory of a stopped one-validator localnet at height 5 or more."""
    directory = tmp_path_factory.mktemp("chain") / "net"
    net = Localnet(directory, validators=1, spare_nodes=0)
    try:
        net.start_all()
        net.wait_height([0], 3)
        net.stop_all()
        net.start_all()  # reopening turns LevelDB's log into a table file
        net.wait_height([0], 5)
        net.stop_all()
    finally:
        net.close()
    yield directory


@pytest.fixture
def net(chain: Path, tmp_path: Path) -> Iterator[Localnet]:
    """A copy of the chain, its node not running."""
    shutil.copytree(chain, tmp_path / "net")
    localnet = Localnet.open(tmp_path / "net")
    try:
        yield localnet
    finally:
        localnet.close()


def start_refused(home: Path) -> str:
    """Runs ``appchaind start`` and returns its one error line (it must exit 1 at once)."""
    proc = subprocess.run(
        [sys.executable, "-m", "appchaind.cli", "start", "--home", str(home)],
        capture_output=True, text=True, timeout=START_TIMEOUT_S,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-2000:]
    return errors[0]


def stored_height(home: Path) -> int:
    with Store(home / "data") as store:
        return store.latest_height()


# ---------------------------------------------------------------------------- the WAL


def own_nil_votes(home: Path, height: int) -> list[bytes]:
    """This validator's prevote and precommit for nil at ``height``, round 0, signed
    through its guarded signer (so its sign state records them) and encoded as the node
    logs them: what a validator leaves in its WAL when it crashes after voting."""
    key = PrivateKey.load(home / "validator_key.json")
    genesis = json.loads((home / "genesis.json").read_text())
    signer = file_signer(key, genesis["chain_id"], home / "data" / "sign_state.json")
    records = []
    for kind in (types.PREVOTE, types.PRECOMMIT):
        template = types.Vote(kind, height, 0, b"", 1, key.address, 0, b"", b"\x00" * 64, b"")
        records.append(encode_message(VoteMessage(signer.sign_vote(template))))
    return records


def write_wal(home: Path, records: list[bytes]) -> bytes:
    wal = WAL(home / "data" / "cs.wal")
    for record in records:
        wal.append(record)
    wal.close()
    return (home / "data" / "cs.wal").read_bytes()


def _cut_in_header(whole: bytes, last: int) -> bytes:
    return whole[: len(whole) - last + 3]


def _cut_in_payload(whole: bytes, last: int) -> bytes:
    return whole[: len(whole) - last // 2]


def _zeroed_payload(whole: bytes, last: int) -> bytes:
    return whole[: len(whole) - last // 2] + bytes(last // 2)


@pytest.mark.parametrize(
    "tear", [_cut_in_header, _cut_in_payload, _zeroed_payload], ids=lambda f: f.__name__[1:]
)
def test_a_torn_wal_tail_is_cut_and_the_node_replays_the_rest_and_goes_on(
    net: Localnet, tear: Callable[[bytes, int], bytes]
) -> None:
    home = net.homes[0]
    height = stored_height(home)
    prevote, precommit = own_nil_votes(home, height + 1)
    whole = write_wal(home, [prevote, precommit])
    (home / "data" / "cs.wal").write_bytes(tear(whole, 8 + len(precommit)))
    net.start(0)
    net.wait_height([0], height + 2)
    net.stop_all()
    log = (home / "node.log").read_text()
    last_start = log[log.rindex("node_started") :]
    # The prevote was replayed (the torn precommit was cut), and the chain went on.
    assert f"wal_replayed height={height + 1} records=1" in log
    assert "error" not in last_start.lower()


@pytest.mark.parametrize("where", ["payload", "length"])
def test_a_wal_damaged_in_the_middle_stops_the_node_naming_the_file(
    net: Localnet, where: str
) -> None:
    home = net.homes[0]
    whole = bytearray(write_wal(home, own_nil_votes(home, stored_height(home) + 1)))
    if where == "payload":
        whole[20] ^= 0xFF
    else:
        whole[1] = 0x7F  # the first record's length now reaches past the end of the file
    (home / "data" / "cs.wal").write_bytes(bytes(whole))
    line = start_refused(home)
    assert f"{home / 'data' / 'cs.wal'} is corrupted at byte 0" in line
    assert "move the file aside" in line
    assert (home / "data" / "cs.wal").read_bytes() == bytes(whole)  # nothing was cut


# ---------------------------------------------------------------------------- LevelDB


def _garble_tables(data: Path) -> None:
    tables = sorted((data / "leveldb").glob("*.ldb"))
    assert tables, "the chain fixture should have left a table file"
    for table in tables:
        content = bytearray(table.read_bytes())
        for i in range(64, len(content) - 64, 7):
            content[i] ^= 0x5A
        table.write_bytes(bytes(content))


def _remove_current(data: Path) -> None:
    (data / "leveldb" / "CURRENT").unlink()


def _remove_manifest(data: Path) -> None:
    for manifest in (data / "leveldb").glob("MANIFEST-*"):
        manifest.unlink()


def _put(key: bytes, value: bytes) -> Callable[[Path], None]:
    def put(data: Path) -> None:
        db = plyvel.DB(str(data / "leveldb"))
        db.put(key, value)
        db.close()

    return put


def _garble_an_account(data: Path) -> None:
    db = plyvel.DB(str(data / "leveldb"))
    # One whose repr is b'...' (a random address holding a quote byte reprs as b"...").
    key = next(k for k in db.iterator(prefix=b"s/a/", include_value=False) if b"'" not in k)
    db.put(key, b"\xc1 not msgpack")
    db.close()


def _garble_latest_block(data: Path) -> None:
    db = plyvel.DB(str(data / "leveldb"))
    latest = db.get(b"m/latest_height")
    db.put(b"b/" + latest, b"\x01")
    db.close()


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_garble_tables, "Corruption: "),
        (_remove_current, "has no CURRENT file"),
        (_remove_manifest, "Corruption: CURRENT points to a non-existent file"),
        (_put(b"m/chain_state", b"\x93 not a chain state"), "the consensus state is unreadable"),
        (_put(b"s/~meta", b"\xc1"), "stored record b's/~meta' is unreadable"),
        (_garble_an_account, "stored record b's/a/"),
        (_garble_latest_block, "is unreadable"),
        (_put(b"m/latest_height", (1).to_bytes(8, "big")), "disagree"),
    ],
    ids=[
        "table", "current", "manifest", "chain_state", "exchange_meta",
        "account", "latest_block", "latest_height",
    ],
)  # fmt: skip
def test_a_damaged_leveldb_stops_the_node_saying_what_to_do(
    net: Localnet, damage: Callable[[Path], None], problem: str
) -> None:
    home = net.homes[0]
    damage(home / "data")
    line = start_refused(home)
    assert line.startswith(f"error: the data directory {home / 'data'} is damaged (")
    assert problem in line
    assert "restore it from a backup, or sync a fresh one" in line
    assert "keep sign_state.json" in line


def test_a_leveldb_without_current_is_not_replaced_by_an_empty_one(net: Localnet) -> None:
    # LevelDB opened with create_if_missing would write a new, empty database beside the
    # old tables: the node would start a fresh chain at height 1 on a validator's home.
    home = net.homes[0]
    before = sorted(p.name for p in (home / "data" / "leveldb").iterdir())
    _remove_current(home / "data")
    start_refused(home)
    after = sorted(p.name for p in (home / "data" / "leveldb").iterdir())
    assert after == [name for name in before if name != "CURRENT"]


# ---------------------------------------------------------------------------- another chain


def _rewrite_genesis(home: Path, **changes: str) -> None:
    path = home / "genesis.json"
    genesis = json.loads(path.read_text())
    genesis.update(changes)
    path.write_text(json.dumps(genesis, indent=2))


@pytest.mark.parametrize(
    "changes",
    [{"chain_id": "another-net"}, {"genesis_time": "2031-01-01T00:00:00Z"}],
    ids=["other_chain_id", "same_chain_id_other_genesis"],
)
def test_a_node_never_starts_on_another_chains_data(net: Localnet, changes: dict[str, str]) -> None:
    home = net.homes[0]
    height = stored_height(home)
    _rewrite_genesis(home, **changes)
    line = start_refused(home)
    assert f"{home / 'data'} holds a chain with genesis hash" in line
    assert "use the right genesis or an empty data directory" in line
    assert stored_height(home) == height


def test_blocks_without_a_genesis_hash_are_refused(net: Localnet) -> None:
    # Every store records its genesis hash when first opened: one holding blocks without
    # it cannot be checked against genesis.json, so it is not trusted.
    home = net.homes[0]
    db = plyvel.DB(str(home / "data" / "leveldb"))
    db.delete(b"m/genesis_hash")
    db.close()
    line = start_refused(home)
    assert "is damaged (it holds blocks but no genesis hash)" in line
