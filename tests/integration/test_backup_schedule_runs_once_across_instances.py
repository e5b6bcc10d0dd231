"""Two backup-agent instances on one schedule take each scheduled run once between them (the run
is claimed with a KV create only one can win), announce it, and serve their metrics; `lifeline
backup now` asks a running agent for one more, `lifeline backup list` shows them all."""

import json
import os
import shutil
from pathlib import Path

import aiohttp
import nats

from schemas import subjects
from schemas.streams import BACKUP_RUNS
from services.backup_agent.targets import DirectoryTarget
from services.runtime.natsd import NatsServer
from tests.conftest import StatusEvents
from tests.fixtures.backup_agent import SHIPPED_CONFIG, backup_config, kv_state, seed_database
from tests.fixtures.conversation_store import lifeline


async def test_each_run_once(sqlite_url: str, nats_server: NatsServer, nc: nats.NATS, tmp_path: Path,
                             start_backup_agent, status_events: StatusEvents) -> None:  # type: ignore[no-untyped-def]
    await seed_database(sqlite_url, turns=10)
    shutil.copy(SHIPPED_CONFIG, tmp_path / "lifeline.yaml")
    config = backup_config(schedule={"every_s": 1}, verify=False)
    agents = [await start_backup_agent(sqlite_url, config=config, config_path=tmp_path / "lifeline.yaml",
                                       backup_dir=tmp_path / "backups", instance=f"agent-{n}")
              for n in (1, 2)]
    await status_events.wait(subjects.BACKUP_COMPLETED, 3, within=15)
    for agent in agents:
        await agent.stop()
    done = status_events.of(subjects.BACKUP_COMPLETED)
    runs = list(await kv_state(nc.jetstream(), BACKUP_RUNS.name))
    snapshots = await DirectoryTarget(tmp_path / "backups").snapshots()
    assert len(done) == len(runs) == len(snapshots), (done, runs, snapshots)
    assert len({e["snapshot_id"] for e in done}) == len(done)

    agent = await start_backup_agent(sqlite_url, config=backup_config(schedule={"enabled": False}),
                                     config_path=tmp_path / "lifeline.yaml",
                                     backup_dir=tmp_path / "backups", instance="agent-3")
    async with aiohttp.ClientSession() as http, http.get(f"{agent.health.url}/metrics") as r:
        text = await r.text()
    age = next(line for line in text.splitlines()
               if line.startswith("lifeline_backup_last_snapshot_age_seconds "))
    assert 0 <= float(age.split()[1]) < 60  # the newest snapshot on the target, read at start

    env = {"PYTHONPATH": os.getcwd(), "NATS_URL": nats_server.url, "LIFELINE_DB_URL": sqlite_url,
           "LIFELINE_CONFIG": str(tmp_path / "lifeline.yaml"),
           "LIFELINE_BACKUP_DIR": str(tmp_path / "backups"), "LIFELINE_HOME": str(tmp_path)}
    code, out, err = await lifeline("backup", "now", "--json", env=env)
    assert code == 0, out + err
    reply = json.loads(out)
    assert reply["verified"] is True and reply["rows"] > 10
    code, out, err = await lifeline("backup", "list", "--json", env=env)
    listed = json.loads(out)
    assert code == 0 and listed[-1]["id"] == reply["snapshot_id"] and listed[-1]["verified"]["ok"]
    assert len(listed) == len(snapshots) + 1
