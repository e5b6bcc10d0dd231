"""Event payloads. Every event carries id, occurred_at and source (DESIGN.md, bus contract).

`id` is also the event's `Nats-Msg-Id`, so a retried publish is stored once; consumers are
idempotent on it. Add fields freely; rename nothing.
"""

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import uuid4

from pydantic import BaseModel, Field

from .completion import Attempt, ErrorKind, Tier, Usage


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    id: str = Field(default_factory=lambda: uuid4().hex)
    occurred_at: datetime = Field(default_factory=utcnow)
    source: str = ""  # "<service>/<instance>"


# --- llm.* (LLM_EVENTS stream) -------------------------------------------------------------------

class LlmAttempt(Event, Attempt):
    """One call to one provider/model; the passive health signal."""

    request_id: str
    route: str
    attempt_no: int  # 0-based position within the request
    status_code: int | None = None
    # What the vendor bills for this call: also for a hedged loser or a call that failed after
    # the vendor did the work. 0 when nothing was billed.
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    # Who pays for a billed attempt (the cost guard charges them even if llm.completed is lost).
    user_id: str | None = None
    key_id: str | None = None
    team_id: str | None = None


class LlmCompleted(Event):
    """One finished request; spend and history are built from these."""

    request_id: str
    route: str
    status: Literal["ok", "queued", "error"]
    tier: Tier | None
    provider: str | None
    model: str | None
    fallback_depth: int | None
    usage: Usage
    cost_usd: float  # everything this request cost, billed attempts included
    latency_ms: float
    user_id: str | None = None
    session_id: str | None = None
    key_id: str | None = None
    team_id: str | None = None
    region: str | None = None
    priority: Literal["interactive", "batch"] = "interactive"
    messages: list[dict[str, str]] = Field(default_factory=list)
    content: str | None = None
    error_kind: ErrorKind | None = None
    attempts: int = 0
    cached: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)


# --- provider.* (health monitor; key_refused from the router) -------------------------------------

class ProviderEvent(Event):
    provider: str
    reason: str
    model: str | None = None  # None: the provider as a whole
    state: Literal["up", "degraded", "down"] | None = None
    since: datetime | None = None  # when the previous state began
    evidence: dict[str, Any] = Field(default_factory=dict)  # error rate, p95, last errors, ...


class ProviderDown(ProviderEvent):
    pass


class ProviderUp(ProviderEvent):
    pass


class ProviderDegraded(ProviderEvent):
    pass


class ProviderKeyRefused(ProviderEvent):
    """A 401/403 took the provider out of rotation: a revoked or compromised key."""

    status_code: int | None = None


# --- service.* (heartbeats; liveness from the health monitor) -------------------------------------

class Heartbeat(Event):
    service: str
    instance: str
    started_at: datetime
    health_url: str | None = None
    in_flight: int = 0
    interval_s: float | None = None  # seconds until the next beat; the monitor's clock for misses
    stopping: bool = False  # the last beat of a clean stop (SIGTERM): no alarm when beats end


class ServiceEvent(Event):
    service: str
    instance: str
    reason: str = ""
    last_seen: datetime | None = None


class ServiceDown(ServiceEvent):
    pass


class ServiceUp(ServiceEvent):
    pass


# --- health.* (health monitor) -----------------------------------------------------------------------

ProviderState = Literal["up", "degraded", "down"]
ProbeKind = Literal["models", "completion", "canary"]


class HealthProbe(Event):
    """health.probe: one active probe's result, shared so every monitor instance sees the same."""

    provider: str
    model: str | None = None  # None: the provider as a whole (a models list)
    kind: ProbeKind
    outcome: Literal["ok"] | ErrorKind
    latency_ms: float
    status_code: int | None = None
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0  # priced from lifeline.yaml
    passed: int | None = None  # canary: golden prompts answered right ...
    checked: int | None = None  # ... of this many asked
    failures: list[str] = Field(default_factory=list)  # canary: which checks failed, and why


class HealthReportRequest(BaseModel):
    """health.report: the health monitor's picture; `days` of per-day uptime (today first)."""

    days: int = Field(default=1, ge=1, le=366)


class UptimeDay(BaseModel):
    day: str  # UTC date, YYYY-MM-DD
    up_s: float = 0.0
    degraded_s: float = 0.0
    down_s: float = 0.0
    unknown_s: float = 0.0  # not yet monitored (or the day's future part)
    availability: float | None = None  # (up + degraded) / monitored time; None: never monitored


class ModelHealth(BaseModel):
    calls: int = 0  # in the sliding window, real calls and probes
    error_rate: float | None = None
    p95_ms: float | None = None  # real calls (llm.attempt), answered
    probe_p95_ms: float | None = None
    rate_limited: int = 0
    last_errors: list[str] = Field(default_factory=list)


class ProviderReport(BaseModel):
    provider: str
    state: ProviderState | None  # None: no verdict yet
    reason: str = ""
    since: datetime | None = None
    p95_ms: float | None = None  # the worst model's p95 over the window (real calls, else probes)
    error_rate: float | None = None
    models: dict[str, ModelHealth] = Field(default_factory=dict)
    probe: dict[str, Any] = Field(default_factory=dict)  # method, last result, spend
    canary: dict[str, Any] = Field(default_factory=dict)  # pass rate, last failures
    uptime: list[UptimeDay] = Field(default_factory=list)  # today first
    availability: float | None = None  # over the whole kept period (90 days)


class RouteReport(BaseModel):
    route: str
    chain: list[str]
    state: ProviderState | None  # up: the primary is; degraded: a fallback answers; down: none can
    uptime: list[UptimeDay] = Field(default_factory=list)
    availability_today: float | None = None  # composite: 1 - prod(1 - a_i) over its providers
    availability: float | None = None  # composite over the whole kept period


