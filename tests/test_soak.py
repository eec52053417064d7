"""`make soak` / `appchaind bench soak` (issue 16): a fault campaign on a localnet under
load ends with its one summary line, and fails, with the command that replays its seed,
when a tx reported committed is lost, nodes diverge or a validator double-signs."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from appchaind.localnet.soak import SoakReport

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(
    r"^soak: campaigns 1, faults (?P<faults>\d+) \(by kind [^)]*\), txs submitted "
    r"(?P<submitted>\d+) committed (?P<committed>\d+), lost (?P<lost>\d+), divergences "
    r"(?P<divergences>\d+), double-signs (?P<double>\d+), longest recovery [\d.]+ s$"
)


def test_a_loss_a_divergence_or_a_double_sign_fails_the_campaign_with_its_replay() -> None:
    report = SoakReport(seed=42, seconds=30, faults=Counter(kill=2, pause=1))
    assert report.ok and LINE.match(report.line())
    assert "faults 3 (by kind kill 2, pause 1)" in report.line()
    for spoil in (
        lambda r: r.lost.append("ab" * 32),
        lambda r: r.divergences.append(7),
        lambda r: setattr(r, "double_signs", 1),
    ):
        bad = SoakReport(seed=42, seconds=30)
        spoil(bad)
        assert not bad.ok
    assert report.replay() == "appchaind bench soak --seconds 30 --seed 42"


@pytest.mark.slow
def test_a_short_campaign_kills_and_pauses_validators_and_loses_nothing() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "appchaind.cli", "bench", "soak", "--seconds", "8", "--seed", "3"],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    match = LINE.match(proc.stdout.strip().splitlines()[-1])
    assert match, proc.stdout
    figures = {k: int(v) for k, v in match.groupdict().items()}
    assert figures["faults"] >= 1
    assert 0 < figures["committed"] <= figures["submitted"]
    assert figures["lost"] == figures["divergences"] == figures["double"] == 0
    directory = next(
        line.rsplit("localnet in ", 1)[1] for line in proc.stderr.splitlines()
        if "localnet in " in line
    )  # fmt: skip
    assert not Path(directory).exists()  # the campaign's localnet is gone
