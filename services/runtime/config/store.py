"""Conversation store: retention per route, ingest batching, history size."""

from typing import Annotated

from pydantic import Field

from ._base import Strict

Days = Annotated[float, Field(gt=0)]


class RetentionConfig(Strict):
    """How long turns are kept, by the route that answered them. None: for ever."""

    default_days: Days | None = None  # routes not listed below
    routes: dict[str, Days | None] = Field(default_factory=dict)  # route -> days (null: for ever)
    sweep_interval_s: float = Field(default=3600.0, gt=0)  # how often expired turns are deleted


class IngestConfig(Strict):
    """The durable consumer of llm.completed (see docs/services/conversation-store.md)."""

    batch_size: int = Field(default=256, ge=1, le=1000)  # turns per transaction, at most
    max_wait_ms: int = Field(default=50, ge=1)  # a partial batch is written after this long
    # The server redelivers a message not acked within this; while a batch waits for the
    # database, the store tells the server it is still working on it every ack_wait_s / 3.
    ack_wait_s: float = Field(default=30.0, ge=1)
    retry_initial_ms: int = Field(default=200, ge=1)  # first wait after a database error
    retry_max_ms: int = Field(default=5000, ge=1)  # the wait doubles up to this


class HistoryConfig(Strict):
    # A history reply carries at most this many turns (the newest), and never more bytes than
    # the bus allows in one message (NATS max_payload, 1 MB by default): older turns are cut.
    max_turns: int = Field(default=1000, ge=1)


class StoreConfig(Strict):
    """The `store` section of lifeline.yaml (optional; every field has a default)."""

    retention: RetentionConfig = RetentionConfig()
    ingest: IngestConfig = IngestConfig()
    history: HistoryConfig = HistoryConfig()