class InstanceReport(BaseModel):
    service: str
    instance: str
    alive: bool
    last_seen: datetime | None = None


class HealthReport(BaseModel):
    source: str
    generated_at: datetime = Field(default_factory=utcnow)
    providers: dict[str, ProviderReport] = Field(default_factory=dict)
    routes: dict[str, RouteReport] = Field(default_factory=dict)
    services: list[InstanceReport] = Field(default_factory=list)
    probe_spend_usd: float = 0.0  # every probe and canary this instance has seen since it started
    probe_spend_since: datetime | None = None
    error: str | None = None  # the request could not be read: what was wrong with it


# --- budget.*, cost.*, killswitch.* (cost guard) ----------------------------------------------------

BudgetScope = Literal["global", "team", "user", "key"]
BudgetPeriod = Literal["day", "month"]
BudgetAction = Literal["downgrade", "block", "killswitch"]


class BudgetEvent(Event):
    scope: BudgetScope
    scope_id: str  # "*" for global
    period: BudgetPeriod
    period_start: datetime | None = None
    limit_usd: float
    spent_usd: float
    action: BudgetAction | None = None


class BudgetWarning(BudgetEvent):
    threshold_pct: float  # the soft threshold crossed, in percent of the limit


class BudgetExceeded(BudgetEvent):
    pass


class BudgetRestored(BudgetEvent):
    reason: Literal["new_period", "limit_raised", "manual"] = "new_period"


class CostAnomaly(Event):
    scope: BudgetScope
    scope_id: str
    rate_usd_per_min: float
    baseline_usd_per_min: float
    factor: float  # rate / baseline
    action: Literal["none", "killswitch"] = "none"


class KillswitchEvent(Event):
    reason: str
    actor: str
    scope: str = "all"  # "all", "route:<name>", "key:<key_id>"


class KillswitchEngaged(KillswitchEvent):
    pass


class KillswitchReleased(KillswitchEvent):
    pass


# --- tier.changed (router) --------------------------------------------------------------------------

class TierChanged(Event):
    route: str
    from_tier: Tier | None
    to_tier: Tier
    reason: str = ""


# --- conversation.* (conversation store) --------------------------------------------------------------

class HistoryRequest(BaseModel):
    """conversation.history.get: a session's turns, oldest first."""

    session_id: str
    limit: int | None = Field(default=None, gt=0)  # the newest `limit` turns, still oldest first


class Turn(BaseModel):
    request_id: str
    at: datetime
    route: str
    messages: list[dict[str, str]]  # what the caller sent in this turn
    content: str | None  # what the answer said
    provider: str | None = None
    model: str | None = None
    tier: Tier | None = None


class HistoryReply(BaseModel):
    session_id: str
    turns: list[Turn] = Field(default_factory=list)
    error: str | None = None
    # True when older turns were left out: beyond `limit`, the store's history.max_turns, or what
    # fits in one bus message.
    truncated: bool = False


class ConversationPurged(Event):
    user_id: str
    turns: int
    conversations: int
    reason: str = ""
    actor: str = ""


class PurgeRequest(BaseModel):
    """conversation.purge: delete every turn and conversation of one user (a data subject's
    request, or sensitive data that leaked into prompts)."""

    user_id: str = Field(min_length=1)
    reason: str = Field(min_length=1)  # kept in the purge log and on conversation.purged
    actor: str = ""  # who asked (operator, ticket)


class PurgeReply(BaseModel):
    user_id: str
    turns: int = 0  # turns deleted
    conversations: int = 0  # conversations deleted
    event_id: str | None = None  # the conversation.purged event that announced it
    error: str | None = None


# --- backup.*, restore.* (backup agent) -------------------------------------------------------------

class BackupCompleted(Event):
    snapshot_id: str
    target: str
    artifacts: int
    rows: int
    bytes: int
    duration_s: float
    events_seq: int  # the LLM_EVENTS stream sequence the snapshot covers


class BackupVerified(Event):
    snapshot_id: str
    duration_s: float
    rows: int


class BackupFailed(Event):
    snapshot_id: str | None
    stage: Literal["snapshot", "upload", "verify", "retention"]
    reason: str


class RestoreCompleted(Event):
    snapshot_id: str
    to_time: datetime | None = None
    rows: int
    replayed: int  # llm.completed events replayed after the snapshot
    duration_s: float


# --- incident.* (notifier) ---------------------------------------------------------------------------
# `id` stays the event's own id (the Nats-Msg-Id, unique per event): one incident has many updates,
# so the incident is named by `incident_id`.

IncidentStatus = Literal["investigating", "identified", "monitoring", "resolved"]
Impact = Literal["none", "minor", "major", "critical"]


class IncidentEvent(Event):
    incident_id: str
    title: str
    component: str
    status: IncidentStatus
    impact: Impact = "minor"
    message: str = ""
    started_at: datetime | None = None
    resolved_at: datetime | None = None


class IncidentOpened(IncidentEvent):
    pass


class IncidentUpdated(IncidentEvent):
    pass


class IncidentResolved(IncidentEvent):
    duration_s: float | None = None


# --- drill.* (the `lifeline drill` command) ----------------------------------------------------------

class DrillStarted(Event):
    drill_id: str
    scenario: str


class DrillFinished(Event):
    drill_id: str
    scenario: str
    passed: bool
    figures: dict[str, Any] = Field(default_factory=dict)  # rto_s, rpo_s, errors, detection_s ...
    targets: dict[str, Any] = Field(default_factory=dict)
    report: str | None = None  # where the report was written
