"""The data-loss drill: 10,000 turns ingested by the real conversation store (and charged by the
real cost guard), a snapshot asked of the running backup agent, 1,000 more turns, then the
database and the KV buckets are lost. After `lifeline restore SNAPSHOT --to now` every one of the
11,000 turns is back exactly once (the last 1,000 replayed from LLM_EVENTS), the spend ledger
too, and the KV state and the configuration's history match what was there before the loss."""

import asyncio
import json
import os
import shutil
import time
from pathlib import Path

import nats
import pytest
from sqlalchemy import select

from schemas import subjects
from schemas.streams import LLM_EVENTS
from services.conversation_store.tables import turns
from services.runtime.db import make_engine
from services.runtime.natsd import NatsServer
from tests.conftest import StatusEvents
from tests.fixtures.backup_agent import (
    SHIPPED_CONFIG, backup_config, drop_database, kv_history, kv_state, seed_bus,
)
from tests.fixtures.conversation_store import (
    completed, lifeline, publish_completed, store_config, wait_for_turns,
)
from tests.fixtures.cost_guard import ledger_summary

BUCKETS = ["config", "control", "limits", "api-keys", "provider-health"]
FIRST, MORE = 10_000, 1_000


async def _wait_for_ledger(db_url: str, expected: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while True:
        rows = int((await ledger_summary(db_url))["rows"])
        if rows >= expected or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.1)


async def _request_ids(db_url: str) -> list[str]:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.scalars(select(turns.c.request_id))).all())
    finally:
        await engine.dispose()


@pytest.mark.timeout(240)
async def test_drill(db_url: str, nats_server: NatsServer, nc: nats.NATS, tmp_path: Path,
                     start_store, start_cost_guard, start_backup_agent,  # type: ignore[no-untyped-def]
                     status_events: StatusEvents) -> None:
    started = time.monotonic()
    js = nc.jetstream()
    await seed_bus(js)
    config_path = tmp_path / "lifeline.yaml"
    shutil.copy(SHIPPED_CONFIG, config_path)
    config = store_config(ingest={"ack_wait_s": 5}).model_copy(
        update={"backup": backup_config(schedule={"enabled": False}).backup})
    store = await start_store(db_url, config=config)
    guard = await start_cost_guard(config, db_url)
    await start_backup_agent(db_url, config=config, config_path=config_path,
                             backup_dir=tmp_path / "backups")

    first = [completed(i, session=f"s-{i % 500}", user=f"u-{i % 50}") for i in range(FIRST)]
    await publish_completed(js, first)
    assert await wait_for_turns(db_url, FIRST, timeout=90) == FIRST
    assert await _wait_for_ledger(db_url, FIRST, timeout=90) == FIRST
    loaded = time.monotonic()

    msg = await nc.request(subjects.BACKUP_REQUEST, b'{"reason": "drill"}', timeout=120)
    reply = json.loads(msg.data)
    assert reply["error"] is None and reply["verified"] is True, reply
    snapshot_id = reply["snapshot_id"]
    assert reply["events_seq"] >= FIRST  # every event up to here is in the database
    await status_events.wait(subjects.BACKUP_VERIFIED, within=10,
                             where=lambda e: e["snapshot_id"] == snapshot_id)
    snapped = time.monotonic()

    more = [completed(FIRST + i, session=f"s-{i % 50}", user="late") for i in range(MORE)]
    await publish_completed(js, more)
    assert await wait_for_turns(db_url, FIRST + MORE, timeout=60) == FIRST + MORE
    assert await _wait_for_ledger(db_url, FIRST + MORE) == FIRST + MORE
    kv_before = {b: await kv_state(js, b) for b in BUCKETS}
    config_history = await kv_history(js, "config", "lifeline.yaml")
    assert len(config_history) == 4  # seed_bus wrote 3, the agent put the active file

    # The loss: the database and the bus's KV state. The services restart on the empty database.
    await store.stop()
    await guard.stop()
    await drop_database(db_url)
    for bucket in BUCKETS:
        await js.delete_key_value(bucket)
    await start_store(db_url, config=config, instance="store-2")
    await start_cost_guard(config, db_url, instance="cost-guard-2")
    lost = time.monotonic()

    env = {"PYTHONPATH": os.getcwd(), "NATS_URL": nats_server.url, "LIFELINE_DB_URL": db_url,
           "LIFELINE_CONFIG": str(config_path), "LIFELINE_BACKUP_DIR": str(tmp_path / "backups"),
           "LIFELINE_HOME": str(tmp_path / "home")}
    code, out, err = await lifeline("restore", snapshot_id, "--to", "now", "--json", env=env,
                                    timeout=180)
    assert code == 0, out + err
    figures = json.loads(out)
    restored = time.monotonic()

    ids = await _request_ids(db_url)
    assert len(ids) == FIRST + MORE and set(ids) == {e.request_id for e in first + more}
    assert (await ledger_summary(db_url))["rows"] == FIRST + MORE
    assert figures["rows"]["turns"] == FIRST
    replayed = {r["subject"]: r for r in figures["replay"]}
    assert replayed["conversation.replay"]["replayed"] == MORE
    assert replayed["cost.replay"]["replayed"] == MORE
    for bucket in BUCKETS:
        assert await kv_state(js, bucket) == kv_before[bucket], bucket
    assert await kv_history(js, "config", "lifeline.yaml") == config_history
    event = (await status_events.wait(subjects.RESTORE_COMPLETED, within=10))[0]
    assert event["snapshot_id"] == snapshot_id and event["replayed"] == MORE * 2
    stream = await js.stream_info(LLM_EVENTS.name)
    print(f"\ndrill on {db_url.split(':')[0]}: load {loaded - started:.1f}s, snapshot+verify "
          f"{snapped - loaded:.1f}s ({reply['duration_s']:.2f}s + {reply['verify_s']:.2f}s), "
          f"loss {lost - snapped:.1f}s, restore --to now {restored - lost:.1f}s "
          f"(phases {figures['phases']}), {stream.state.messages} events in the stream")
