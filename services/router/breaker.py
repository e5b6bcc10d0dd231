"""A circuit breaker per provider/model, with the semantics operators know from resilience4j.

Our own, on purpose: no maintained Python library implements resilience4j's model (failure-rate
and slow-call-rate thresholds over a count- or time-based sliding window, a minimum number of
calls, a wait in open, a limited number of half-open probes) on asyncio; pybreaker and
aiobreaker count consecutive failures behind thread locks (FIELD-NOTES.md, "Circuit breakers").

Pure: time is passed in (seconds, monotonic); no I/O, no asyncio.

    CLOSED --(calls >= minimum and failure or slow rate >= threshold)--> OPEN
    OPEN --(wait_in_open elapsed, next allow())--> HALF_OPEN
    HALF_OPEN --(permitted probes done, rates under thresholds)--> CLOSED (window reset)
    HALF_OPEN --(permitted probes done, a rate at threshold)--> OPEN (wait starts again)
"""

from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, kw_only=True)
class BreakerConfig:
    window: Literal["count", "time"] = "count"
    window_size: int = 20  # calls (count) or seconds (time)
    minimum_calls: int = 10  # no verdict before this many calls in the window
    failure_rate_threshold: float = 50.0  # percent
    slow_call_rate_threshold: float = 100.0  # percent; 100 = only when every call is slow
    slow_call_s: float = 10.0  # a successful call slower than this counts as slow
    wait_in_open_s: float = 30.0
    half_open_calls: int = 3  # probes let through in half-open

    def __post_init__(self) -> None:
        if self.window_size < 1 or self.minimum_calls < 1 or self.half_open_calls < 1:
            raise ValueError("window_size, minimum_calls and half_open_calls must be at least 1")
        for name in ("failure_rate_threshold", "slow_call_rate_threshold"):
            if not 0 < getattr(self, name) <= 100:
                raise ValueError(f"{name} must be in (0, 100]")


@dataclass(frozen=True)
class _Call:
    at: float
    failed: bool
    slow: bool


class CircuitBreaker:
    def __init__(self, config: BreakerConfig) -> None:
        self.config = config
        self.state = State.CLOSED
        self.opened_at: float | None = None
        self.opened_count = 0  # how many times it has opened: evidence for events and drills
        self._window: deque[_Call] = deque()
        self._probes_out = 0  # half-open calls allowed and not yet recorded
        self._probes: list[_Call] = []  # half-open results

    # --- asking -------------------------------------------------------------------------------

    def allow(self, now: float) -> bool:
        """May a call go out now? In half-open, a True takes one of the permitted probes."""
        if self.state is State.OPEN:
            if now < self.retry_at:
                return False
            self._to(State.HALF_OPEN, now)
        if self.state is State.HALF_OPEN:
            if self._probes_out + len(self._probes) >= self.config.half_open_calls:
                return False
            self._probes_out += 1
        return True

    @property
    def retry_at(self) -> float:
        """When an open breaker lets the first probe through (-inf when not open)."""
        if self.state is not State.OPEN or self.opened_at is None:
            return float("-inf")
        return self.opened_at + self.config.wait_in_open_s

    # --- telling ------------------------------------------------------------------------------

    def record(self, now: float, *, failed: bool, duration_s: float) -> None:
        """The outcome of a call that allow() let through."""
        call = _Call(now, failed, not failed and duration_s >= self.config.slow_call_s)
        if self.state is State.HALF_OPEN:
            self._probes_out = max(0, self._probes_out - 1)
            self._probes.append(call)
            if len(self._probes) >= self.config.half_open_calls:
                if self._tripped(self._probes):
                    self._to(State.OPEN, now)
                else:
                    self._to(State.CLOSED, now)
            return
        if self.state is State.OPEN:
            return  # a call that started before the breaker opened: its verdict is already in
        self._window.append(call)
        self._trim(now)
        if len(self._window) >= self.config.minimum_calls and self._tripped(self._window):
            self._to(State.OPEN, now)

    def cancel(self) -> None:
        """A call allow() let through ended without a verdict (cancelled): give the probe back."""
        if self.state is State.HALF_OPEN and self._probes_out:
            self._probes_out -= 1

    # --- reading ------------------------------------------------------------------------------

    def rates(self, now: float) -> tuple[float, float, int]:
        """(failure rate %, slow-call rate %, calls) over the current window."""
        self._trim(now)
        calls = list(self._window)
        if not calls:
            return 0.0, 0.0, 0
        return (100 * sum(c.failed for c in calls) / len(calls),
                100 * sum(c.slow for c in calls) / len(calls), len(calls))

    # --- inside -------------------------------------------------------------------------------

    def _tripped(self, calls: "deque[_Call] | list[_Call]") -> bool:
        n = len(calls)
        failure_rate = 100 * sum(c.failed for c in calls) / n
        slow_rate = 100 * sum(c.slow for c in calls) / n
        return (failure_rate >= self.config.failure_rate_threshold
                or slow_rate >= self.config.slow_call_rate_threshold)

    def _trim(self, now: float) -> None:
        if self.config.window == "count":
            while len(self._window) > self.config.window_size:
                self._window.popleft()
        else:
            horizon = now - self.config.window_size
            while self._window and self._window[0].at <= horizon:
                self._window.popleft()

    def _to(self, state: State, now: float) -> None:
        self.state = state
        self._probes_out = 0
        self._probes = []
        if state is State.OPEN:
            self.opened_at = now
            self.opened_count += 1
            self._window.clear()
        elif state is State.CLOSED:
            self.opened_at = None
            self._window.clear()
