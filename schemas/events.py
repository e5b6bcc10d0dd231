"""Event payloads. Every event carries id, occurred_at and source (DESIGN.md, bus contract)."""

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


class LlmAttempt(Event, Attempt):
    """One call to one provider/model; the passive health signal."""

    request_id: str
    route: str
    attempt_no: int  # 0-based position within the request
    status_code: int | None = None


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
    cost_usd: float
    latency_ms: float
    user_id: str | None = None
    session_id: str | None = None
    region: str | None = None
    messages: list[dict[str, str]] = Field(default_factory=list)
    content: str | None = None
    error_kind: ErrorKind | None = None
    attempts: int = 0
    metadata: dict[str, Any] = Field(default_factory=dict)


class ProviderEvent(Event):
    provider: str
    reason: str
    evidence: dict[str, Any] = Field(default_factory=dict)


class ProviderDown(ProviderEvent):
    pass


class ProviderUp(ProviderEvent):
    pass


class ProviderDegraded(ProviderEvent):
    pass


class Heartbeat(Event):
    service: str
    instance: str
    started_at: datetime
    health_url: str | None = None
    in_flight: int = 0
