"""Which members may be called right now, and why not: pure state, fed by every call's outcome.

- a circuit breaker per provider/model (breaker.py);
- a cool-down per provider after a 429, as long as its Retry-After says;
- a provider whose key was refused (401/403) is out of rotation until the router restarts or the
  health monitor reports it up again: retrying a revoked or compromised key helps nobody;
- the health monitor's verdicts from the `provider-health` KV (`down` = skipped);
- the fault switch (control KV `fault.<provider>`): skipped exactly like `down`, for drills on
  real vendors and for taking a bad provider out of rotation by hand;
- slow start: a member whose breaker closed again, or a provider the monitor says is up again,
  takes a share of first attempts that ramps up over `slow_start` (slow_start.py).
"""

from dataclasses import dataclass, field

from schemas.completion import ErrorKind
from services.providers.base import ProviderError

from .breaker import BreakerConfig, CircuitBreaker, State
from .slow_start import SlowStart

# Outcomes that say the member is unwell. 429, auth and the caller's own errors are handled
# apart: a rate limit is a cool-down, a refused key is out of rotation, a bad request says
# nothing about the member.
BREAKER_FAILURES = frozenset({ErrorKind.TIMEOUT, ErrorKind.CONNECTION, ErrorKind.SERVER_ERROR,
                              ErrorKind.MALFORMED_RESPONSE})
DEFAULT_COOL_DOWN_S = 1.0  # a 429 without Retry-After


@dataclass
class Availability:
    breaker_config: BreakerConfig
    breakers: dict[str, CircuitBreaker] = field(default_factory=dict)  # "provider/model"
    cooling_until: dict[str, float] = field(default_factory=dict)  # provider -> monotonic time
    revoked: dict[str, str] = field(default_factory=dict)  # provider -> the vendor's words
    down: dict[str, str] = field(default_factory=dict)  # provider -> the health monitor's reason
    faulted: dict[str, str] = field(default_factory=dict)  # provider -> the fault switch's reason
    slow_start: SlowStart = field(default_factory=lambda: SlowStart(0.0))

    def breaker(self, member: str) -> CircuitBreaker:
        if member not in self.breakers:
            self.breakers[member] = CircuitBreaker(self.breaker_config)
        return self.breakers[member]

    def refusal(self, provider: str, member: str, now: float) -> str | None:
        """None if a call may go out now (in half-open this takes a probe), else why not."""
        if provider in self.revoked:
            return f"{provider} is out of rotation: its key was refused ({self.revoked[provider]})"
        if provider in self.down:
            return f"{provider} is down per the health monitor ({self.down[provider]})"
        if provider in self.faulted:
            return f"{provider} is failing by the fault switch ({self.faulted[provider]})"
        until = self.cooling_until.get(provider, 0.0)
        if now < until:
            return f"{provider} is rate limited for {until - now:.1f}s more"
        if not self.breaker(member).allow(now):
            return f"{member} circuit is {self.breaker(member).state}"
        return None

    def due_back(self, members: list[tuple[str, str]], now: float) -> float | None:
        """The earliest time one of these members can be called again, if waiting can help."""
        times = []
        for provider, member in members:
            if provider in self.revoked or provider in self.down or provider in self.faulted:
                continue
            breaker = self.breaker(member)
            at = max(self.cooling_until.get(provider, now),
                     breaker.retry_at if breaker.state is State.OPEN else now)
            times.append(at)
        return min(times) if times else None

    def record(self, provider: str, member: str, now: float, *, duration_s: float,
               error: ProviderError | None) -> bool:
        """One call's outcome. True when it took the provider's key out of rotation (a 401/403
        on a provider that was in rotation): the start of a refusal episode, said once."""
        breaker = self.breaker(member)
        was = breaker.state
        if error is None:
            breaker.record(now, failed=False, duration_s=duration_s)
        elif error.kind in BREAKER_FAILURES:
            breaker.record(now, failed=True, duration_s=duration_s)
        else:
            breaker.cancel()
            if error.kind is ErrorKind.RATE_LIMITED:
                wait = error.retry_after if error.retry_after is not None else DEFAULT_COOL_DOWN_S
                self.cooling_until[provider] = max(self.cooling_until.get(provider, 0.0), now + wait)
            elif error.kind is ErrorKind.AUTH:
                newly = provider not in self.revoked
                self.revoked[provider] = error.message
                return newly
        if was is State.HALF_OPEN and breaker.state is State.CLOSED:
            self.slow_start.begin(member, now)  # the probes passed: ramp up, do not slam it
        return False

    def fault_switch(self, provider: str, reason: str | None, now: float) -> None:
        """`fault.<provider>` set (reason) or released (None); a release ramps up like a return."""
        if reason is not None:
            self.faulted[provider] = reason
        elif self.faulted.pop(provider, None) is not None:
            self.came_back(provider, now)

    def came_back(self, provider: str, now: float) -> None:
        """The health monitor says `up` after `down` (or a refused key works again): ramp up."""
        self.slow_start.begin(provider, now)

    def ramp_admits(self, provider: str, member: str, now: float) -> bool:
        """Slow start: may this request try `member` first? (False: it goes behind the rest.)"""
        return self.slow_start.admit(member, provider, now)

    def cancelled(self, member: str) -> None:
        self.breaker(member).cancel()
