"""``appchaind bench load`` (issue 14): the order flow a sender signs (no network), the
command line's checks, and two short runs on a 4-validator localnet: a low rate where
every order commits, and an overload against a tiny mempool where the nodes refuse with
the busy code while blocks keep coming and nothing accepted is lost.

No figure is asserted against a time budget: the runs print theirs; the assertions are
about what happened (counts, codes, heights), with generous sanity bounds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appchaind.chain import codec, types
from appchaind.chain.codes import Code
from appchaind.chain.crypto import PrivateKey
from appchaind.exchange.txs import CancelOrder, PlaceOrder
from appchaind.localnet.load import LoadOptions, OrderMix, run_load
from appchaind.localnet.load_report import longest_gap, percentile, prometheus_value
from appchaind.localnet.load_senders import (
    CANCEL_MIN_AGE_S,
    IOC_THROUGH_PPM,
    LIMIT_OFFSET_PPM,
    MAX_RESTING,
    MarketQuote,
    Sender,
    SenderPlan,
)

ROOT = Path(__file__).resolve().parent.parent
MARKETS = [MarketQuote(0, 650_000), MarketQuote(1, 350_000)]
JSON_KEYS = {
    "offered_rate", "committed_rate", "p50_ms", "p90_ms", "p99_ms", "rejected",
    "max_block_gap_ms",
}  # fmt: skip


def _sender(mix: OrderMix, accounts: int = 2) -> Sender:
    plan = SenderPlan(
        index=0, seeds=tuple(PrivateKey.generate().seed for _ in range(accounts)),
        rpc_addresses=(), connections_per_node=1, rate=100.0, offset_s=0.0, duration_s=10.0,
        mix=mix, seed=7, expiry_blocks=300,
    )  # fmt: skip
    sender = Sender(plan, "load-test", [])
    sender.markets = MARKETS
    sender.height = 40
    return sender


def _decoded(raw: bytes) -> types.Tx:
    tx = codec.decode(types.Tx, raw)
    assert tx.verify_signature()
    return tx


# ---------------------------------------------------------------------------- the order flow


def test_mix_parses_and_refuses_nonsense() -> None:
    assert OrderMix.parse("limit=60,cancel=30,ioc=10") == OrderMix(60, 30, 10)
    assert OrderMix.parse("ioc=1") == OrderMix(0, 0, 1)
    for bad in ("limit=60,fok=5", "limit=-1", "limit", "limit=0,cancel=0,ioc=0", "limit=x"):
        with pytest.raises(ValueError, match="--mix"):
            OrderMix.parse(bad)


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="--rate"):
        LoadOptions(rate=0, senders=2).check()
    with pytest.raises(ValueError, match="--accounts"):
        LoadOptions(accounts=1, senders=2).check()
    LoadOptions(senders=2).check()


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50 and percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100 and percentile([], 0.5) is None


def test_the_longest_gap_counts_a_stall_that_outlasts_the_run() -> None:
    # Blocks every 0.2 s through a run from 10 to 12: the longest gap is 0.2 s.
    steady = [9.9 + 0.2 * i for i in range(13)]
    assert abs(longest_gap(steady, 10.0, 12.0, now=20.0) - 0.2) < 1e-9
    # The chain stops at 10.5 and resumes at 15 (after the run): that whole gap counts.
    assert longest_gap([9.9, 10.1, 10.5, 15.0], 10.0, 12.0, now=20.0) == 4.5
    # No block after 10.5 by the time of the report: the gap runs to the report.
    assert longest_gap([9.9, 10.1, 10.5], 10.0, 12.0, now=20.0) == 9.5
    # No block at all: the run's start to the report.
    assert longest_gap([], 10.0, 12.0, now=20.0) == 10.0


def test_prometheus_value_reads_a_labelled_or_plain_sample() -> None:
    text = "# HELP appchaind_mempool_size x\nappchaind_mempool_size_bytes 9.0\n"
    assert (
        prometheus_value(
            text + 'appchaind_mempool_size{chain_id="c"} 12.0\n', "appchaind_mempool_size"
        )
        == 12
    )
    assert prometheus_value(text + "appchaind_mempool_size 3\n", "appchaind_mempool_size") == 3
    assert prometheus_value(text, "appchaind_mempool_size") is None


def test_limits_rest_near_the_oracle_and_iocs_cross_it() -> None:
    sender = _sender(OrderMix(limit=1, cancel=0, ioc=1))
    seen = {"gtc": 0, "ioc": 0}
    nonces: dict[bytes, int] = {}
    client_ids: dict[bytes, set[int]] = {}
    for _ in range(200):
        signed = sender.sign_next()
        tx = _decoded(signed.raw)
        assert signed.tx_hash == types.tx_hash(signed.raw).hex()
        assert tx.chain_id == "load-test" and tx.expiry_height == 40 + 300
        assert tx.nonce > nonces.get(tx.sender, 0)
        nonces[tx.sender] = tx.nonce
        order = tx.body
        assert isinstance(order, PlaceOrder)
        assert order.client_id not in client_ids.setdefault(tx.sender, set())
        client_ids[tx.sender].add(order.client_id)
        oracle = MARKETS[order.market_id].oracle
        buy = order.side == 1
        distance = (oracle - order.price) if buy else (order.price - oracle)
        if order.time_in_force == 0:
            seen["gtc"] += 1
            assert LIMIT_OFFSET_PPM[0] <= distance * 1_000_000 // oracle <= LIMIT_OFFSET_PPM[1]
        else:
            seen["ioc"] += 1
            assert order.time_in_force == 2
            assert -distance == oracle * IOC_THROUGH_PPM // 1_000_000
    assert seen["gtc"] > 50 and seen["ioc"] > 50


def test_cancels_target_the_accounts_own_accepted_orders_by_client_id() -> None:
    sender = _sender(OrderMix(limit=0, cancel=1, ioc=0), accounts=1)
    (trader,) = sender.traders
    # Nothing accepted yet: the cancel slot becomes a limit order.
    first = sender.sign_next()
    assert isinstance(_decoded(first.raw).body, PlaceOrder)
    assert sender.record.cancels_as_limits == 1
    # An order accepted just now is too young to cancel.
    trader.resting.append((first.market_id, first.client_id, time.time()))
    assert isinstance(_decoded(sender.sign_next().raw).body, PlaceOrder)
    # One accepted long enough ago is cancelled by its client id, once.
    trader.resting.appendleft((1, 77, time.time() - CANCEL_MIN_AGE_S - 1))
    cancel = _decoded(sender.sign_next().raw).body
    assert cancel == CancelOrder(1, 0, 77, True)
    assert all(entry[1] != 77 for entry in trader.resting)


def test_an_account_at_its_resting_cap_cancels_instead_of_placing() -> None:
    sender = _sender(OrderMix(limit=1, cancel=0, ioc=0), accounts=1)
    (trader,) = sender.traders
    old = time.time() - 60
    trader.resting.extend((0, client_id, old) for client_id in range(1, MAX_RESTING + 1))
    body = _decoded(sender.sign_next().raw).body
    assert body == CancelOrder(0, 0, 1, True)
    assert sender.record.limits_as_cancels == 1


def _cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appchaind.cli", "bench", "load", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )  # fmt: skip


def test_cli_refuses_bad_arguments_in_one_line(tmp_path: Path) -> None:
    for args, expected in (
        (["--mix", "limit=60,fok=40"], "--mix must look like"),
        (["--rate", "0"], "--rate must be in"),
        (["--dir", str(tmp_path)], "is not a localnet"),
        (["--dir", str(tmp_path), "--node-config", "mempool.max_txs=5"], "only to a new localnet"),
        (["--node-config", "max_txs=5"], "SECTION.KEY=VALUE"),
    ):
        proc = _cli(*args, timeout=60)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith("error: ") and expected in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------- runs on a localnet


def _processes_using(directory: str) -> list[int]:
    """Processes whose command line mentions ``directory`` (the temporary localnet)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if directory.encode() in cmdline:
            found.append(int(entry.name))
    return found


