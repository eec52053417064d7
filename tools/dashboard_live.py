"""The Grafana dashboard's queries answered by a real Prometheus scraping a live localnet.

Starts a 4-validator localnet on free loopback ports, a Prometheus (Debian's package
``prometheus``) scraping its nodes every second with deploy/'s alert rules, and an order
flow (``appchaind bench load``: resting limits, cancels and crossing IOC orders, so the
exchange's panels have trades); then asks Prometheus every query of
deploy/grafana/dashboards/appchaind.json and prints one row per query (panel, query,
series answered, the largest value). Also checks every scrape target is up and every alert rule
evaluates without error. Exit 1 when a query that should answer does not (see
:data:`MAY_BE_EMPTY`), a target is down or a rule fails.

Usage::

    .venv/bin/python tools/dashboard_live.py [--seconds 40] [--json] [--screenshots DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from appchaind.localnet.processes import Localnet, free_base_port  # noqa: E402

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "appchaind.json"
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"

#: Metrics whose series appear only once what they count has happened (a builder's bid,
#: a liquidation, a refusal by reason): their panels may answer nothing on a quiet chain.
MAY_BE_EMPTY = (
    "appchaind_pbs_bids_total",
    "appchaind_pbs_local_fallback_total",
    "appchaind_pbs_winning_bid_value",
    "appchaind_exchange_liquidations_total",
)


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of the dashboard."""
    doc = json.loads(DASHBOARD.read_text())
    return [
        (panel.get("title", "?"), target["expr"])
        for panel in doc["panels"]
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


class Prometheus:
    """A Prometheus process scraping ``targets`` every second, with deploy/'s rules."""

    def __init__(self, directory: Path, targets: list[str]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise SystemExit("prometheus is not installed: apt-get install prometheus")
        self.port = free_base_port(1)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": "appchaind",
                    "static_configs": [{"targets": targets, "labels": {"network": "localnet"}}],
                }
            ],
        }
        path = directory / "prometheus.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        self.log = (directory / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={path}",
                f"--storage.tsdb.path={directory / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"prometheus exited with {self.proc.returncode}: see its log")
            try:
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=2).close()
                return
            except OSError:
                time.sleep(0.3)
        raise SystemExit(f"prometheus not ready within {timeout_s} s")

    def query(self, expr: str) -> list[dict[str, Any]]:
        doc = _get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if doc.get("status") != "success":
            raise RuntimeError(f"query failed: {expr}: {doc}")
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = _get(f"{self.url}/api/v1/targets")["data"]["activeTargets"]
        return active

    def rules(self) -> list[dict[str, Any]]:
        groups = _get(f"{self.url}/api/v1/rules")["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def screenshot_panels(prometheus: Prometheus, directory: Path) -> list[Path]:
    """Prometheus's own graph page of each panel's queries (the last minute), one PNG
    per panel in ``directory``, taken with Debian's headless chromium (selenium)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1100,1000"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    directory.mkdir(parents=True, exist_ok=True)
    panels: dict[str, list[str]] = {}
    for title, expr in panel_queries():
        panels.setdefault(title, []).append(expr)
    shots = []
    try:
        for n, (title, exprs) in enumerate(panels.items()):
            params: dict[str, str] = {}
            for i, expr in enumerate(exprs):
                params |= {f"g{i}.expr": expr, f"g{i}.tab": "0", f"g{i}.range_input": "1m"}
            driver.get(f"{prometheus.url}/graph?" + urllib.parse.urlencode(params))
            time.sleep(2)  # the page draws its graphs after its queries answer
            slug = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")
            path = directory / f"{n:02d}-{slug}.png"
            driver.save_screenshot(str(path))
            shots.append(path)
    finally:
        driver.quit()
    return shots


def check(seconds: float, screenshots: Path | None = None) -> dict[str, Any]:
    """Runs the localnet, the load and Prometheus for about ``seconds``; the answers (and
    with ``screenshots``, each panel's graph in Prometheus saved there)."""
    with tempfile.TemporaryDirectory(prefix="appchaind-dashboard-") as tmp:
        work = Path(tmp)
        net = Localnet(work / "net", spare_nodes=0)
        prometheus: Prometheus | None = None
        load: subprocess.Popen[bytes] | None = None
        try:
            net.start_all()
            net.wait_height(list(range(4)), 3)
            prometheus = Prometheus(work, [f"127.0.0.1:{port}" for port in net.http_ports])
            prometheus.wait_ready()
            load = subprocess.Popen(
                [
                    sys.executable, "-m", "appchaind.cli", "bench", "load",
                    "--dir", str(work / "net"), "--rate", "200",
                    "--duration", str(max(10, int(seconds * 0.6))), "--accounts", "50",
                    "--senders", "1", "--grace", "5", "--seed", "1",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            load.wait(timeout=seconds * 3 + 120)
            time.sleep(3)  # a few more scrapes after the last trades
            rows = []
            for title, expr in panel_queries():
                result = prometheus.query(expr)
                # The largest value among the series (NaN, e.g. a quantile of no samples, last).
                values = sorted((float(r["value"][1]) for r in result), key=lambda v: (v == v, v))
                value = values[-1] if values else None
                optional = any(name in expr for name in MAY_BE_EMPTY)
                rows.append(
                    {"panel": title, "query": expr, "series": len(result), "max": value,
                     "may_be_empty": optional}
                )  # fmt: skip
            targets = [
                {"target": t["scrapeUrl"], "health": t["health"], "error": t["lastError"]}
                for t in prometheus.targets()
            ]
            rules = [
                {"rule": r["name"], "health": r["health"], "error": r.get("lastError", "")}
                for r in prometheus.rules()
            ]
            shots = [] if screenshots is None else screenshot_panels(prometheus, screenshots)
            return {
                "screenshots": [str(p) for p in shots],
                "load_exit": load.returncode,
                "queries": rows,
                "targets": targets,
                "rules": rules,
            }
        finally:
            if load is not None and load.poll() is None:
                load.kill()
            if prometheus is not None:
                prometheus.close()
            net.close()


def problems(report: dict[str, Any]) -> list[str]:
    """What does not hold in ``report``."""
    found = [f"query answered nothing: {r['panel']}: {r['query']}"
             for r in report["queries"] if not r["series"] and not r["may_be_empty"]]  # fmt: skip
    found += [f"target down: {t['target']}: {t['error']}" for t in report["targets"]
              if t["health"] != "up"]  # fmt: skip
    found += [f"rule fails: {r['rule']}: {r['error']}" for r in report["rules"]
              if r["health"] != "ok"]  # fmt: skip
    if report["load_exit"] != 0:
        found.append(f"the order flow (appchaind bench load) exited {report['load_exit']}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40, help="length of the run (about)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--screenshots", type=Path, help="save each panel's graph in Prometheus's page here"
    )
    args = parser.parse_args()
    report = check(args.seconds, args.screenshots)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print("| panel | query | series | largest value |")
        print("|---|---|---:|---|")
        for r in report["queries"]:
            value = "-" if r["max"] is None else f"{r['max']:.6g}"
            print(f"| {r['panel']} | `{r['query']}` | {r['series']} | {value} |")
        up = sum(t["health"] == "up" for t in report["targets"])
        ok = sum(r["health"] == "ok" for r in report["rules"])
        print(f"\ntargets up {up}/{len(report['targets'])}; alert rules evaluated without "
              f"error {ok}/{len(report['rules'])}")  # fmt: skip
    found = problems(report)
    for line in found:
        print(f"problem: {line}", file=sys.stderr)
    raise SystemExit(1 if found else 0)


if __name__ == "__main__":
    main()
