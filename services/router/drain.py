"""How the queue drains, pure: the pace (slow start, ramp, back-off on 429), the token bucket
that holds calls to that pace, what to do with each outcome, and when a parked request expires.

Time is passed in (seconds, monotonic unless named otherwise). Our own token bucket rather than
a library's (aiolimiter, limits): the pace changes every moment of the ramp, interactive work
must take tokens before batch work, and an unused token is handed back; none of them does all
three.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from schemas.completion import CompletionResult, ErrorKind
from services.runtime.config.tiers import DrainPolicy

Priority = Literal["interactive", "batch"]

# Kinds that say the vendors (or our limits) cannot answer now: the request waits and is tried
# again. Every other error is the request's own answer (a bad request stays bad).
OUTAGE = frozenset({ErrorKind.TIMEOUT, ErrorKind.CONNECTION, ErrorKind.SERVER_ERROR,
                    ErrorKind.RATE_LIMITED, ErrorKind.MALFORMED_RESPONSE, ErrorKind.AUTH,
                    ErrorKind.EXHAUSTED, ErrorKind.LIMITED})


class Verdict(StrEnum):
    ANSWERED = "answered"  # publish the answer, ack
    FINAL_ERROR = "final_error"  # publish the error as the answer, ack
    WAIT = "wait"  # nothing could be called, or the vendors failed: hold it and try again


def verdict(result: CompletionResult) -> Verdict:
    if result.status == "ok":
        return Verdict.ANSWERED
    if result.error is not None and result.error.kind not in OUTAGE:
        return Verdict.FINAL_ERROR
    return Verdict.WAIT


def saw_rate_limit(result: CompletionResult) -> bool:
    """A vendor answered 429 during this request (even if another member then answered)."""
    return any(a.outcome == ErrorKind.RATE_LIMITED for a in result.attempts)


def expires_at(queued_at: float, deadline_ms: int | None, policy: DrainPolicy) -> float:
    """Unix seconds after which a parked request gets `expired` instead of a late answer."""
    return queued_at + (deadline_ms / 1000 if deadline_ms else policy.default_deadline_s)


def retry_delay(failures: int, policy: DrainPolicy) -> float:
    """The wait before trying a held request again after `failures` outage failures (>= 1)."""
    return min(policy.retry_delay_s * 2 ** (failures - 1), policy.retry_delay_max_s)


@dataclass
class DrainRate:
    """The pace of the drain for this router: `share` of the configured rate, ramping.

    Slow start, as TCP does it: after an outage (a vendor failed a drained call) the pace drops
    back to start_rate; from the first success it doubles every ramp_every_s up to max_rate. A
    429 halves the pace (it ramps again from there) and pauses batch work for batch_pause_s.
    """

    policy: DrainPolicy
    share: float = 1.0  # this router's fraction of the configured rate (1 / live routers)
    base: float | None = None  # the pace the ramp starts from; None: start_rate
    ramp_from: float | None = None  # when the current ramp began; None: not ramping
    batch_paused_until: float = float("-inf")

    def rate(self, now: float) -> float:
        p = self.policy
        base = self.base if self.base is not None else p.start_rate
        pace = base if self.ramp_from is None else base * 2 ** ((now - self.ramp_from) / p.ramp_every_s)
        return min(pace, p.max_rate) * self.share

    def succeeded(self, now: float) -> None:
        if self.ramp_from is None:
            self.ramp_from = now

    def failed(self) -> None:
        """A vendor failed a drained call: the outage may not be over; start slow again."""
        self.base = None
        self.ramp_from = None

    def throttled(self, now: float) -> None:
        """A vendor said 429: half the pace, ramping again from there; batch work pauses."""
        self.base = max(self.policy.start_rate, self.rate(now) / self.share / 2)
        self.ramp_from = now
        self.batch_paused_until = max(self.batch_paused_until, now + self.policy.batch_pause_s)

    def batch_paused(self, now: float) -> bool:
        return now < self.batch_paused_until


@dataclass
class TokenBucket:
    """Tokens accrue at `rate(now)` up to `burst`; each drained call takes one.

    `take` returns 0 when a token was taken, else the seconds until one will be there.
    Interactive work is served first: batch may take a token only when no interactive caller
    is waiting (the caller tells us how many are).
    """

    burst: float = 1.0  # tokens; 1 keeps every second at or under the pace
    tokens: float = 0.0
    updated: float | None = None
    waiting: dict[str, int] = field(default_factory=lambda: {"interactive": 0, "batch": 0})

    def refill(self, now: float, rate: float) -> None:
        if self.updated is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * rate)
        self.updated = now

    def take(self, now: float, rate: float, priority: Priority) -> float:
        self.refill(now, rate)
        if priority == "batch" and self.waiting["interactive"]:
            return max(1.0 - self.tokens, 0.0) / rate + 1 / rate  # after the interactive ones
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / rate

    def give_back(self) -> None:
        """A token taken for a fetch that found nothing."""
        self.tokens = min(self.burst, self.tokens + 1.0)


@dataclass
class Peers:
    """Router instances alive (heartbeats within `timeout` s): each drains its share of the rate."""

    timeout: float
    last_seen: dict[str, float] = field(default_factory=dict)

    def seen(self, instance: str, now: float) -> None:
        self.last_seen[instance] = now

    def alive(self, now: float) -> int:
        for name in [n for n, t in self.last_seen.items() if now - t > self.timeout]:
            del self.last_seen[name]
        return max(1, len(self.last_seen))
