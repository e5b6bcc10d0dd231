"""PostgreSQL stopped (crashed: `pg_ctl stop -m immediate`) for 30 seconds mid-load, then started:
the store, a separate process, catches up with nothing lost and nothing doubled, and its memory
stays bounded meanwhile (the backlog waits in JetStream, not in the store)."""

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import nats
import yaml
from prometheus_client.parser import text_string_to_metric_families

from schemas import subjects
from schemas.streams import LLM_EVENTS
from services.conversation_store.app import DURABLE

from services.cli.mesh import Mesh
from services.conversation_store.store import TurnStore
from tests.e2e.conftest import write_config
from tests.fixtures.conversation_store import (
    PrivatePostgres, completed, publish_completed, wait_for_turns,
)

OUTAGE_S = 30  # the figure
RATE = 500  # events published per second, throughout
CONTENT = "x" * 2000  # 2 KB answers: a backlog held in memory would show


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError("no VmRSS")


async def health(url: str) -> tuple[int, dict, dict[str, float]]:
    """/readyz status and body, and the store's own metrics."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/readyz") as r:
            ready = (r.status, await r.json())
        async with http.get(f"{url}/metrics") as r:
            text = await r.text()
    metrics = {s.name + "".join(f"[{v}]" for v in s.labels.values()): s.value
               for family in text_string_to_metric_families(text) for s in family.samples
               if s.name.startswith("lifeline_store_")}
    return *ready, metrics


async def publish_at_rate(js, stop: asyncio.Event, published: list[str]) -> None:
    """RATE events a second, in tenths, until `stop` (bounded: at most 120 s)."""
    started = time.monotonic()
    while not stop.is_set() and time.monotonic() - started < 120:
        tick = time.monotonic()
        events = [completed(len(published) + i, session=f"s-{(len(published) + i) % 50}",
                            content=CONTENT) for i in range(RATE // 10)]
        await publish_completed(js, events)
        published.extend(e.request_id for e in events)
        await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))


async def test_postgres_down_30s_mid_load_nothing_lost_memory_bounded(
        mesh: Mesh, nats_server, private_postgres: PrivatePostgres, tmp_path: Path):
    url = await private_postgres.create_database("lifeline")
    config = write_config(tmp_path / "lifeline.yaml")
    data = yaml.safe_load(config.read_text())
    data["store"] = {"ingest": {"ack_wait_s": 10, "retry_max_ms": 1000}}
    config.write_text(yaml.safe_dump(data))
    mesh.db_url = url
    store = mesh.start_service("conversation-store", env={"LIFELINE_CONFIG": str(config),
                                                          "LIFELINE_LAG_INTERVAL": "0.5"})
    mesh.wait_ready()
    pid = store.proc.pid

    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    stop, published = asyncio.Event(), []
    load = asyncio.create_task(publish_at_rate(js, stop, published))
    try:
        await asyncio.sleep(3)  # warm: the store ingests at full speed
        assert await wait_for_turns(url, 1000, timeout=10) >= 1000
        before = rss_kib(pid)

        private_postgres.stop("immediate")
        down_at = time.monotonic()
        samples = []
        while time.monotonic() - down_at < OUTAGE_S:
            samples.append(rss_kib(pid))
            await asyncio.sleep(0.5)
        backlog = len(published)
        # Meanwhile the store says what is wrong, instead of hanging or pretending.
        status, ready, metrics = await health(store.health_url)
        asked = await nc.request(subjects.CONVERSATION_HISTORY_GET,
                                 json.dumps({"session_id": "s-1"}).encode(), timeout=10)
        private_postgres.start()
        up_at = time.monotonic()
        await asyncio.sleep(2)  # load goes on while it catches up
    finally:
        stop.set()
        await load
    total = len(published)
    count = await wait_for_turns(url, total, timeout=90)
    caught_up_s = time.monotonic() - up_at
    await asyncio.sleep(1)  # one more lag reading
    _, _, after = await health(store.health_url)
    consumer = await js.consumer_info(LLM_EVENTS.name, DURABLE)
    await nc.close()

    grown_mib = (max(samples) - before) / 1024
    print(f"\n{total} turns published ({backlog} by the end of the outage); all stored "
          f"{caught_up_s:.1f}s after PostgreSQL came back; RSS {before / 1024:.0f} MiB before, "
          f"max {max(samples) / 1024:.0f} MiB during the outage")
    assert count == total
    assert status == 503 and "database failing" in ready["reasons"][0]
    assert "history unavailable" in json.loads(asked.data)["error"]
    assert metrics["lifeline_store_db_failing"] == 1
    assert metrics["lifeline_store_ingest_lag_messages"] > 10_000  # waiting in JetStream
    assert metrics["lifeline_store_db_errors_total[transient]"] > 5  # retried with backoff
    assert (after["lifeline_store_db_failing"], after["lifeline_store_ingest_lag_messages"]) == (0, 0)
    assert after["lifeline_store_turns_ingested_total"] == total
    # Each event delivered once: the batch held through the outage (longer than ack_wait, 10 s)
    # was kept alive with +WPI, not redelivered.
    assert consumer.delivered.consumer_seq == total
    async with TurnStore(url) as turns:
        stored = [r.request_id async for r in turns.records()]
    assert len(stored) == len(set(stored)) == total and set(stored) == set(published)
    # ~15,000 events of ~2.3 KB arrived during the outage (35 MB in JetStream): held in the
    # store they would grow it by far more than one batch.
    assert backlog * 2300 / 2**20 > 30
    assert grown_mib < 20, f"RSS grew by {grown_mib:.0f} MiB during the outage"
