"""Figures for a 4-validator localnet on loopback (issue: the node).

Prints: block interval (mean and p50/p90 from BFT block times), rounds per height,
block-sync speed of a fresh full node (including its process start; bench_blocksync.py
measures block sync alone), and time from a killed validator's restart to caught up.
Run by `make bench`; takes about two minutes (``--height`` heights first).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appchaind.localnet.processes import Localnet  # noqa: E402
from bench.figures import Figure, write_figures  # noqa: E402

#: How long the validator that is restarted stays down (seconds).
DOWN_S = 10.0


def run(target_height: int) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        net = Localnet(Path(tmp) / "net")
        try:
            net.start_all()
            net.wait_height([0, 1, 2, 3], target_height)
            times, rounds = [], []
            for h in range(2, target_height + 1):
                block = net.get(0, f"/block/{h}")
                times.append(block["header"]["time_ms"])
                rounds.append(block["last_commit"]["round"])
            intervals = [b - a for a, b in zip(times, times[1:], strict=False)]
            q = statistics.quantiles(intervals, n=10)
            mean_interval = statistics.mean(intervals)
            print(
                f"block interval: mean {mean_interval:.0f} ms, p50 {q[4]:.0f} ms, p90 {q[8]:.0f} ms over {len(intervals)} blocks"
            )
            late_rounds = sum(r > 0 for r in rounds)
            print(
                f"rounds per height: mean {statistics.mean(rounds):.2f} (round>0 in {late_rounds} of {len(rounds)} heights)"
            )

            full = net.add_full_node()
            tip = net.height(0)
            started = time.monotonic()
            net.start(full)
            net.wait_until(lambda: net.height(full) >= tip, "the full node syncing")
            sync_s = time.monotonic() - started
            print(
                f"block sync: {tip} blocks in {sync_s:.1f} s = {tip / sync_s:.0f} blocks/s (including process start)"
            )

            net.kill(3)
            time.sleep(DOWN_S)
            started = time.monotonic()
            net.start(3)
            net.wait_until(
                lambda: net.height(3) >= net.height(0) - 1, "the restarted validator catching up"
            )
            restart_s = time.monotonic() - started
            print(f"restart to caught up (validator down {DOWN_S:g} s): {restart_s:.1f} s")
        finally:
            net.close()
    return [
        Figure(
            "localnet: block interval, mean", mean_interval, "ms", better="lower",
            note=f"p50 {q[4]:.0f} ms, p90 {q[8]:.0f} ms over {len(intervals)} idle blocks",
        ),
        Figure(
            "localnet: heights decided after round 0", late_rounds, "heights", better="lower",
            note=f"of {len(rounds)}",
        ),
        Figure(
            "localnet: full node synced, incl. process start", tip / sync_s, "blocks/s",
            note=f"{tip} blocks of an idle 4-validator chain",
        ),
        Figure(
            "localnet: restart to caught up", restart_s, "s", better="lower",
            note=f"a validator killed and down {DOWN_S:g} s",
        ),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--height", type=int, default=150, help="heights to run (default 150)")
    parser.add_argument("--figures", help="write the figures to this file as JSON")
    options = parser.parse_args()
    write_figures(options.figures, run(options.height))


if __name__ == "__main__":
    main()
