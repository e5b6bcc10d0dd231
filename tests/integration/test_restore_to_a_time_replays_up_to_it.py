"""Point-in-time recovery: `restore(snapshot, to=T)` brings back the snapshot and then exactly the
events the stream stored up to T (not one after it); restoring again with force to now brings
the rest. take() and restore() (services/backup_agent/api.py) are the entry points drills call."""

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path

import nats

from services.backup_agent.api import restore, take
from services.runtime.natsd import NatsServer
from tests.fixtures.backup_agent import (
    SHIPPED_CONFIG, agent_settings, backup_config, database_rows, drop_database, seed_bus,
)
from tests.fixtures.conversation_store import (
    completed, publish_completed, store_config, wait_for_turns,
)


async def test_restore_to_a_time(sqlite_url: str, nats_server: NatsServer, nc: nats.NATS,
                                 tmp_path: Path, start_store, start_cost_guard) -> None:  # type: ignore[no-untyped-def]
    js = nc.jetstream()
    await seed_bus(js)
    shutil.copy(SHIPPED_CONFIG, tmp_path / "lifeline.yaml")
    config = store_config(ingest={"ack_wait_s": 5}).model_copy(
        update={"backup": backup_config().backup})
    store = await start_store(sqlite_url, config=config)
    guard = await start_cost_guard(config, sqlite_url)
    base = [completed(i, session="s") for i in range(200)]
    await publish_completed(js, base)
    assert await wait_for_turns(sqlite_url, 200) == 200

    settings = agent_settings(tmp_path, nats_url=nats_server.url, db_url=sqlite_url,
                              config_path=tmp_path / "lifeline.yaml", backup_dir=tmp_path / "backups")
    snapshot_id = (await take("pitr", verify=False, settings=settings, config=config, nc=nc)).snapshot_id
    assert snapshot_id

    before_t = [completed(200 + i, session="s") for i in range(100)]
    await publish_completed(js, before_t)  # stored (acked by the stream) before T
    at = datetime.now(UTC)
    await asyncio.sleep(0.01)
    after_t = [completed(300 + i, session="s") for i in range(100)]
    await publish_completed(js, after_t)
    assert await wait_for_turns(sqlite_url, 400) == 400

    await store.stop()
    await guard.stop()
    await drop_database(sqlite_url)
    await start_store(sqlite_url, config=config, instance="store-2")
    await start_cost_guard(config, sqlite_url, instance="cost-guard-2")
    result = await restore(snapshot_id, to=at, settings=settings, config=config, nc=nc,
                           force=True)  # the KV buckets were not lost: replaced as they were
    assert result.ok, result.warnings
    rows = await database_rows(sqlite_url)
    kept = {r[1] for r in rows["turns"]}
    assert kept == {e.request_id for e in base + before_t}
    assert len(rows["cost_guard_ledger"]) == 300
    assert result.to_time == at and result.replayed == 200  # 100 turns + 100 ledger rows
    figures = result.figures()
    assert figures["replayed_total"] == 200 and figures["phases"]["replay"] >= 0

    again = await restore(snapshot_id, to="now", settings=settings, config=config, nc=nc,
                          force=True)
    assert again.wiped["turns"] == 300 and again.replayed == 400
    rows = await database_rows(sqlite_url)
    assert {r[1] for r in rows["turns"]} == {e.request_id for e in base + before_t + after_t}
