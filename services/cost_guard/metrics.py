"""The cost guard's metrics, on its own registry (service.metrics, served at /metrics)."""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class Metrics:
    spend: Counter
    admissions: Counter
    reservations: Gauge
    ledger_lag: Gauge
    ledger_pending: Gauge
    reserve_seconds: Histogram

    @classmethod
    def on(cls, registry: CollectorRegistry) -> "Metrics":
        return cls(
            spend=Counter("lifeline_cost_spend_usd", "USD recorded in the ledger, by scope kind "
                          "(global counts everything once)", ["scope"], registry=registry),
            admissions=Counter("lifeline_cost_admissions", "reservation answers by verdict",
                               ["verdict"], registry=registry),
            reservations=Gauge("lifeline_cost_reservations_in_flight",
                               "reservations not yet in the ledger", registry=registry),
            ledger_lag=Gauge("lifeline_cost_ledger_lag_seconds",
                             "age of the newest event at the moment it was recorded",
                             registry=registry),
            ledger_pending=Gauge("lifeline_cost_ledger_pending_messages",
                                 "LLM_EVENTS messages the ledger has not recorded yet",
                                 registry=registry),
            reserve_seconds=Histogram(
                "lifeline_cost_reserve_batch_seconds", "one admission transaction",
                buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
                registry=registry),
        )