def _localnet_dir(progress: str) -> str:
    line = next(line for line in progress.splitlines() if "localnet in " in line)
    return line.rsplit("localnet in ", 1)[1].strip()


@pytest.mark.slow
def test_low_rate_run_commits_every_order() -> None:
    proc = _cli(
        "--validators", "4", "--accounts", "40", "--rate", "100", "--duration", "5",
        "--senders", "2", "--grace", "20", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stdout)
    report = json.loads(proc.stdout)
    assert JSON_KEYS <= set(report)
    assert report["submitted"] == 500 == sum(report["kinds"].values())
    assert report["rejected"] == {}
    assert report["accepted"] == report["committed"] == 500 and report["not_committed"] == 0
    assert report["mempools_at_end"] == [0, 0, 0, 0]
    # Sanity, not a budget: ordered percentiles, commits within the run's own bounds.
    assert 0 < report["p50_ms"] <= report["p90_ms"] <= report["p99_ms"] <= report["max_ms"]
    assert report["p99_ms"] < 25_000
    assert report["offered_rate"] == 100 and report["committed_rate"] > 0
    assert report["blocks"] >= 2 and report["max_block_gap_ms"] > 0
    assert report["txs_per_block"] > 0
    # Failed in a block can only be a cancel whose order is gone (filled by an IOC).
    assert set(report["failed_in_block"]) <= {"ORDER_NOT_FOUND"}
    assert _processes_using(_localnet_dir(proc.stderr)) == []


