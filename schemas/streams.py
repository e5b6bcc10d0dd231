"""JetStream streams and KV buckets, provisioned idempotently by services/runtime at start-up."""

from dataclasses import dataclass
from typing import Literal

from . import subjects

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
    ttl: float = 0.0  # seconds a value is kept; 0 = forever
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
    # DESIGN.md says `provider.>`, `service.>`, `conversation.>` ...; listed subject by subject
    # (schemas/subjects.py STATUS_SUBJECTS) because heartbeats would flood a 90-day stream, and a
    # core request to a subject a stream captures is answered by the stream's PubAck instead of
    # the service (conversation.history.get, backup.request are request-reply).
    subjects=subjects.STATUS_SUBJECTS,
    max_age=90 * DAY,
    description="the status page's history; replayed after a restart",
)

DEADLETTER = StreamSpec(
    name="DEADLETTER",
    # Every message a consumer could not take (malformed, or past max_deliver), kept so that
    # nothing is lost silently: `lifeline queue` lists the queue's own and puts them back. The
    # reason travels in the DEADLETTER_REASON_HEADER header, the original subject in the subject.
    subjects=(f"{subjects.DEADLETTER_PREFIX}.>",),
    max_age=30 * DAY,
    description="messages a consumer could not take, with the reason",
)
QUEUE_DEADLETTERS = f"{subjects.DEADLETTER_PREFIX}.{subjects.LLM_QUEUE_PREFIX}.>"

STREAMS = (LLM_QUEUE, LLM_RESULTS, LLM_EVENTS, STATUS, DEADLETTER)

PROVIDER_HEALTH = BucketSpec(name="provider-health", history=16, description="provider -> state")
CONTROL = BucketSpec(name="control", history=64, description="kill switch, overrides")
CONFIG = BucketSpec(name="config", history=64, description="active configuration")
# key_id -> schemas.keys.ApiKey (hashed). The SQL table is the system of record; this bucket tells
# every gateway instance of a new or revoked key at once (gateway docs: "API keys").
API_KEYS = BucketSpec(name="api-keys", history=4, description="gateway API keys, hashed")

RESPONSE_CACHE = BucketSpec(
    name="response-cache", history=1, ttl=7 * DAY,
    # <route>.<sha256 of the normalized conversation> -> services/router/cache.py CacheEntry.
    # Each entry carries its route's own expiry; the bucket's ttl is the longest one allowed.
    description="answers for the minimal tier, shared by every router",
)

# Written by `lifeline budget set`, watched by every cost-guard instance: limits changed at run
# time without editing lifeline.yaml (schemas/costs.py LIMITS_SPEND_KEY).
LIMITS = BucketSpec(name="limits", history=16, description="budget limits set at run time")

# run.<epoch seconds> -> the backup-agent instance that took that scheduled run: created with
# kv.create (only one instance can), so N agent instances take each scheduled snapshot once.
BACKUP_RUNS = BucketSpec(name="backup-runs", history=1, ttl=7 * DAY,
                         description="scheduled backups claimed, one instance each")

BUCKETS = (PROVIDER_HEALTH, CONTROL, CONFIG, API_KEYS, RESPONSE_CACHE, LIMITS, BACKUP_RUNS)
