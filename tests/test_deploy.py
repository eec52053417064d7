"""deploy/ (issue 18): the Prometheus scrape configs and alert rules, the Grafana
dashboard and its provisioning, the systemd unit. They name only metrics the node
exposes (a renamed metric would silently blank a panel or never fire an alert), the
rules pass promtool's checks and their unit tests where promtool is installed (.ci/run
installs it), and the unit keeps its hardening."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from appchaind.telemetry.metrics import NodeMetrics
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "appchaind.json"


def _exposed() -> set[str]:
    """Every series name the node's metrics can expose (a counter's _total, a
    histogram's _bucket, _sum and _count)."""
    metrics = NodeMetrics("deploy-test")
    names = set()
    for family in text_string_to_metric_families(metrics.render().decode()):
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
        }.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def _referenced(expr: str) -> set[str]:
    return set(re.findall(r"\bappchaind_[a-z0-9_]+", expr))


def _dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def test_alerts_and_panels_name_only_metrics_the_node_exposes() -> None:
    exposed = _exposed()
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    exprs = [r["expr"] for r in rules] + _dashboard_exprs()
    unknown = {name for expr in exprs for name in _referenced(expr)} - exposed
    assert not unknown, f"not exposed by the node: {sorted(unknown)}"
    # The alerts are all there.
    assert {r["alert"] for r in rules} >= {
        "AppchaindNodeDown", "AppchaindHeightNotMoving", "AppchaindRoundsAboveZero",
        "AppchaindFewPeers", "AppchaindMempoolNearFull", "AppchaindMissedSignatures",
        "AppchaindDiskNearlyFull", "AppchaindInsuranceFundFallingFast",
    }  # fmt: skip
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_dashboard_covers_every_room_and_reads_the_provisioned_data_source() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    rows = {p["title"] for p in panels if p["type"] == "row"}
    assert rows >= {"Consensus", "Mempool", "P2P", "Exchange", "RPC"}
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    datasources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    uid = datasources[0]["uid"]
    for panel in panels:
        assert "gridPos" in panel, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == uid, panel["title"]
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "appchaind.yml").read_text()
    )["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"]


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        if IN_CI:
            pytest.fail("promtool is not installed: .ci/run installs Debian's prometheus")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return promtool


@pytest.mark.parametrize(
    "args",
    [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts-test.yml"],
        ["check", "config", "prometheus-localnet.yml"],
        ["check", "config", "prometheus-validator.yml"],
    ],
    ids=lambda a: " ".join(a),
)
def test_promtool_accepts_the_rules_their_tests_and_the_scrape_configs(args: list[str]) -> None:
    run = subprocess.run(
        [_promtool(), *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_systemd_unit_runs_unprivileged_with_only_its_home_writable() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "systemd" / "appchaind.service")
    service = unit["Service"]
    assert service["User"] not in ("", "root")
    home = "/var/lib/appchaind"
    assert service["ExecStart"].endswith(f"appchaind start --home {home}")
    assert service["ReadWritePaths"] == home
    for key, value in {
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateDevices": "yes",
        "KillSignal": "SIGTERM",
    }.items():
        assert service[key] == value, key
    assert service["CapabilityBoundingSet"] == ""
    assert unit["Install"]["WantedBy"] == "multi-user.target"