@pytest.mark.slow
def test_overload_is_refused_as_busy_while_blocks_keep_coming() -> None:
    """Offered far more than the chain commits (blocks of at most 20 txs, a backlog of two
    blocks' worth), the nodes refuse clients' txs with the retryable BUSY code and a retry
    delay, blocks keep coming, and every tx accepted is committed."""
    progress: list[str] = []
    report = run_load(
        LoadOptions(accounts=40, rate=300, duration_s=5, senders=2, grace_s=20),
        validators=4,
        config_overrides={"mempool": {"max_block_txs": 20, "backlog_blocks": 2}},
        progress=progress.append,
    )
    print(report.render())
    # The nodes are busy: they refuse with the busy code, and only with retryable codes.
    assert report.rejected.get(Code.BUSY.name, 0) > 0
    retryable = {c.name for c in Code if c.retryable}
    assert set(report.rejected) <= retryable, report.rejected
    assert 0 < report.accepted < report.submitted
    # Blocks kept coming during the overload.
    assert report.blocks >= 3
    assert report.first_height is not None and report.last_height is not None
    assert report.last_height - report.first_height >= 2
    # Nothing accepted was lost: every accepted tx is in a block (with expiries 300 blocks
    # out none expires; an eviction would be counted in appchaind_mempool_evicted_txs).
    assert report.not_committed == 0 and report.committed == report.accepted
    assert report.mempools_at_end == [0, 0, 0, 0]
    assert _processes_using(_localnet_dir("\n".join(progress))) == []


@pytest.mark.slow
def test_with_a_builder_it_wins_blocks_and_every_order_still_commits() -> None:
    """--builder: the localnet's builder is registered and bids during the load; it wins
    blocks (the report counts them and what they paid), the proposers' own blocks are
    counted by reason, every accepted order commits, and the builder process is gone
    at the end."""
    progress: list[str] = []
    report = run_load(
        LoadOptions(accounts=40, rate=100, duration_s=5, senders=2, grace_s=20, builder=True),
        validators=4,
        progress=progress.append,
    )
    print(report.render())
    assert report.builder_blocks is not None and report.builder_blocks >= 2
    assert report.builder_paid is not None and report.builder_paid >= report.builder_blocks
    assert set(report.local_fallbacks) <= {"no_bid", "invalid_bid"}
    assert "builder     won" in report.render()
    # The proposers' waits for bids: one per proposal at least, each within the deadline
    # (bid_deadline_ms, 150 by default) or less.
    assert report.auction_waits is not None and report.auction_waits >= report.builder_blocks
    assert report.auction_wait_mean_ms is not None and 0 <= report.auction_wait_mean_ms <= 200
    assert report.auction_wait_p99_ms is not None and report.auction_wait_p99_ms <= 250
    assert "auction     " in report.render()
    assert report.not_committed == 0 and report.committed == report.accepted
    assert _processes_using(_localnet_dir("\n".join(progress))) == []


@pytest.mark.slow
def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("background", [False, True], ids=["foreground", "sigint-ignored"])
def test_a_run_stopped_by_sigterm_stops_its_localnet_and_senders(background: bool) -> None:
    """SIGTERM (a service manager, `kill`, a CI timeout) in the middle of the offered
    load stops the run as Ctrl-C does: exit 130 with a line saying so, and no node,
    sender or builder of its temporary localnet left running. Also for a run started in
    the background by a shell, which inherits SIGINT ignored (it went on for its whole
    duration: CI started with `&` failed here)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "appchaind.cli", "bench", "load", "--validators", "4",
         "--accounts", "20", "--rate", "50", "--duration", "60", "--senders", "2",
         "--builder"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        preexec_fn=_ignore_sigint if background else None,
    )  # fmt: skip
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("offering"):
            break
    else:
        raise AssertionError("".join(lines))
    directory = _localnet_dir("".join(lines))
    assert _processes_using(directory)
    proc.send_signal(signal.SIGTERM)
    _out, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(lines) + rest
    assert "stopped" in rest and "Traceback" not in rest
    assert _processes_using(directory) == []
