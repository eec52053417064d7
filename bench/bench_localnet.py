"""Figures for a 4-validator localnet on loopback (issue: the node).

Prints: block interval (mean and p50/p90 from BFT block times), rounds per height,
block-sync speed of a fresh full node, and time from a killed validator's restart
to caught up. Run by `make bench`; takes about two minutes.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from appchaind.localnet.processes import Localnet

TARGET_HEIGHT = int(sys.argv[1]) if len(sys.argv) > 1 else 150


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        net = Localnet(Path(tmp) / "net")
        try:
            net.start_all()
            net.wait_height([0, 1, 2, 3], TARGET_HEIGHT)
            times, rounds = [], []
            for h in range(2, TARGET_HEIGHT + 1):
                block = net.get(0, f"/block/{h}")
                times.append(block["header"]["time_ms"])
                rounds.append(block["last_commit"]["round"])
            intervals = [b - a for a, b in zip(times, times[1:], strict=False)]
            q = statistics.quantiles(intervals, n=10)
            print(
                f"block interval: mean {statistics.mean(intervals):.0f} ms, p50 {q[4]:.0f} ms, p90 {q[8]:.0f} ms over {len(intervals)} blocks"
            )
            print(
                f"rounds per height: mean {statistics.mean(rounds):.2f} (round>0 in {sum(r > 0 for r in rounds)} of {len(rounds)} heights)"
            )

            full = net.add_full_node()
            tip = net.height(0)
            started = time.monotonic()
            net.start(full)
            net.wait_until(lambda: net.height(full) >= tip, "the full node syncing")
            elapsed = time.monotonic() - started
            print(
                f"block sync: {tip} blocks in {elapsed:.1f} s = {tip / elapsed:.0f} blocks/s (including process start)"
            )

            net.kill(3)
            time.sleep(10)
            started = time.monotonic()
            net.start(3)
            net.wait_until(
                lambda: net.height(3) >= net.height(0) - 1, "the restarted validator catching up"
            )
            print(f"restart to caught up (validator down 10 s): {time.monotonic() - started:.1f} s")
        finally:
            net.close()


if __name__ == "__main__":
    main()
