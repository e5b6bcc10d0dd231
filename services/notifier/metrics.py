"""The notifier's own metrics, on the service's registry (/metrics)."""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass(frozen=True)
class Metrics:
    incidents_open: Gauge
    alerts_sent: Counter
    alerts_failed: Counter
    alert_attempts_failed: Counter
    alerts_suppressed: Counter
    sse_clients: Gauge
    events: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> "Metrics":
        return cls(
            incidents_open=Gauge("lifeline_notifier_incidents_open", "Unresolved incidents",
                                 registry=registry),
            alerts_sent=Counter("lifeline_notifier_alerts_sent", "Alerts delivered, by channel",
                                ["channel"], registry=registry),
            alerts_failed=Counter("lifeline_notifier_alerts_failed",
                                  "Alerts given up on (too old, or refused for good), by channel",
                                  ["channel"], registry=registry),
            alert_attempts_failed=Counter("lifeline_notifier_alert_attempts_failed",
                                          "Delivery attempts that will be retried, by channel",
                                          ["channel"], registry=registry),
            alerts_suppressed=Counter("lifeline_notifier_alerts_suppressed",
                                      "Alerts dropped by a channel's rate limit, by channel",
                                      ["channel"], registry=registry),
            sse_clients=Gauge("lifeline_notifier_sse_clients",
                              "Status pages open with live updates", registry=registry),
            events=Counter("lifeline_notifier_status_events", "Status events handled, by subject",
                           ["subject"], registry=registry),
        )


def channel_label(channel: str) -> str:
    """Subscribers are one label value: a label per subscriber would grow without bound."""
    return "subscribers" if channel.startswith("subscriber:") else channel
