"""JetStream streams and KV buckets, provisioned idempotently by services/runtime at start-up."""

from dataclasses import dataclass
from typing import Literal

DAY = 24 * 3600.0


@dataclass(frozen=True, kw_only=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    retention: Literal["limits", "workqueue"] = "limits"
    max_age: float = 0.0  # seconds; 0 = forever
    duplicate_window: float = 120.0  # seconds: Nats-Msg-Id dedupe horizon
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class BucketSpec:
    name: str
    history: int  # revisions kept per key (JetStream allows at most 64)
    description: str = ""


LLM_QUEUE = StreamSpec(
    name="LLM_QUEUE",
    subjects=("llm.queue.>",),
    retention="workqueue",
    description="parked requests: nothing is lost while every provider is down",
)
LLM_RESULTS = StreamSpec(
    name="LLM_RESULTS",
    subjects=("llm.result.>",),
    max_age=DAY,
    description="answers to parked requests, fetchable later",
)
LLM_EVENTS = StreamSpec(
    name="LLM_EVENTS",
    subjects=("llm.attempt", "llm.completed"),
    max_age=7 * DAY,
    description="spend, history and passive health",
)
STATUS = StreamSpec(
    name="STATUS",
    # DESIGN.md says `service.>` and `conversation.>`; narrowed because heartbeats would flood a
    # 90-day stream, and a core request to a subject a stream captures is answered by the stream's
    # PubAck instead of the service (conversation.history.get is request-reply).
    subjects=(
        "provider.>", "budget.>", "cost.>", "killswitch.>", "tier.>", "backup.>", "restore.>",
        "incident.>", "drill.>", "service.down", "service.up", "conversation.purged",
    ),
    max_age=90 * DAY,
    description="the status page's history; replayed after a restart",
)

STREAMS = (LLM_QUEUE, LLM_RESULTS, LLM_EVENTS, STATUS)

PROVIDER_HEALTH = BucketSpec(name="provider-health", history=16, description="provider -> state")
CONTROL = BucketSpec(name="control", history=64, description="kill switch, overrides")
CONFIG = BucketSpec(name="config", history=64, description="active configuration")

BUCKETS = (PROVIDER_HEALTH, CONTROL, CONFIG)
