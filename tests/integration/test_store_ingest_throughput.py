"""Ingest throughput: a backlog of llm.completed events drained into SQLite and PostgreSQL.

Measure: PYTHONPATH=$PWD LIFELINE_TEST_PG_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \
    python -m pytest -s tests/integration/test_store_ingest_throughput.py
"""

import time

import nats

from services.conversation_store.store import TurnStore
from services.runtime.bus import provision
from tests.fixtures.conversation_store import (
    StartStore, completed, publish_completed, wait_for_turns,
)

BACKLOG = 10_000


async def test_ingest_throughput(nc: nats.NATS, db_url: str, start_store: StartStore):
    js = nc.jetstream()
    await provision(js)
    events = [completed(i, session=f"s-{i % 500}", user=f"u-{i % 100}") for i in range(BACKLOG)]
    await publish_completed(js, events)
    # Migrate first, so the measured time is ingest alone.
    await (await TurnStore(db_url).open(migrate_first=True)).close()

    started = time.monotonic()
    service = await start_store(db_url)
    count = await wait_for_turns(db_url, BACKLOG, timeout=60)
    elapsed = time.monotonic() - started

    rate = count / elapsed
    batches = service.metrics.get_sample_value("lifeline_store_ingest_batch_size_count")
    print(f"\n{db_url.split(':')[0]}: {count} turns in {elapsed:.2f}s = {rate:,.0f} turns/s "
          f"({batches:.0f} batches)")
    assert count == BACKLOG
    assert service.metrics.get_sample_value("lifeline_store_turns_ingested_total") == BACKLOG
    assert rate > 500  # the figure is printed; the bound only catches a collapse
