"""Retention keeps exactly the union of keep_last / daily / weekly / monthly (restic's semantics),
never counts a snapshot that failed verification, never deletes the newest; the schedule's next
run is aligned (interval) or the cron expression's (UTC)."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.backup_agent.manifest import new_id, time_of
from services.backup_agent.retention import Candidate, keep, to_delete
from services.backup_agent.schedule import next_run, slot_key
from services.runtime.config.backup import BackupConfig, RetentionConfig, ScheduleConfig


def daily(start: datetime, days: int) -> list[Candidate]:
    return [Candidate(new_id(start + timedelta(days=d)), start + timedelta(days=d))
            for d in range(days)]


def day_of(c: Candidate) -> int:
    return c.at.day


def test_a_month_of_daily_snapshots() -> None:
    runs = daily(datetime(2026, 1, 1, 3, tzinfo=UTC), 31)  # Thu 1 January .. Sat 31 January
    policy = RetentionConfig(keep_last=3, daily=7, weekly=4, monthly=12)
    kept = sorted(day_of(c) for c in runs if c.id in keep(runs, policy))
    # daily: 25..31; weekly (ISO weeks ending Sun 11, 18, 25 and the current one): 11, 18, 25,
    # 31; monthly: 31; keep_last: 29..31.
    assert kept == [11, 18, 25, 26, 27, 28, 29, 30, 31]
    assert len(to_delete(runs, policy)) == 31 - 9


def test_a_year_keeps_one_a_month() -> None:
    runs = daily(datetime(2025, 1, 1, tzinfo=UTC), 365)
    policy = RetentionConfig(keep_last=0, daily=0, weekly=0, monthly=12)
    kept = [c for c in runs if c.id in keep(runs, policy)]
    assert [(c.at.month, c.at.day) for c in kept] == [
        (1, 31), (2, 28), (3, 31), (4, 30), (5, 31), (6, 30), (7, 31), (8, 31), (9, 30),
        (10, 31), (11, 30), (12, 31)]


def test_several_a_day_count_once_per_day() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    runs = [Candidate(f"r{h:03d}", start + timedelta(hours=6 * h)) for h in range(40)]  # 10 days
    kept = keep(runs, RetentionConfig(keep_last=2, daily=3, weekly=0, monthly=0))
    assert kept == {"r039", "r038", "r035", "r031"}  # newest two; newest of days 10, 9, 8


def test_failed_snapshots_fill_no_quota_and_the_newest_is_kept() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    runs = daily(start, 10)
    failed = [Candidate(c.id, c.at, failed=c.at.day >= 8) for c in runs]  # the last 3 failed
    kept = {day_of(c) for c in failed if c.id in keep(failed, RetentionConfig(
        keep_last=2, daily=0, weekly=0, monthly=0))}
    assert kept == {6, 7, 10}  # two good ones, and the newest (failed: the evidence)
    assert keep([], RetentionConfig()) == set()


def test_interval_runs_are_aligned() -> None:
    every_6h = ScheduleConfig(every_s=6 * 3600)
    assert next_run(every_6h, datetime(2026, 1, 1, 5, 59, tzinfo=UTC)) == datetime(2026, 1, 1, 6, tzinfo=UTC)
    assert next_run(every_6h, datetime(2026, 1, 1, 6, tzinfo=UTC)) == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert next_run(ScheduleConfig(), datetime(2026, 1, 1, 1, tzinfo=UTC)) == datetime(2026, 1, 1, 6, tzinfo=UTC)
    assert next_run(ScheduleConfig(enabled=False), datetime(2026, 1, 1, tzinfo=UTC)) is None
    assert slot_key(datetime(2026, 1, 1, 6, tzinfo=UTC)) == "run.1767247200"


def test_cron_runs_in_utc() -> None:
    nightly = ScheduleConfig(cron="30 3 * * *")
    assert next_run(nightly, datetime(2026, 1, 1, 3, 30, tzinfo=UTC)) == datetime(2026, 1, 2, 3, 30, tzinfo=UTC)
    local = datetime(2026, 1, 1, 4, 0, tzinfo=UTC).astimezone()  # any zone in, UTC out
    assert next_run(nightly, local) == datetime(2026, 1, 2, 3, 30, tzinfo=UTC)


def test_snapshot_ids_sort_by_time() -> None:
    a, b = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert new_id(a) < new_id(b) and time_of(new_id(b)) == b and time_of("junk") is None


@pytest.mark.parametrize(("section", "message"), [
    ({"schedule": {"cron": "every day"}}, "not a valid cron expression"),
    ({"schedule": {"cron": "0 3 * * *", "every_s": 60}}, "not both"),
    ({"target": {"kind": "s3"}}, "needs a bucket"),
    ({"retention": {"daily": -1}}, "greater than or equal to 0"),
    ({"directories": {"../etc": "/etc"}}, "plain name"),
    ({"colour": "blue"}, "Extra inputs are not permitted"),
])
def test_config_errors_say_what_is_wrong(section: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BackupConfig.model_validate(section)
