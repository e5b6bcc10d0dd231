"""A restore into a database that holds rows is refused, naming the tables, and changes nothing;
with force it replaces what they hold by the snapshot's rows. Asked of the running agent
(restore.request), as the CLI's `lifeline restore --force` does in-process. Verification also
runs in a scratch PostgreSQL database of its own (LIFELINE_BACKUP_VERIFY_DB_URL), dropped after."""

import json
import shutil
from pathlib import Path

import nats
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from schemas import subjects
from services.conversation_store import logic
from services.conversation_store.store import TurnStore
from tests.conftest import PG_URL, StatusEvents
from tests.fixtures.backup_agent import SHIPPED_CONFIG, backup_config, database_rows, seed_database
from tests.fixtures.conversation_store import completed


async def _verify_databases() -> set[str]:
    engine = create_async_engine(PG_URL or "", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text(
                "SELECT datname FROM pg_database WHERE datname LIKE 'lifeline_verify_%'"))
            return {r[0] for r in rows}
    finally:
        await engine.dispose()


async def test_non_empty_database(pg_url: str, nc: nats.NATS, tmp_path: Path, start_backup_agent,  # type: ignore[no-untyped-def]
                                  status_events: StatusEvents) -> None:
    await seed_database(pg_url, turns=40)
    shutil.copy(SHIPPED_CONFIG, tmp_path / "lifeline.yaml")
    await start_backup_agent(pg_url, config=backup_config(schedule={"enabled": False}),
                             config_path=tmp_path / "lifeline.yaml", backup_dir=tmp_path / "backups",
                             backup_verify_db_url=PG_URL)
    before_verify = await _verify_databases()
    reply = json.loads((await nc.request(subjects.BACKUP_REQUEST, b"{}", timeout=60)).data)
    assert reply["verified"] is True, reply
    assert await _verify_databases() == before_verify  # the scratch database is gone again
    snapshot = reply["snapshot_id"]

    async with TurnStore(pg_url) as store:  # the database moves on after the snapshot
        await store.add([logic.to_turn(completed(n, session="later"), stored_at=completed().occurred_at)
                         for n in range(3)])
    moved_on = await database_rows(pg_url)
    body = json.dumps({"snapshot_id": snapshot}).encode()
    refused = json.loads((await nc.request(subjects.RESTORE_REQUEST, body, timeout=60)).data)
    assert "the database is not empty" in refused["error"] and "turns (43 rows)" in refused["error"]
    assert await database_rows(pg_url) == moved_on  # nothing changed

    body = json.dumps({"snapshot_id": snapshot, "force": True}).encode()
    done = json.loads((await nc.request(subjects.RESTORE_REQUEST, body, timeout=60)).data)
    assert done["rows"] > 40 and done["figures"]["wiped"]["turns"] == 43, done
    async with TurnStore(pg_url) as store:
        assert await store.count() == 40
    event = (await status_events.wait(subjects.RESTORE_COMPLETED, within=10))[0]
    assert event["snapshot_id"] == snapshot and event["rows"] == done["rows"]
    bad = json.loads((await nc.request(subjects.RESTORE_REQUEST, b'{"snapshot_id": ""}', timeout=10)).data)
    assert "snapshot_id" in bad["error"]
