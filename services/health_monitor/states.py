"""One provider's state - up, degraded or down - with hysteresis and flap damping. Pure: samples
and time (seconds since the epoch) come in, a proposed transition comes out; the edge decides
whether this instance gets to make it (the KV's compare-and-set) and tells `adopt` what was made.

    (none) --first answered call--> up | degraded        (none) --N failures--> down
    up | degraded --N consecutive failures--> down
    down --M consecutive answered calls--> up | degraded
    up <--> degraded: the window's figures (error rate, 429s, p95, canary pass rate)
    a turn for the worse within flap_window_s of flap_recoveries recoveries --> degraded
    "flapping", held until every call has gone one way for stable_s (then down, or up | degraded)

An outage that starts and ends (up, degraded, down, up) is not a flap; falling again soon after
coming back is.
"""

from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from services.runtime.config.health import (
    CanarySettings,
    DegradedSettings,
    HysteresisSettings,
)

from .signals import Sample, Verdict, Window, WindowStats

State = Literal["up", "degraded", "down"]
WHOLE = "*"  # the window of a probe about the provider as a whole (its models list)
FLAPPING = "flapping"
RANK = {None: -1, "up": 0, "degraded": 1, "down": 2}  # a higher rank is worse


@dataclass(frozen=True, kw_only=True)
class Rules:
    hysteresis: HysteresisSettings
    degraded: DegradedSettings
    canary: CanarySettings
    latency_p95_ms: float  # this provider's threshold for real calls


@dataclass(frozen=True, kw_only=True)
class Proposal:
    state: State
    reason: str
    evidence: dict[str, Any]


