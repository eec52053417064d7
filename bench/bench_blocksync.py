"""Block sync (issue 14): a fresh full node catches up on a chain from a peer; blocks/s for
empty blocks (target >= 1,000) and blocks/s and txs/s for full ones.

Run by ``make bench`` (bench/run.py), never by the tests (they run a bounded version):

    PYTHONPATH=. python bench/bench_blocksync.py [--empty 2000] [--rate 2000] [--seconds 15]

1. **The chain.** A one-validator localnet on loopback (``spare_nodes=1`` keeps ports for
   the full node) makes ``--empty`` empty blocks as fast as it can (``timeout_commit_ms``
   0). Its home is on tmpfs (``/dev/shm``) when there is one: the validator's fsyncs would
   otherwise make building the chain take minutes, and they are not what is measured.
2. **Full blocks.** The validator restarts with ``timeout_commit_ms`` 1000 (a block a
   second, so the chain stays nearly still while the full node syncs), and ``appchaind
   bench load`` offers ``--rate`` orders/s for ``--seconds`` on it (its usual mix: limit
   orders, cancels, IOC orders); the blocks of that run, with the funding txs before it,
   are the full ones.
3. **The sync.** A new non-validator node, its home in the system's temporary directory
   (on disk, as an operator's would be: ``--full-home-tmpfs`` puts it on tmpfs too),
   starts with the validator as its only peer. This process polls its ``/status`` every
   ``POLL_S`` and notes when its height first reaches 1, the last empty height and the tip.

Figures: empty blocks/s = (last empty height - 1) / (time from height 1 to it); full
blocks/s and txs/s over the heights after it up to the tip as it was when the sync
started (every tx of those blocks counted, from the validator's ``/block/{h}``). Process
start and the peer handshake are left out of both; the whole time from starting the
process is printed too. Loopback only.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appchaind.localnet.load import LoadOptions, run_load  # noqa: E402
from appchaind.localnet.processes import Localnet  # noqa: E402
from bench.figures import Figure, write_figures  # noqa: E402
from config.node_config import load_config, render_config  # noqa: E402

#: How often the syncing node's height is read (seconds).
POLL_S = 0.01
TMPFS = Path("/dev/shm")
#: The load's simulated oracle walk (``appchaind bench load`` uses the same on its nets).
ORACLE_STEP_PPM = 500
EMPTY_BLOCKS_TARGET = 1_000.0


@dataclass(frozen=True)
class SyncTimes:
    """Monotonic times at which the syncing node first reported a height of at least 1,
    of at least the last empty height, and of at least the tip; ``started``: its
    process start."""

    started: float
    first: float
    empty_done: float
    tip: float


def set_timeout_commit(home: Path, milliseconds: int) -> None:
    """Rewrites ``home``'s config.toml with ``consensus.timeout_commit_ms``."""
    values = load_config(home).as_dict()
    values["consensus"]["timeout_commit_ms"] = milliseconds
    (home / "config.toml").write_text(render_config(values))


def wait_sync(
    net: Localnet, node: int, empty_height: int, tip: int, deadline_s: float
) -> SyncTimes:
    """Starts ``node`` and follows its height until it reaches ``tip``."""
    started = time.monotonic()
    net.start(node)
    first = empty_done = None
    end = started + deadline_s
    while time.monotonic() < end:
        height = net.height(node)
        now = time.monotonic()
        if first is None and height >= 1:
            first = now
        if empty_done is None and height >= empty_height:
            empty_done = now
        if height >= tip:
            assert first is not None and empty_done is not None
            return SyncTimes(started, first, empty_done, now)
        time.sleep(POLL_S)
    raise SystemExit(
        f"the full node did not reach height {tip} in {deadline_s:g} s "
        f"(at {net.height(node)}); see {net.homes[node] / 'node.log'}"
    )


