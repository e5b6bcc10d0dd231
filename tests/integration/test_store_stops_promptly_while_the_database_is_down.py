"""A store asked to stop while its database is down does not sit out the graceful timeout
retrying: it hands the batch back unacknowledged, and the next store writes it."""

import asyncio
import time

import nats
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from schemas.streams import LLM_EVENTS
from services.conversation_store.app import DURABLE
from tests.conftest import PG_URL
from tests.fixtures.conversation_store import (
    StartStore, completed, publish_completed, store_config, wait_for_turns,
)


async def test_stop_while_the_database_is_down_hands_the_batch_back(
        nc: nats.NATS, pg_url: str, sqlite_url: str, start_store: StartStore):
    js = nc.jetstream()
    config = store_config(ingest={"ack_wait_s": 2, "retry_max_ms": 300})
    store = await start_store(pg_url, config=config, graceful_timeout=20)
    await publish_completed(js, [completed(i) for i in range(5)])
    assert await wait_for_turns(pg_url, 5) == 5

    # The database goes away under the store (its connections are cut, its name is gone).
    name = pg_url.rsplit("/", 1)[1]
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    await admin.dispose()
    await publish_completed(js, [completed(i) for i in range(5, 25)])
    for _ in range(200):
        if store.metrics.get_sample_value("lifeline_store_db_failing") == 1:
            break
        await asyncio.sleep(0.05)
    assert store.metrics.get_sample_value("lifeline_store_db_failing") == 1

    started = time.monotonic()
    await store.stop()
    assert time.monotonic() - started < 5  # not the 20 s graceful timeout
    info = await js.consumer_info(LLM_EVENTS.name, DURABLE)
    assert info.ack_floor.stream_seq == 5  # nothing of the failed batch was acknowledged

    # Another store (another database, as after a fail-over) gets the whole batch.
    await start_store(sqlite_url, instance="store-2", config=config)
    assert await wait_for_turns(sqlite_url, 20, timeout=15) == 20
