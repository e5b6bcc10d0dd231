"""When the next scheduled snapshot is due: pure, time passed in.

Interval runs are aligned to the epoch (every 6 h: 00:00, 06:00, ... UTC), and cron runs are the
expression's times in UTC, so every agent instance computes the same run time; the first one to
claim it (a KV create, which only one can win) takes the snapshot.
"""

from datetime import UTC, datetime

from croniter import croniter

from services.runtime.config.backup import ScheduleConfig


def next_run(schedule: ScheduleConfig, after: datetime) -> datetime | None:
    """The first run strictly after `after`; None when scheduling is off."""
    if not schedule.enabled:
        return None
    after = after.astimezone(UTC)
    if schedule.cron:
        return croniter(schedule.cron, after).get_next(datetime).astimezone(UTC)
    every = schedule.effective_every_s
    assert every is not None
    slots = int(after.timestamp() // every) + 1
    return datetime.fromtimestamp(slots * every, UTC)


def slot_key(run_at: datetime) -> str:
    """The KV key whose creation claims one run (valid KV key characters only)."""
    return f"run.{int(run_at.timestamp())}"
