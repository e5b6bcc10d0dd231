"""The completion request and result: the contract between applications and the router."""

from enum import StrEnum
from typing import Any, Literal
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field


class ErrorKind(StrEnum):
    """One error taxonomy for every vendor (services/providers maps their bodies onto it)."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    CONTEXT_TOO_LONG = "context_too_long"
    CONTENT_POLICY = "content_policy"
    MALFORMED_RESPONSE = "malformed_response"
    # Router-side kinds: never from a vendor.
    INVALID_REQUEST = "invalid_request"  # the bus message itself was not a valid request
    NO_ROUTE = "no_route"
    EXHAUSTED = "exhausted"  # every member of the chain failed
    EXPIRED = "expired"  # a parked request whose deadline passed before a provider came back
    BUDGET_EXHAUSTED = "budget_exhausted"  # a hard budget with action `block` is spent
    LIMITED = "limited"  # a per-user or per-key rate limit; the message says which and when
    CANCELLED = "cancelled"  # the caller of a stream went away before it ended


Tier = Literal["full", "degraded", "minimal", "emergency"]
Status = Literal["ok", "queued", "error"]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "tool"]
    content: str


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(default_factory=lambda: uuid4().hex, min_length=1, max_length=128)
    route: str = "chat"
    messages: list[Message] = Field(min_length=1)
    user_id: str | None = None
    session_id: str | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    priority: Literal["interactive", "batch"] = "interactive"
    deadline_ms: int | None = Field(default=None, gt=0)
    allow_queue: bool = False
    region: str | None = None
    stream: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Added to DESIGN.md's fields: who pays (the gateway sets them from the API key), and where a
    # parked request's answer is POSTed when it is ready.
    key_id: str | None = None
    team_id: str | None = None
    callback_url: str | None = None


class Attempt(BaseModel):
    provider: str
    model: str
    # "cancelled": a hedged attempt that lost to another one (says nothing about the vendor)
    outcome: Literal["ok", "cancelled"] | ErrorKind
    latency_ms: float
    error: str | None = None


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0


class ResultError(BaseModel):
    kind: ErrorKind
    message: str
    retry_after_s: float | None = None  # when asking again can help (limits, budgets)


class CompletionResult(BaseModel):
    request_id: str
    status: Status
    content: str | None = None
    tier: Tier | None = None
    provider: str | None = None
    model: str | None = None
    fallback_depth: int | None = None  # 0 = the route's primary answered
    attempts: list[Attempt] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    cached: bool = False
    ticket: str | None = None
    error: ResultError | None = None
    # Added to DESIGN.md's fields: what answered when no model did ("cache", "faq:<entry id>",
    # "rule:<topic>", "maintenance", "queue", "killswitch": the maintenance message because a
    # kill switch is engaged); None when a model answered (see provider/model).
    answered_by: str | None = None