class ProviderTracker:
    def __init__(self, name: str, rules: Rules) -> None:
        self.name = name
        self.rules = rules
        self.state: State | None = None  # None: no verdict yet
        self.reason = ""
        self.since: float | None = None
        self.failures = 0  # consecutive, since the state began
        self.successes = 0
        self.run: Verdict | None = None  # the current one-way run ("ok" or "failed") ...
        self.run_started = 0.0  # ... and when it began
        self.last_error: str | None = None
        self.recoveries: deque[float] = deque()  # when each recent turn for the better happened
        self.fresh_since = 0.0  # windows ignore what came before the last recovery
        self.windows: dict[str, Window] = {}
        self.quality: deque[bool] = deque(maxlen=rules.canary.window)
        self.canary_failures: list[str] = []
        self.last_real_at = 0.0  # the latest real call (llm.attempt) seen

    @property
    def flapping(self) -> bool:
        return self.state == "degraded" and self.reason == FLAPPING

    # --- inputs -----------------------------------------------------------------------------

    def observe(self, model: str | None, sample: Sample) -> None:
        key = model or WHOLE
        if key not in self.windows:
            self.windows[key] = Window(self.rules.degraded.window_s)
        self.windows[key].add(sample)
        if not sample.probe:
            self.last_real_at = max(self.last_real_at, sample.at)
        if self.since is not None and sample.at < self.since:
            return  # from before the current state began: it cannot vote on leaving it
        if sample.verdict == "failed":
            self.failures, self.successes = self.failures + 1, 0
            self.last_error = sample.error
        elif sample.verdict == "ok":
            self.successes, self.failures = self.successes + 1, 0
        elif sample.verdict == "limited":
            self.failures = 0  # it answered, if only to say "later": not down
            return
        else:
            return
        if self.run != sample.verdict:
            self.run, self.run_started = sample.verdict, sample.at

    def observe_canary(self, passed: int, checked: int, failures: list[str]) -> None:
        self.quality.extend([True] * passed + [False] * (checked - passed))
        self.canary_failures = failures

    def adopt(self, state: State, reason: str, since: float, previous: State | None) -> None:
        """A transition was made (by this instance or another): it is now the truth here."""
        was_down = self.state == "down" or previous == "down"
        was_flapping = self.flapping
        if previous is not None and RANK[state] < RANK[previous] and since not in self.recoveries:
            self.recoveries.append(since)
        self.state, self.reason, self.since = state, reason, since
        if state == "down":
            self.successes = 0
        elif was_down:
            self.failures = 0
        if (was_down and state != "down") or (was_flapping and not self.flapping):
            self.fresh_since = since

    # --- the decision -----------------------------------------------------------------------

    def decide(self, now: float) -> Proposal | None:
        h = self.rules.hysteresis
        if self.flapping:
            if self.run is None or now - self.run_started < h.stable_s:
                return None
            down = self.run == "failed" and self.failures >= h.failures_to_down
            target = self._down(now) if down else self._answering(now, since=self.run_started)
            return target if target.state != "degraded" or target.reason != FLAPPING else None
        if self.state != "down" and self.failures >= h.failures_to_down:
            target = self._down(now)
        elif self.state == "down":
            if self.successes < h.successes_to_up:
                return None
            # Judged on the answers since it came back: the outage's failures are history.
            target = self._answering(now, since=self.run_started)
        elif self.state is None:
            if self.successes < 1:
                return None
            target = self._answering(now)
        else:
            target = self._answering(now)
        if target.state == self.state:
            return None
        worse = self.state is not None and RANK[target.state] > RANK[self.state]
        if worse and self._recent_recoveries(now) >= h.flap_recoveries:
            return Proposal(state="degraded", reason=FLAPPING, evidence={
                **target.evidence, "would_be": target.state, "would_be_reason": target.reason,
                "recoveries_in_window": self._recent_recoveries(now)})
        return target

    def _recent_recoveries(self, now: float) -> int:
        window = self.rules.hysteresis.flap_window_s
        while self.recoveries and now - self.recoveries[0] >= window:
            self.recoveries.popleft()
        return len(self.recoveries)

    def _down(self, now: float) -> Proposal:
        kind = (self.last_error or "failing").split(":", 1)[0]
        return Proposal(state="down", reason=kind, evidence=self.evidence(now))

    def _answering(self, now: float, since: float = 0.0) -> Proposal:
        """up, or degraded with the first reason that holds (in this order)."""
        reasons = self._degraded_reasons(now, since)
        evidence = {**self.evidence(now), **({"degraded": reasons} if reasons else {})}
        if reasons:
            return Proposal(state="degraded", reason=reasons[0].split(" ", 1)[0], evidence=evidence)
        return Proposal(state="up", reason="answering", evidence=evidence)

    def _degraded_reasons(self, now: float, since: float) -> list[str]:
        d = self.rules.degraded
        found: list[str] = []
        for model, stats in self.stats(now, max(since, self.fresh_since)).items():
            real, probe = stats.real, stats.probe
            if (real.calls >= d.min_samples and (real.limited_rate or 0) >= d.rate_limited) or (
                    probe.calls >= d.probe_min_samples and (probe.limited_rate or 0) >= d.rate_limited):
                found.append(f"rate_limited {model}")
            if (real.answered + real.failed >= d.min_samples
                    and (real.error_rate or 0) >= d.error_rate):
                found.append(f"error_rate {model}")
            if real.answered >= d.min_samples and (real.p95_ms or 0) > self.rules.latency_p95_ms:
                found.append(f"latency {model}")
            elif probe.answered >= d.probe_min_samples and (probe.p95_ms or 0) > d.probe_latency_ms:
                found.append(f"latency {model} (probes)")
        rate = self.quality_rate()
        if rate is not None and rate < self.rules.canary.pass_threshold:
            found.append("quality")
        order = ("rate_limited", "error_rate", "latency", "quality")
        return sorted(found, key=lambda r: order.index(r.split(" ", 1)[0]))

    # --- figures ----------------------------------------------------------------------------

    def stats(self, now: float, since: float = 0.0) -> dict[str, WindowStats]:
        """Each model's window; decisions cut it at `since`, reports and evidence do not."""
        return {m: w.stats(now, since=since) for m, w in self.windows.items()}

    def quality_rate(self) -> float | None:
        return sum(self.quality) / len(self.quality) if self.quality else None

    def evidence(self, now: float) -> dict[str, Any]:
        stats = self.stats(now)
        real_p95 = [s.real.p95_ms for s in stats.values() if s.real.p95_ms is not None]
        probe_p95 = [s.probe.p95_ms for s in stats.values() if s.probe.p95_ms is not None]
        failed = sum(s.real.failed + s.probe.failed for s in stats.values())
        judged = failed + sum(s.real.answered + s.probe.answered for s in stats.values())
        errors = [e for s in stats.values() for e in s.last_errors]
        evidence: dict[str, Any] = {
            "error_rate": round(failed / judged, 4) if judged else None,
            "p95_ms": max(real_p95) if real_p95 else None,
            "probe_p95_ms": max(probe_p95) if probe_p95 else None,
            "calls": sum(s.calls for s in stats.values()),
            "real_calls": sum(s.real.calls for s in stats.values()),  # llm.attempt
            "consecutive_failures": self.failures,
            "consecutive_successes": self.successes,
            "last_errors": errors[-3:],
        }
        if self.quality:
            evidence["canary_pass_rate"] = round(self.quality_rate() or 0.0, 4)
            evidence["canary_failures"] = self.canary_failures
        return evidence
