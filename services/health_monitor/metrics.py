"""The health monitor's Prometheus metrics, on its own registry (served at /metrics)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas.events import HealthProbe

STATE_VALUE = {None: -1, "up": 0, "degraded": 1, "down": 2}


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.probe_latency = Histogram(
            "lifeline_health_probe_latency_seconds", "Latency of this instance's probes and canaries",
            ["provider", "kind", "outcome"], registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.probe_spend = Counter(
            "lifeline_health_probe_spend_usd", "What this instance's probes and canaries cost",
            ["provider"], registry=registry)
        self.state = Gauge(
            "lifeline_health_provider_state", "-1 no verdict, 0 up, 1 degraded, 2 down",
            ["provider"], registry=registry)
        self.transitions = Counter(
            "lifeline_health_transitions", "Transitions this instance made (won the KV write for)",
            ["provider", "state"], registry=registry)
        self.conflicts = Counter(
            "lifeline_health_transition_conflicts",
            "Transitions another instance made first (this one's write lost the compare-and-set)",
            ["provider"], registry=registry)
        self.service_events = Counter(
            "lifeline_health_service_events", "service.down / service.up this instance published",
            ["service", "kind"], registry=registry)

    def probed(self, probe: HealthProbe) -> None:
        self.probe_latency.labels(probe.provider, probe.kind, str(probe.outcome)).observe(
            probe.latency_ms / 1000)
        if probe.cost_usd:
            self.probe_spend.labels(probe.provider).inc(probe.cost_usd)
