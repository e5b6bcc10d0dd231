"""The backup agent's metrics, on its own registry (service.metrics, served at /metrics)."""

import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass
class Metrics:
    snapshots: Counter  # {outcome}: completed, failed
    verify_failures: Counter
    last_snapshot: Gauge  # unix time of the newest complete snapshot
    last_age: Gauge  # seconds since then (computed when scraped)
    duration: Gauge  # seconds the last snapshot took
    bytes: Gauge  # stored bytes of the last snapshot
    rows: Gauge  # rows in the last snapshot
    verify_duration: Gauge
    kept: Gauge  # snapshots on the target after retention
    deleted: Counter

    @classmethod
    def on(cls, registry: CollectorRegistry) -> "Metrics":
        last = Gauge("lifeline_backup_last_snapshot_timestamp_seconds",
                     "When the newest complete snapshot was taken (unix time; 0: none)",
                     registry=registry)
        age = Gauge("lifeline_backup_last_snapshot_age_seconds",
                    "Seconds since the newest complete snapshot (-1: none yet)", registry=registry)
        age.set_function(lambda: _age(last))
        return cls(
            snapshots=Counter("lifeline_backup_snapshots", "Snapshots attempted", ["outcome"],
                              registry=registry),
            verify_failures=Counter("lifeline_backup_verify_failures",
                                    "Snapshots that failed verification", registry=registry),
            last_snapshot=last, last_age=age,
            duration=Gauge("lifeline_backup_snapshot_duration_seconds",
                           "How long the last snapshot took", registry=registry),
            bytes=Gauge("lifeline_backup_snapshot_bytes", "Stored size of the last snapshot",
                        registry=registry),
            rows=Gauge("lifeline_backup_snapshot_rows", "Rows in the last snapshot",
                       registry=registry),
            verify_duration=Gauge("lifeline_backup_verify_duration_seconds",
                                  "How long the last verification took", registry=registry),
            kept=Gauge("lifeline_backup_snapshots_kept", "Complete snapshots on the target",
                       registry=registry),
            deleted=Counter("lifeline_backup_snapshots_deleted", "Snapshots deleted by retention",
                            registry=registry),
        )


def _age(last: Gauge) -> float:
    at = last._value.get()  # the gauge's own value: one source of truth
    return time.time() - at if at else -1.0
