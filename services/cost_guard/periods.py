"""Calendar periods in UTC, pure: where a day, a month or a minute starts and when it resets."""

from datetime import UTC, datetime, timedelta
from typing import Literal

PeriodName = Literal["minute", "day", "month"]


def start_of(period: PeriodName, now: datetime) -> datetime:
    now = now.astimezone(UTC)
    if period == "minute":
        return now.replace(second=0, microsecond=0)
    if period == "day":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_start(period: PeriodName, now: datetime) -> datetime:
    start = start_of(period, now)
    if period == "minute":
        return start + timedelta(minutes=1)
    if period == "day":
        return start + timedelta(days=1)
    return (start + timedelta(days=32)).replace(day=1)


def epoch(at: datetime) -> int:
    return int(at.timestamp())


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def seconds_until_next(period: PeriodName, now: datetime) -> float:
    return max(0.0, (next_start(period, now) - now).total_seconds())


def bucket_start(now_s: float, bucket_s: int) -> int:
    """The start of the fixed-size bucket (runaway detection's rate counters) holding now_s."""
    return int(now_s // bucket_s) * bucket_s
