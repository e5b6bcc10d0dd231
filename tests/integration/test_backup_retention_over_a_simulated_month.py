"""A month of daily runs of the real backup cycle (real snapshots on a directory, the agent's clock
injected): afterwards the target holds exactly the snapshots the policy says, and a crash's
incomplete leftover is cleaned up once it is a day old."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.backup_agent.agent import BackupAgent
from services.backup_agent.manifest import time_of
from services.backup_agent.snapshot import Sources
from services.backup_agent.targets import DirectoryTarget
from tests.fixtures.backup_agent import backup_config, seed_database


async def test_a_month_of_daily_runs(sqlite_url: str, tmp_path: Path) -> None:
    await seed_database(sqlite_url, turns=20)
    config = backup_config(retention={"keep_last": 3, "daily": 7, "weekly": 4, "monthly": 12})
    target = DirectoryTarget(tmp_path / "backups")
    now = [datetime(2026, 1, 1, 3, 0, tzinfo=UTC)]  # Thursday
    (tmp_path / "backups" / "20251231T030000Z-dead00.partial").mkdir(parents=True)  # a crash
    events = []

    async def publish(subject, event):  # type: ignore[no-untyped-def]
        events.append(subject)

    agent = BackupAgent(config=config.backup, target=target, key=None, clock=lambda: now[0],
                        publish=publish, sources=lambda: Sources(db_url=sqlite_url, js=None))
    for _ in range(31):
        reply = await agent.cycle(reason="scheduled", verify=False)
        assert reply.error is None, reply
        now[0] += timedelta(days=1)
    kept = [time_of(i) for i in await target.snapshots()]
    assert [at.day for at in kept if at] == [11, 18, 25, 26, 27, 28, 29, 30, 31]
    assert await target.incomplete() == []
    assert events.count("backup.completed") == 31
