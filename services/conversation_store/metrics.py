"""The conversation store's metrics, on the service's own registry (served at /metrics)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class StoreMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.turns_ingested = Counter(
            "lifeline_store_turns_ingested", "Turns written to the database (duplicates not counted)",
            registry=registry)
        self.events = Counter(
            "lifeline_store_ingest_events", "llm.completed events consumed, by what became of them",
            ["outcome"], registry=registry)
        self.batch_size = Histogram(
            "lifeline_store_ingest_batch_size", "Events per batch fetched from JetStream",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000), registry=registry)
        self.lag_messages = Gauge(
            "lifeline_store_ingest_lag_messages",
            "llm.completed events in the stream not yet acknowledged by the store "
            "(consumer pending + ack pending: the stream's sequence minus what is acked)",
            registry=registry)
        self.lag_seconds = Gauge(
            "lifeline_store_ingest_lag_seconds",
            "Age of the oldest turn in the last batch written, when it was written",
            registry=registry)
        self.db_errors = Counter(
            "lifeline_store_db_errors", "Database errors: transient (retried) or row (dead-lettered)",
            ["kind"], registry=registry)
        self.db_failing = Gauge(
            "lifeline_store_db_failing", "1 while writes to the database are failing", registry=registry)
        self.history_requests = Counter(
            "lifeline_store_history_requests", "conversation.history.get requests, by outcome",
            ["outcome"], registry=registry)
        self.purged_turns = Counter(
            "lifeline_store_purged_turns", "Turns deleted by purges", registry=registry)
        self.expired_turns = Counter(
            "lifeline_store_expired_turns", "Turns deleted by the retention sweep", registry=registry)
