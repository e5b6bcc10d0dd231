"""Bus subjects: the fixed interface of DESIGN.md. Add freely; rename nothing."""

# Requests
LLM_COMPLETE = "llm.complete"  # request-reply, queue group "router"
LLM_QUEUE_INTERACTIVE = "llm.queue.interactive"  # durable (LLM_QUEUE stream)
LLM_QUEUE_BATCH = "llm.queue.batch"
LLM_RESULT_PREFIX = "llm.result"  # llm.result.<request_id>

# Per-call facts (LLM_EVENTS stream)
LLM_ATTEMPT = "llm.attempt"
LLM_COMPLETED = "llm.completed"

# Status (STATUS stream)
PROVIDER_DOWN = "provider.down"
PROVIDER_UP = "provider.up"
PROVIDER_DEGRADED = "provider.degraded"
BUDGET_WARNING = "budget.warning"
BUDGET_EXCEEDED = "budget.exceeded"
BUDGET_RESTORED = "budget.restored"
COST_ANOMALY = "cost.anomaly"
KILLSWITCH_ENGAGED = "killswitch.engaged"
KILLSWITCH_RELEASED = "killswitch.released"
TIER_CHANGED = "tier.changed"
CONVERSATION_HISTORY_GET = "conversation.history.get"  # request-reply
CONVERSATION_PURGED = "conversation.purged"
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
DRILL_STARTED = "drill.started"
DRILL_FINISHED = "drill.finished"

# Messages that could not be parsed: deadletter.<original subject>, with the reason in a header.
DEADLETTER_PREFIX = "deadletter"
DEADLETTER_REASON_HEADER = "Lifeline-Deadletter-Reason"


def llm_result(request_id: str) -> str:
    return f"{LLM_RESULT_PREFIX}.{request_id}"


def heartbeat(service: str) -> str:
    return f"{SERVICE_HEARTBEAT_PREFIX}.{service}"


def deadletter(subject: str) -> str:
    return f"{DEADLETTER_PREFIX}.{subject}"
