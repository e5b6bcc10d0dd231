"""The 90-day uptime bar: per component and UTC day, how much of the observed time it was up.

Pure. Weights as Statuspage counts them: a major outage is downtime, a partial outage counts
30 %, degraded performance does not count against uptime.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from .components import STATUSES, Status

WEIGHT = {"operational": 0.0, "degraded_performance": 0.0, "partial_outage": 0.3,
          "major_outage": 1.0}


@dataclass(frozen=True)
class Span:
    status: str
    start: datetime
    end: datetime | None  # None: still in this status


@dataclass(frozen=True)
class Day:
    day: date
    uptime: float | None  # 0..1; None: nothing observed that day
    worst: Status | None
    down_s: float  # weighted seconds of downtime


def daily(spans: list[Span], now: datetime, days: int) -> list[Day]:
    """`days` entries, oldest first, the last one today (UTC)."""
    today = now.astimezone(UTC).date()
    out = []
    for back in range(days - 1, -1, -1):
        d = today - timedelta(days=back)
        lo = datetime.combine(d, time.min, tzinfo=UTC)
        hi = min(lo + timedelta(days=1), now)
        observed = down = 0.0
        seen: list[str] = []
        for s in spans:
            start, end = max(s.start, lo), min(s.end or now, hi)
            if end <= start:
                continue
            seconds = (end - start).total_seconds()
            observed += seconds
            down += seconds * WEIGHT.get(s.status, 0.0)
            seen.append(s.status)
        worst = max(seen, key=STATUSES.index) if seen else None
        out.append(Day(d, 1.0 - down / observed if observed else None, worst, down))  # type: ignore[arg-type]
    return out


def overall(spans: list[Span], now: datetime, days: int) -> float | None:
    """Uptime over the whole window (observed time only)."""
    lo = now - timedelta(days=days)
    observed = down = 0.0
    for s in spans:
        start, end = max(s.start, lo), min(s.end or now, now)
        if end > start:
            seconds = (end - start).total_seconds()
            observed += seconds
            down += seconds * WEIGHT.get(s.status, 0.0)
    return 1.0 - down / observed if observed else None
