"""What a drill saw, as plain data: every answer its traffic got, every bus event, the marks it set.

Times are seconds since the drill started (`Timeline.t0`, a UNIX time), so that answers (our
clock) and events (the stream's timestamps) line up on one axis.
"""

from dataclasses import dataclass, field
from typing import Any

# A caller-side failure: no reply at all (the router never answered, or the bus was away).
NO_REPLY = ("timeout", "no_responders", "disconnected")


@dataclass
class Answer:
    """One synthetic request and what its caller got."""

    n: int
    request_id: str
    sent: float
    done: float | None = None  # None: still in flight when the drill ended
    status: str = "pending"  # ok | queued | error | timeout | no_responders | disconnected
    tier: str | None = None
    provider: str | None = None
    model: str | None = None
    fallback_depth: int | None = None
    answered_by: str | None = None  # cache, faq:..., maintenance, queue (no model answered)
    error_kind: str | None = None
    latency_ms: float | None = None
    cost_usd: float = 0.0
    region: str | None = None  # the request's residency pin
    allow_queue: bool = False
    ticket: str | None = None
    right: bool | None = None  # the answer holds what the question's checker expects

    @property
    def model_answered(self) -> bool:
        return self.status == "ok" and self.provider is not None and self.tier in ("full", "degraded")

    @property
    def caller_error(self) -> bool:
        """What a client would call an error: an error result or no reply at all."""
        return self.status == "error" or self.status in NO_REPLY


@dataclass
class BusEvent:
    t: float
    subject: str
    body: dict[str, Any]


@dataclass
class Timeline:
    t0: float
    route: str
    primary: str  # the route's first provider
    answers: list[Answer] = field(default_factory=list)
    events: list[BusEvent] = field(default_factory=list)  # STATUS, in stream order
    marks: dict[str, float] = field(default_factory=dict)  # fault, cleared, engaged, killed, ...
    notes: list[str] = field(default_factory=list)

    def mark(self, name: str, t: float) -> float:
        self.marks[name] = t
        return t

    def events_of(self, subject: str, **fields: object) -> list[BusEvent]:
        return [e for e in self.events
                if e.subject == subject and all(e.body.get(k) == v for k, v in fields.items())]

    def done(self) -> list[Answer]:
        return sorted((a for a in self.answers if a.done is not None), key=lambda a: a.done or 0.0)
