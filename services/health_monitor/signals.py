"""Call outcomes, and sliding windows of them per provider/model: error rate, latency percentiles,
rate limiting. Pure: time is passed in (seconds since the epoch, the calls' own timestamps, so
that every monitor instance places a sample at the same moment).
"""

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from schemas.completion import ErrorKind

Verdict = Literal["ok", "failed", "limited", "neutral"]

# What says the provider is unwell. A refused key (auth) counts: for us the provider cannot
# serve. A 429 is its own signal (rate limited: alive, but not serving us at full rate).
FAILED = frozenset({ErrorKind.TIMEOUT, ErrorKind.CONNECTION, ErrorKind.SERVER_ERROR,
                    ErrorKind.MALFORMED_RESPONSE, ErrorKind.AUTH})
NOT_FOUND = 404  # bad_request with a 404: the vendor lacks the model (the router fails over too)
SAMPLE_CAP = 2000  # per model: bounds memory under heavy traffic; the newest are kept
LAST_ERRORS = 3


def verdict(outcome: str, status_code: int | None = None) -> Verdict:
    """What one call says about the provider. The caller's own errors (400, context too long,
    content policy) and router-side kinds say nothing about it: neutral."""
    if outcome == "ok":
        return "ok"
    if outcome == ErrorKind.RATE_LIMITED:
        return "limited"
    if outcome in FAILED or (outcome == ErrorKind.BAD_REQUEST and status_code == NOT_FOUND):
        return "failed"
    return "neutral"


@dataclass(frozen=True, kw_only=True)
class Sample:
    at: float  # seconds since the epoch
    verdict: Verdict
    latency_ms: float
    probe: bool  # an active probe (or canary), not a real call
    error: str | None = None  # "kind: message", for evidence
    timed: bool = True  # False: its latency says nothing (a canary's several long answers)


@dataclass(frozen=True, kw_only=True)
class SourceStats:
    """One source's figures (real calls or probes) over the window."""

    calls: int = 0  # answered + failed + limited (neutral calls are left out)
    answered: int = 0
    failed: int = 0
    limited: int = 0
    p95_ms: float | None = None  # of the answered calls

    @property
    def error_rate(self) -> float | None:
        judged = self.answered + self.failed
        return self.failed / judged if judged else None

    @property
    def limited_rate(self) -> float | None:
        return self.limited / self.calls if self.calls else None


@dataclass(frozen=True, kw_only=True)
class WindowStats:
    real: SourceStats
    probe: SourceStats
    last_errors: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return self.real.calls + self.probe.calls

    @property
    def error_rate(self) -> float | None:
        judged = self.real.answered + self.real.failed + self.probe.answered + self.probe.failed
        return (self.real.failed + self.probe.failed) / judged if judged else None


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100): a value that was really observed."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _source(samples: Iterable[Sample]) -> SourceStats:
    answered = failed = limited = 0
    latencies = []
    for s in samples:
        if s.verdict == "ok":
            answered += 1
            if s.timed:
                latencies.append(s.latency_ms)
        elif s.verdict == "failed":
            failed += 1
        elif s.verdict == "limited":
            limited += 1
    return SourceStats(calls=answered + failed + limited, answered=answered, failed=failed,
                       limited=limited, p95_ms=percentile(latencies, 95))


class Window:
    """The samples of the last `span_s` seconds for one provider/model."""

    def __init__(self, span_s: float, cap: int = SAMPLE_CAP) -> None:
        self.span_s = span_s
        self._samples: deque[Sample] = deque(maxlen=cap)

    def add(self, sample: Sample) -> None:
        self._samples.append(sample)

    def stats(self, now: float, *, since: float = 0.0) -> WindowStats:
        """Figures over (max(now - span, since), now]: `since` cuts off what came before a
        recovery, so an outage that has ended does not keep the provider degraded."""
        start = max(now - self.span_s, since)
        while self._samples and self._samples[0].at < now - self.span_s:
            self._samples.popleft()
        recent = [s for s in self._samples if s.at >= start]
        errors = [s.error for s in recent if s.error and s.verdict in ("failed", "limited")]
        return WindowStats(real=_source(s for s in recent if not s.probe),
                           probe=_source(s for s in recent if s.probe),
                           last_errors=errors[-LAST_ERRORS:])
