"""Writes infra/grafana/dashboards/lifeline.json, the Grafana dashboard of the mesh.

    .venv/bin/python infra/grafana/dashboard.py

Kept as code because a dashboard's JSON is mostly layout arithmetic (gridPos) that is easy to get
wrong by hand; tests/unit/test_dashboard_uses_real_metrics.py checks that the JSON is what this
writes and that every metric it queries is one our services define.
"""

import json
from pathlib import Path

OUT = Path(__file__).parent / "dashboards" / "lifeline.json"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}  # provisioning/datasources/prometheus.yaml

# (row title, [(panel title, unit, [(PromQL, legend)], description)])
ROWS: list[tuple[str, list[tuple[str, str, list[tuple[str, str]], str]]]] = [
    ("Answers", [
        ("Requests by tier", "reqps",
         [("sum by (tier) (rate(lifeline_router_requests_total[1m]))", "{{tier}}")],
         "full: the primary answered; degraded: a fallback; minimal: cache or FAQ; emergency: "
         "maintenance message or parked"),
        ("Requests by provider", "reqps",
         [("sum by (provider) (rate(lifeline_router_requests_total[1m]))", "{{provider}}")], ""),
        ("Errors answered", "percentunit",
         [("sum(rate(lifeline_router_requests_total{status=\"error\"}[5m])) / "
           "sum(rate(lifeline_router_requests_total[5m]))", "error ratio")],
         "share of requests whose answer was status error"),
        ("Latency (router)", "s",
         [(f"histogram_quantile({q}, sum by (le) (rate(lifeline_router_request_seconds_bucket[5m])))",
           f"p{int(q * 100)}") for q in (0.5, 0.95, 0.99)], ""),
        ("Fallback depth", "short",
         [("sum(rate(lifeline_router_fallback_depth_sum[5m])) / "
           "sum(rate(lifeline_router_fallback_depth_count[5m]))", "mean depth"),
          ("histogram_quantile(0.95, sum by (le) (rate(lifeline_router_fallback_depth_bucket[5m])))",
           "p95 depth")],
         "0: the first member of the chain answered"),
        ("Cache hits", "reqps", [("sum(rate(lifeline_router_cache_hits_total[1m]))", "hits/s")], ""),
        ("Gateway requests by status", "reqps",
         [("sum by (status) (rate(lifeline_gateway_requests_total[1m]))", "{{status}}")], ""),
        ("Gateway latency", "s",
         [("histogram_quantile(0.95, sum by (le) (rate(lifeline_gateway_request_seconds_bucket[5m])))",
           "p95 whole answer"),
          ("histogram_quantile(0.95, sum by (le) (rate(lifeline_gateway_ttft_seconds_bucket[5m])))",
           "p95 first token")], ""),
    ]),
    ("Providers", [
        ("Provider state", "short",
         [("max by (provider) (lifeline_health_provider_state)", "{{provider}}")],
         "-1 no verdict yet, 0 up, 1 degraded, 2 down (health monitor)"),
        ("Breakers", "short", [("max by (member) (lifeline_router_breaker_state)", "{{member}}")],
         "per provider/model, worst over the routers; 0 closed"),
        ("Probe latency p95", "s",
         [("histogram_quantile(0.95, sum by (le, provider) "
           "(rate(lifeline_health_probe_latency_seconds_bucket[5m])))", "{{provider}}")], ""),
        ("Mid-stream failures", "reqps",
         [("sum by (outcome) (rate(lifeline_router_stream_failures_total[5m]))", "{{outcome}}")],
         "members that failed after a stream's first token: resumed, errored, exhausted"),
    ]),
    ("Queue", [
        ("Parked requests", "short",
         [("max by (priority) (lifeline_router_queue_depth)", "{{priority}}")], ""),
        ("Oldest parked request", "s",
         [("max by (priority) (lifeline_router_queue_oldest_age_seconds)", "{{priority}}")], ""),
    ]),
    ("Spend", [
        ("Spend rate", "currencyUSD",
         [("sum(rate(lifeline_cost_spend_usd_total{scope=\"global\"}[5m])) * 3600", "USD/hour")],
         "from the ledger (every charge once)"),
        ("Admissions by verdict", "reqps",
         [("sum by (verdict) (rate(lifeline_cost_admissions_total[1m]))", "{{verdict}}")], ""),
        ("Reservations in flight", "short",
         [("sum(lifeline_cost_reservations_in_flight)", "reservations")], ""),
        ("Probe spend", "currencyUSD",
         [("sum by (provider) (increase(lifeline_health_probe_spend_usd_total[1h]))", "{{provider}}")],
         "what the health monitor's probes and canaries cost, per hour"),
    ]),
    ("Ingest", [
        ("History ingest lag", "short",
         [("max(lifeline_store_ingest_lag_messages)", "events not yet stored")], ""),
        ("History ingest age", "s", [("max(lifeline_store_ingest_lag_seconds)", "oldest turn's age")], ""),
        ("Ledger lag", "short",
         [("max(lifeline_cost_ledger_pending_messages)", "events not yet recorded")], ""),
        ("Ledger age", "s", [("max(lifeline_cost_ledger_lag_seconds)", "newest event's age")], ""),
        ("Store database failing", "short", [("max(lifeline_store_db_failing)", "failing")], ""),
    ]),
    ("Incidents and backups", [
        ("Open incidents", "short", [("max(lifeline_notifier_incidents_open)", "open")], ""),
        ("Alerts", "short",
         [("sum by (channel) (increase(lifeline_notifier_alerts_sent_total[1h]))", "sent {{channel}}"),
          ("sum by (channel) (increase(lifeline_notifier_alerts_failed_total[1h]))", "given up {{channel}}")],
         "per hour"),
        ("Last backup's age", "s", [("min(lifeline_backup_last_snapshot_age_seconds)", "age")],
         "-1: no snapshot yet"),
        ("Backups", "short",
         [("sum by (outcome) (increase(lifeline_backup_snapshots_total[1d]))", "{{outcome}} per day"),
          ("sum(increase(lifeline_backup_verify_failures_total[1d]))", "failed verification per day")],
         ""),
    ]),
    ("Processes", [
        ("Ready instances", "short",
         [("sum by (service) (lifeline_service_ready)", "{{service}}")], "per service"),
        ("NATS reconnects", "short",
         [("sum by (instance) (delta(lifeline_nats_reconnects[10m]))", "{{instance}}"),
          ("count(lifeline_nats_connected == 0)", "disconnected now")],
         "a node lost: its clients move to the others"),
        ("Memory", "bytes", [("process_resident_memory_bytes", "{{instance}}")], ""),
        ("CPU", "percentunit", [("rate(process_cpu_seconds_total[1m])", "{{instance}}")], ""),
    ]),
]


def panel(pid: int, title: str, unit: str, targets: list[tuple[str, str]], description: str,
          x: int, y: int) -> dict:
    return {
        "id": pid, "type": "timeseries", "title": title, "description": description,
        "datasource": DATASOURCE, "gridPos": {"h": 8, "w": 6, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [{"datasource": DATASOURCE, "expr": expr, "legendFormat": legend,
                     "refId": chr(ord("A") + i)} for i, (expr, legend) in enumerate(targets)],
    }


def dashboard() -> dict:
    panels, pid, y = [], 1, 0
    for row, row_panels in ROWS:
        panels.append({"id": pid, "type": "row", "title": row, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid, y = pid + 1, y + 1
        for i, (title, unit, targets, description) in enumerate(row_panels):
            panels.append(panel(pid, title, unit, targets, description, x=(i % 4) * 6, y=y + (i // 4) * 8))
            pid += 1
        y += ((len(row_panels) + 3) // 4) * 8
    return {
        "uid": "lifeline", "title": "Lifeline", "tags": ["lifeline"], "timezone": "utc",
        "schemaVersion": 39, "version": 1, "editable": True, "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"}, "panels": panels,
        "templating": {"list": []}, "annotations": {"list": []},
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
