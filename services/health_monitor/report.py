"""health.report: the monitor's picture for the status page and `lifeline status`. Pure."""

from datetime import UTC, datetime

from schemas.events import (
    HealthReport,
    InstanceReport,
    ModelHealth,
    ProviderReport,
    RouteReport,
)

from .monitor import Monitor
from .signals import WindowStats
from .uptime import DAY, availability, composite, per_day, route_changes


def build_report(monitor: Monitor, now: float, *, days: int = 1) -> HealthReport:
    config = monitor.config
    monitor.timelines.prune(now)
    keep_start = now - config.health.uptime.days * DAY
    today = per_day([], now, 1)[0].day
    providers = {name: _provider(monitor, name, now, days, keep_start) for name in config.providers}
    routes = {}
    for name, route in config.routes.items():
        members = list(dict.fromkeys(m.split("/", 1)[0] for m in route.chain))  # distinct, in order
        changes = route_changes([monitor.timelines.of(p) for p in members])
        today_avail = [providers[p].uptime[0].availability if providers[p].uptime[0].day == today
                       else None for p in members]
        routes[name] = RouteReport(
            route=name, chain=list(route.chain),
            state=changes[-1][1] if changes else None,
            uptime=per_day(changes, now, days),
            availability_today=composite(today_avail),
            availability=composite([providers[p].availability for p in members]),
        )
    services = [
        InstanceReport(service=i.service, instance=i.instance, alive=not i.down,
                       last_seen=i.last_beat_at)
        for i in sorted(monitor.liveness.instances.values(), key=lambda i: (i.service, i.instance))
    ]
    return HealthReport(
        source=monitor.source, providers=providers, routes=routes, services=services,
        probe_spend_usd=round(sum(monitor.spend.values()), 8),
        probe_spend_since=datetime.fromtimestamp(monitor.spend_since, UTC))


def _provider(monitor: Monitor, name: str, now: float, days: int, keep_start: float) -> ProviderReport:
    tracker = monitor.trackers[name]
    stats = tracker.stats(now)
    evidence = tracker.evidence(now)
    changes = monitor.timelines.of(name)
    probe = monitor.last_probe.get(name)
    canary = monitor.last_canary.get(name)
    real_p95 = evidence["p95_ms"]
    return ProviderReport(
        provider=name, state=tracker.state, reason=tracker.reason,
        since=datetime.fromtimestamp(tracker.since, UTC) if tracker.since is not None else None,
        p95_ms=real_p95 if real_p95 is not None else evidence["probe_p95_ms"],
        error_rate=evidence["error_rate"],
        models={m: _model(s) for m, s in sorted(stats.items())},
        probe={
            "method": monitor.config.health.for_provider(name).probe,
            "last_at": probe.occurred_at if probe else None,
            "last_outcome": probe.outcome if probe else None,
            "last_latency_ms": probe.latency_ms if probe else None,
            "paused_for_traffic": now - tracker.last_real_at < monitor.config.health.probe.traffic_covers_s,
            "spend_usd": round(monitor.spend.get(name, 0.0), 8),
        },
        canary={
            "pass_rate": tracker.quality_rate(),
            "last_at": canary.occurred_at if canary else None,
            "last_passed": canary.passed if canary else None,
            "last_checked": canary.checked if canary else None,
            "failures": tracker.canary_failures,
        },
        uptime=per_day(changes, now, days),
        availability=availability(changes, keep_start, now),
    )


def _model(stats: WindowStats) -> ModelHealth:
    errors = stats.last_errors
    return ModelHealth(
        calls=stats.calls,
        error_rate=round(stats.error_rate, 4) if stats.error_rate is not None else None,
        p95_ms=stats.real.p95_ms, probe_p95_ms=stats.probe.p95_ms,
        rate_limited=stats.real.limited + stats.probe.limited, last_errors=errors)
