"""Bus subjects: the fixed interface of DESIGN.md. Add freely; rename nothing."""

# Requests
LLM_COMPLETE = "llm.complete"  # request-reply, queue group "router"
LLM_QUEUE_INTERACTIVE = "llm.queue.interactive"  # durable (LLM_QUEUE stream)
LLM_QUEUE_BATCH = "llm.queue.batch"
LLM_QUEUE_PREFIX = "llm.queue"  # llm.queue.<priority>
LLM_RESULT_PREFIX = "llm.result"  # llm.result.<request_id>
# Streaming: a CompletionRequest published with a reply inbox; the router answers with a series
# of schemas.streaming.StreamChunk messages on that inbox (queue group "router").
LLM_STREAM = "llm.stream"
LLM_STREAM_CANCEL = "llm.stream.cancel"  # every router: the caller of a stream went away

# Per-call facts (LLM_EVENTS stream)
LLM_ATTEMPT = "llm.attempt"
LLM_COMPLETED = "llm.completed"

# Status (STATUS stream)
PROVIDER_DOWN = "provider.down"
PROVIDER_UP = "provider.up"
PROVIDER_DEGRADED = "provider.degraded"
PROVIDER_KEY_REFUSED = "provider.key_refused"  # a 401/403: the key is out of rotation
BUDGET_WARNING = "budget.warning"
BUDGET_EXCEEDED = "budget.exceeded"
BUDGET_RESTORED = "budget.restored"
COST_ANOMALY = "cost.anomaly"
KILLSWITCH_ENGAGED = "killswitch.engaged"
KILLSWITCH_RELEASED = "killswitch.released"
TIER_CHANGED = "tier.changed"
CONVERSATION_HISTORY_GET = "conversation.history.get"  # request-reply
CONVERSATION_PURGED = "conversation.purged"
CONVERSATION_PURGE = "conversation.purge"  # request-reply: delete everything of one user
# Point-in-time recovery (schemas/backup.py ReplayRequest -> ReplayReply, queue group of each
# ingesting service): after a restore, the service reads LLM_EVENTS from a sequence up to a time
# itself and runs it through its own idempotent ingest. Not in STATUS_SUBJECTS (request-reply).
CONVERSATION_REPLAY = "conversation.replay"
COST_REPLAY = "cost.replay"
BACKUP_REQUEST = "backup.request"  # request-reply: take a snapshot now
RESTORE_REQUEST = "restore.request"  # request-reply
BACKUP_COMPLETED = "backup.completed"
BACKUP_VERIFIED = "backup.verified"
BACKUP_FAILED = "backup.failed"
RESTORE_COMPLETED = "restore.completed"
INCIDENT_OPENED = "incident.opened"
INCIDENT_UPDATED = "incident.updated"
INCIDENT_RESOLVED = "incident.resolved"
SERVICE_HEARTBEAT_PREFIX = "service.heartbeat"  # service.heartbeat.<service>
SERVICE_DOWN = "service.down"
SERVICE_UP = "service.up"
HEALTH_PROBE = "health.probe"  # core, not stored: one probe's result, shared by monitor instances
HEALTH_REPORT = "health.report"  # request-reply: providers, routes, uptime, services (status page, CLI)
DRILL_STARTED = "drill.started"
DRILL_FINISHED = "drill.finished"

# Cost guard requests (request-reply, queue group "cost-guard"). Not in STATUS_SUBJECTS: a stream
# that captured them would answer a request with its PubAck instead of the cost guard.
COST_RESERVE = "cost.reserve"  # a router asks before any provider call: ReserveRequest -> ReserveReply
COST_SETTLE = "cost.settle"  # a router says what the request really cost: Settle -> {}
COST_SPEND = "cost.spend"  # `lifeline spend`: SpendQuery -> SpendReport

# Every status subject: what the STATUS stream keeps and the notifier follows. Listed one by one,
# not as `backup.>` etc.: a core request on a subject a stream captures is answered by the
# stream's PubAck instead of the service (backup.request, conversation.history.get).
STATUS_SUBJECTS = (
    PROVIDER_DOWN, PROVIDER_UP, PROVIDER_DEGRADED, PROVIDER_KEY_REFUSED,
    BUDGET_WARNING, BUDGET_EXCEEDED, BUDGET_RESTORED, COST_ANOMALY,
    KILLSWITCH_ENGAGED, KILLSWITCH_RELEASED, TIER_CHANGED, CONVERSATION_PURGED,
    BACKUP_COMPLETED, BACKUP_VERIFIED, BACKUP_FAILED, RESTORE_COMPLETED,
    INCIDENT_OPENED, INCIDENT_UPDATED, INCIDENT_RESOLVED,
    SERVICE_DOWN, SERVICE_UP, DRILL_STARTED, DRILL_FINISHED,
)

# Messages that could not be parsed: deadletter.<original subject>, with the reason in a header.
DEADLETTER_PREFIX = "deadletter"
DEADLETTER_REASON_HEADER = "Lifeline-Deadletter-Reason"
# Where a max-deliveries advisory for the queue's consumers arrives (the dead-letter hook).
MAX_DELIVERIES_ADVISORY_PREFIX = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"


def llm_result(request_id: str) -> str:
    return f"{LLM_RESULT_PREFIX}.{request_id}"


def llm_queue(priority: str) -> str:
    return f"{LLM_QUEUE_PREFIX}.{priority}"


def heartbeat(service: str) -> str:
    return f"{SERVICE_HEARTBEAT_PREFIX}.{service}"


def deadletter(subject: str) -> str:
    return f"{DEADLETTER_PREFIX}.{subject}"


def matches(subject: str, pattern: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    tokens, wanted = subject.split("."), pattern.split(".")
    for i, w in enumerate(wanted):
        if w == ">":
            return len(tokens) > i
        if i >= len(tokens) or (w != "*" and w != tokens[i]):
            return False
    return len(tokens) == len(wanted)
