"""The Grafana dashboard and the Prometheus alert rules query only metrics our services define: a
metric renamed in the code, or mistyped in a query, would leave a panel empty and an alert
silent, and nobody would notice until the day it mattered."""

import importlib.util
import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).parents[2]
DASHBOARD = REPO / "infra/grafana/dashboards/lifeline.json"
ALERTS = REPO / "infra/prometheus/alerts.yml"

# prometheus_client definitions: Counter("name", ...), Gauge(\n  "name", ...), and a custom
# collector's GaugeMetricFamily("name", ...) ...
DEFINITION = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary)(?:MetricFamily)?\(\s*[\"']([a-z_][a-z0-9_]*)[\"']")
QUERIED = re.compile(r"\b((?:lifeline|process)_[a-z0-9_]+)")
SUFFIXES = {"Counter": ("_total",), "Gauge": ("",), "Histogram": ("_bucket", "_sum", "_count"),
            "Summary": ("_sum", "_count")}
# prometheus_client's ProcessCollector (registered by services/runtime/health.py).
PROCESS = {"process_cpu_seconds_total", "process_resident_memory_bytes",
           "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
           "process_start_time_seconds"}

# Metrics defined on branches merged apart from this one (the router's are on main already), by
# their names there. Each is checked like any other as soon as the file that defines it is here.
ELSEWHERE = {
    "services/router/metrics.py": {
        "lifeline_router_requests_total", "lifeline_router_request_seconds_bucket",
        "lifeline_router_fallback_depth_bucket", "lifeline_router_fallback_depth_sum",
        "lifeline_router_fallback_depth_count", "lifeline_router_breaker_state",
        "lifeline_router_queue_depth", "lifeline_router_queue_oldest_age_seconds",
        "lifeline_router_cache_hits_total",
    },
    "services/backup_agent/metrics.py": {
        "lifeline_backup_last_snapshot_age_seconds", "lifeline_backup_snapshots_total",
        "lifeline_backup_verify_failures_total",
    },
}


def exposed() -> set[str]:
    """Every sample name our services' /metrics can show."""
    names = set()
    for path in (REPO / "services").rglob("*.py"):
        for kind, name in DEFINITION.findall(path.read_text()):
            base = name.removesuffix("_total") if kind == "Counter" else name
            names |= {base + suffix for suffix in SUFFIXES[kind]}
    if "ProcessCollector(" in (REPO / "services/runtime/health.py").read_text():
        names |= PROCESS
    return names


def queries() -> dict[str, str]:
    """Every PromQL expression, by where it is."""
    board = json.loads(DASHBOARD.read_text())
    found = {f"panel {p['title']!r}": t["expr"] for p in board["panels"] for t in p.get("targets", [])}
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        found |= {f"alert {r['alert']}": r["expr"] for r in group["rules"]}
    return found


def test_every_metric_queried_is_defined_in_the_code():
    defined = exposed()
    missing = {}
    for where, expr in queries().items():
        for name in QUERIED.findall(expr):
            if name in defined:
                continue
            owner = next((f for f, names in ELSEWHERE.items() if name in names), None)
            if owner is None or (REPO / owner).exists():
                missing.setdefault(name, []).append(where)
    assert not missing, f"queried but defined nowhere in services/: {missing}"


def test_the_checker_sees_what_it_should():
    defined = exposed()
    # a counter, a histogram and a gauge from three services, with the suffixes Prometheus adds
    assert {"lifeline_store_turns_ingested_total", "lifeline_gateway_ttft_seconds_bucket",
            "lifeline_health_provider_state", "lifeline_service_ready"} <= defined
    assert "lifeline_store_turns_ingested" not in defined  # a counter is only seen with _total
    assert QUERIED.findall('sum by (le) (rate(lifeline_x_bucket{a="b"}[5m]))') == ["lifeline_x_bucket"]
    found = DEFINITION.findall('GaugeMetricFamily("lifeline_y_state", "help", labels=["m"])')
    assert found == [("Gauge", "lifeline_y_state")]


def test_the_dashboard_is_what_its_generator_writes():
    spec = importlib.util.spec_from_file_location("dashboard", REPO / "infra/grafana/dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert DASHBOARD.read_text() == module.render(), "run: python infra/grafana/dashboard.py"


def test_the_dashboard_is_provisioned_from_where_compose_mounts_it():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    provider = yaml.safe_load((REPO / "infra/grafana/provisioning/dashboards/lifeline.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert mounts["./infra/grafana/dashboards"] == path
    datasource = yaml.safe_load(
        (REPO / "infra/grafana/provisioning/datasources/prometheus.yaml").read_text())
    uids = {t["datasource"]["uid"] for p in json.loads(DASHBOARD.read_text())["panels"]
            for t in p.get("targets", [])}
    assert uids == {datasource["datasources"][0]["uid"]}
