"""Which snapshots to keep: pure, no I/O.

The union of: the newest `keep_last`; the newest of each of the last `daily` days, `weekly` ISO
weeks and `monthly` months that have a snapshot (UTC) — restic's `forget --keep-*` semantics
(https://restic.readthedocs.io/en/stable/060_forget.html). Snapshots whose verification failed
fill none of these quotas (a run of bad snapshots must not push the good ones out); the newest
snapshot of all is never deleted, failed or not (it is the evidence of what went wrong).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from services.runtime.config.backup import RetentionConfig


@dataclass(frozen=True)
class Candidate:
    id: str
    at: datetime
    failed: bool = False  # its verification failed


def _day(at: datetime) -> tuple[int, ...]:
    return (at.year, at.month, at.day)


def _week(at: datetime) -> tuple[int, ...]:
    iso = at.isocalendar()
    return (iso.year, iso.week)


def _month(at: datetime) -> tuple[int, ...]:
    return (at.year, at.month)


def keep(snapshots: Iterable[Candidate], policy: RetentionConfig) -> set[str]:
    every = sorted(snapshots, key=lambda s: (s.at, s.id), reverse=True)  # newest first
    good = [s for s in every if not s.failed]
    kept = {s.id for s in good[:policy.keep_last]}
    buckets: list[tuple[int, Callable[[datetime], tuple[int, ...]]]] = [
        (policy.daily, _day), (policy.weekly, _week), (policy.monthly, _month)]
    for count, bucket_of in buckets:
        seen: set[tuple[int, ...]] = set()
        for s in good:
            bucket = bucket_of(s.at)
            if bucket in seen:
                continue
            if len(seen) == count:
                break
            seen.add(bucket)
            kept.add(s.id)
    if every:
        kept.add(every[0].id)
    return kept


def to_delete(snapshots: Iterable[Candidate], policy: RetentionConfig) -> list[str]:
    listed = list(snapshots)
    kept = keep(listed, policy)
    return sorted(s.id for s in listed if s.id not in kept)
