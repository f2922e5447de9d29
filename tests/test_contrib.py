"""The shipped operations files (contrib/) speak only the metric names of SPEC §11.

A renamed metric breaks dashboards and alerts silently (an absent series is "no data", not an
error), so every expression in the Grafana dashboard and the Prometheus rules is checked against
the list here. `promtool check rules` / `test rules` run in .ci/run; when promtool is installed,
the dashboard's queries are also parsed by it here.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "contrib" / "grafana" / "rblwatch-dashboard.json"
RULES = ROOT / "contrib" / "prometheus" / "rblwatch.rules.yml"
RULE_TESTS = ROOT / "contrib" / "prometheus" / "rblwatch.rules.test.yml"

# SPEC §11, with the rblwatch_ prefix, the sender hygiene families issue 12 adds and
# the resolver's issue 11 adds
SPEC_METRICS = frozenset(
    "rblwatch_" + name
    for name in (
        "listed",
        "listed_since_timestamp_seconds",
        "listings",
        "targets",
        "list_healthy",
        "queries_total",
        "query_errors_total",
        "query_duration_seconds",
        "cycle_duration_seconds",
        "last_cycle_success_timestamp_seconds",
        "cycles_skipped_total",
        "events_total",
        "alert_deliveries_total",
        "alert_delivery_failures_total",
        "alert_queue",
        "config_last_reload_successful",
        "config_last_reload_success_timestamp_seconds",
        "build_info",
        "check_ok",
        "checks_failing",
        "resolver_up",  # issue 11: the resolver's outage as its own state
    )
)
HISTOGRAMS = frozenset({"rblwatch_query_duration_seconds"})
METRIC = re.compile(r"\brblwatch_[a-z_]+")


def metric_names(text: str) -> set[str]:
    return set(METRIC.findall(text))


def unknown_metrics(names: set[str]) -> set[str]:
    """Names that are neither a SPEC metric nor a series of a SPEC histogram."""
    bad = set()
    for name in names:
        if name in SPEC_METRICS:
            continue
        base, _, suffix = name.rpartition("_")
        if base in HISTOGRAMS and suffix in {"bucket", "sum", "count"}:
            continue
        bad.add(name)
    return bad


def test_metric_name_check_itself() -> None:
    assert unknown_metrics({"rblwatch_query_duration_seconds_bucket", "rblwatch_listed"}) == set()
    assert unknown_metrics({"rblwatch_listed_bucket", "rblwatch_zone_healthy"}) == {
        "rblwatch_listed_bucket",
        "rblwatch_zone_healthy",
    }


# --- Grafana -------------------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, expression) for every query of every panel."""
    return [
        (panel["title"], target["expr"])
        for panel in all_panels(dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


def test_dashboard_shape() -> None:
    d = dashboard()
    assert d["schemaVersion"] >= 36
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"list", "group"} <= variables.keys()
    ids = [p["id"] for p in all_panels(d["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in all_panels(d["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_dashboard_uses_only_spec_metrics() -> None:
    used: set[str] = set()
    for title, expr in dashboard_exprs():
        names = metric_names(expr)
        assert names, f"{title}: {expr!r} uses no rblwatch metric"
        assert not unknown_metrics(names), f"{title}: {expr!r}"
        used |= names
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            assert not unknown_metrics(metric_names(variable["definition"])), variable["name"]
    # the panels the dashboard promises
    for name in (
        "rblwatch_listed",
        "rblwatch_listings",
        "rblwatch_list_healthy",
        "rblwatch_queries_total",
        "rblwatch_query_errors_total",
        "rblwatch_query_duration_seconds_bucket",
        "rblwatch_cycle_duration_seconds",
        "rblwatch_last_cycle_success_timestamp_seconds",
        "rblwatch_events_total",
        "rblwatch_alert_queue",
        "rblwatch_alert_delivery_failures_total",
        "rblwatch_config_last_reload_successful",
    ):
        assert name in used, name


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        # never a skip: the rules and the dashboard are only proven by Prometheus' own tool
        pytest.fail("promtool is not installed: apt-get install -y prometheus (see README, Tests)")
    return found


def test_the_alert_rules_pass_their_promtool_unit_tests() -> None:
    for args in (
        ["check", "rules", "contrib/prometheus/rblwatch.rules.yml"],
        ["test", "rules", "contrib/prometheus/rblwatch.rules.test.yml"],
    ):
        run = subprocess.run(
            [promtool(), *args], capture_output=True, text=True, check=False, cwd=ROOT
        )
        assert run.returncode == 0, run.stdout + run.stderr


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """Every dashboard query, with Grafana's variables filled in, is valid PromQL."""
    rules = []
    for i, (_, query) in enumerate(dashboard_exprs()):
        expr = query.replace("$__rate_interval", "5m").replace("$list", ".*")
        expr = expr.replace("$group", ".*")
        assert "$" not in expr, query
        rules.append({"record": f"rblwatch:dashboard_query_{i}", "expr": expr})
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


# --- Prometheus rules ----------------------------------------------------------------------------


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_rules_use_only_spec_metrics() -> None:
    for rule in rules():
        names = metric_names(rule["expr"])
        assert names, f"{rule['alert']} uses no rblwatch metric"
        assert not unknown_metrics(names), f"{rule['alert']}: {rule['expr']!r}"
        # annotation templates may query too, and name metrics for the reader
        for text in rule.get("annotations", {}).values():
            assert not unknown_metrics(metric_names(text)), f"{rule['alert']}: {text!r}"


def test_rules_are_the_documented_alerts_and_all_tested() -> None:
    alerts = [rule["alert"] for rule in rules()]
    assert sorted(alerts) == sorted(
        {
            "RblwatchListed",
            "RblwatchListUnhealthy",
            "RblwatchResolverUnreachable",
            "RblwatchCheckFailing",
            "RblwatchLookupsFailing",
            "RblwatchCycleStale",
            "RblwatchReloadFailed",
            "RblwatchAlertQueueGrowing",
        }
    )
    for rule in rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description"} <= rule["annotations"].keys(), rule["alert"]
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for series in case["input_series"]:
            assert not unknown_metrics(metric_names(series["series"])), series["series"]
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert firing == set(alerts), "every rule needs a case where it fires"
    assert quiet == set(alerts), "every rule needs a case where it stays quiet"


def test_the_example_config_s_store_file_is_git_ignored() -> None:
    # the README's first command runs the daemon on config.example.yaml in the checkout: its
    # SQLite file (and WAL files) must not show up as something to commit
    cfg = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    name = cfg["store"]["url"].removeprefix("sqlite:///")
    patterns = [
        line.strip() for line in (ROOT / ".gitignore").read_text().splitlines() if line.strip()
    ]
    for path in (name, f"{name}-wal", f"{name}-shm"):
        assert any(fnmatch.fnmatch(path, p) for p in patterns), path