def run(options: argparse.Namespace) -> list[Figure]:
    tmpfs = TMPFS if TMPFS.is_dir() else None
    chain_dir = Path(tempfile.mkdtemp(prefix="appchaind-blocksync-", dir=tmpfs))
    full_dir = Path(
        tempfile.mkdtemp(prefix="appchaind-blocksync-full-", dir=tmpfs if options.full_home_tmpfs else None)
    )  # fmt: skip
    net = Localnet(
        chain_dir / "net", 1, spare_nodes=1, chain_id="blocksync-bench",
        config_overrides={
            "consensus": {"timeout_commit_ms": 0},
            "oracle": {"simulated_step_ppm": ORACLE_STEP_PPM},
        },
    )  # fmt: skip
    try:
        print(
            f"building {options.empty:,} empty blocks (validator home in {chain_dir})", flush=True
        )
        started = time.monotonic()
        net.start_all(own_session=True)
        net.wait_until(lambda: net.height(0) >= options.empty, "the empty blocks", 600)
        net.stop(0)
        set_timeout_commit(net.homes[0], 1_000)
        net.start(0, own_session=True)
        net.wait_until(lambda: net.height(0) > options.empty, "the validator restarting")
        empty_height = net.height(0)
        print(f"  {empty_height:,} blocks in {time.monotonic() - started:.1f} s", flush=True)
        report = run_load(
            LoadOptions(
                accounts=options.accounts, rate=options.rate, duration_s=options.seconds,
                grace_s=5.0, seed=1,
            ),
            directory=net.dir,
            progress=lambda line: print(f"  {line}", flush=True),
        )  # fmt: skip
        tip = net.height(0)
        txs = sum(
            len(net.get(0, f"/block/{h}")["tx_hashes"]) for h in range(empty_height + 1, tip + 1)
        )
        full_blocks = tip - empty_height
        print(
            f"chain: heights 1-{empty_height} empty, {empty_height + 1}-{tip} with {txs:,} txs "
            f"({txs / max(1, full_blocks):,.0f} per block; load committed "
            f"{report.committed_rate:,.0f} orders/s)",
            flush=True,
        )
        node = net.add_full_node(full_dir / "full")
        print(f"syncing a fresh full node (home in {full_dir})", flush=True)
        times = wait_sync(net, node, empty_height, tip, options.deadline)
    finally:
        net.stop_all()
        shutil.rmtree(chain_dir, ignore_errors=True)
        shutil.rmtree(full_dir, ignore_errors=True)
    empty_rate = (empty_height - 1) / max(times.empty_done - times.first, 1e-9)
    full_seconds = max(times.tip - times.empty_done, 1e-9)
    print(
        f"block sync, empty blocks: {empty_rate:,.0f} blocks/s ({empty_height - 1:,} blocks in "
        f"{times.empty_done - times.first:.2f} s); target >= {EMPTY_BLOCKS_TARGET:,.0f}"
    )
    print(
        f"block sync, full blocks: {full_blocks / full_seconds:,.1f} blocks/s, "
        f"{txs / full_seconds:,.0f} txs/s ({full_blocks} blocks, {txs:,} txs in {full_seconds:.2f} s)"
    )
    print(
        f"from process start to the tip: {times.tip - times.started:.2f} s "
        f"(first block after {times.first - times.started:.2f} s)"
    )
    where = "tmpfs" if options.full_home_tmpfs else "disk"
    return [
        Figure(
            "block sync: empty blocks", empty_rate, "blocks/s", EMPTY_BLOCKS_TARGET,
            note=f"{empty_height - 1:,} blocks, syncing node's home on {where}",
        ),
        Figure(
            "block sync: full blocks", full_blocks / full_seconds, "blocks/s",
            note=f"{full_blocks} blocks of {txs / max(1, full_blocks):,.0f} txs on average",
        ),
        Figure("block sync: txs in full blocks", txs / full_seconds, "txs/s"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--empty", type=int, default=2_000, help="empty blocks (default 2000)")
    parser.add_argument(
        "--rate", type=float, default=2_000.0, help="orders/s offered for the full blocks"
    )
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="seconds of load for the full blocks"
    )
    parser.add_argument("--accounts", type=int, default=200, help="accounts sending orders")
    parser.add_argument("--deadline", type=float, default=300.0, help="give up after (s)")
    parser.add_argument(
        "--full-home-tmpfs", action="store_true", help="the syncing node's home on tmpfs too"
    )
    parser.add_argument("--figures", help="write the figures to this file as JSON")
    options = parser.parse_args()
    write_figures(options.figures, run(options))


if __name__ == "__main__":
    main()
