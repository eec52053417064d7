"""`make bench`: runs every bench/bench_*.py script, then the side-by-side order-book benchmark.

Each script prints its own figures. Pass names to run a subset:
`python bench/run.py orderbook finalize`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOBBENCH = ROOT.parent / "shared" / "bench" / "lob" / "lobbench.py"


def main(argv: list[str]) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.call(
        [sys.executable, "-c", "from appchaind import native; print('cores:', native.status()[1])"],
        cwd=ROOT,
        env=env,
    )
    scripts = sorted((ROOT / "bench").glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(a in s.stem for a in argv)]
    failed = []
    for script in scripts:
        print(f"=== {script.name}", flush=True)
        started = time.monotonic()
        rc = subprocess.call([sys.executable, str(script)], cwd=ROOT, env=env)
        print(f"=== {script.name}: exit {rc} in {time.monotonic() - started:.1f} s\n", flush=True)
        if rc:
            failed.append(script.name)
    if (
        (not argv or "lob" in argv)
        and LOBBENCH.exists()
        and (ROOT / "bench" / "lob_adapter.py").exists()
    ):
        print("=== lobbench (side by side, median of 3)", flush=True)
        rc = subprocess.call(
            [
                sys.executable,
                str(LOBBENCH),
                "--adapter",
                "bench.lob_adapter:make_engine",
                "--repeat",
                "3",
            ],
            cwd=ROOT,
            env=env,
        )
        if rc:
            failed.append("lobbench")
    if failed:
        print("failed: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
