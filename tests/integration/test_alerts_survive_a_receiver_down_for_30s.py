"""A webhook receiver that is down for 30 seconds gets every alert after it returns, each once,
also across a notifier restart in the middle (the outbox is in the database, not in memory)."""

import asyncio
import time
from collections import Counter

import aiohttp
import nats
from sqlalchemy import func, select

from schemas import subjects
from schemas.events import BackupCompleted, BackupFailed, ProviderDown, ProviderUp, ServiceDown
from services.notifier import tables
from services.runtime.db import make_engine
from tests.fixtures.notifier import channel_env, channels, notifier_config, publish_event

DOWN_FOR_S = 30.0


async def metric(health_url: str, name: str, channel: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{health_url}/metrics") as r:
        text = await r.text()
    prefix = f'{name}{{channel="{channel}"}} '
    return sum(float(line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix))


async def pending(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            o = tables.outbox
            return await conn.scalar(select(func.count()).select_from(o).where(
                o.c.delivered_at.is_(None), o.c.failed_at.is_(None)))
    finally:
        await engine.dispose()


async def test_every_alert_arrives_once_after_the_receiver_returns(
        nc: nats.NATS, store_url, start_notifier, receiver):
    config = notifier_config(channels=channels(receiver))
    env = channel_env(receiver)
    await receiver.stop()
    went_down = time.monotonic()
    first = await start_notifier(config, db_url=store_url, env=env, instance="notifier-a")

    for subject, event in [
        (subjects.PROVIDER_DOWN, ProviderDown(provider="openai", reason="HTTP 503")),
        (subjects.SERVICE_DOWN, ServiceDown(service="router", instance="r1", reason="no heartbeat")),
        (subjects.BACKUP_FAILED, BackupFailed(snapshot_id="s1", stage="upload", reason="S3 503")),
        (subjects.PROVIDER_UP, ProviderUp(provider="openai", reason="probes pass")),
        (subjects.BACKUP_COMPLETED, BackupCompleted(snapshot_id="s2", target="dir", artifacts=3,
                                                    rows=10, bytes=1000, duration_s=1.0,
                                                    events_seq=5)),
    ]:
        await publish_event(nc, subject, event)

    # the first instance tries, fails, backs off...
    health = first.health.url
    deadline = time.monotonic() + 10
    while await metric(health, "lifeline_notifier_alert_attempts_failed_total", "ops-hook") < 2:
        assert time.monotonic() < deadline, "no failed delivery attempt seen"
        await asyncio.sleep(0.2)
    assert await metric(health, "lifeline_notifier_alerts_sent_total", "ops-hook") == 0
    # ... and is replaced by a second one while the receiver is still down
    await first.stop()
    await start_notifier(config, db_url=store_url, env=env, instance="notifier-b")

    await asyncio.sleep(max(0.0, DOWN_FOR_S - (time.monotonic() - went_down)))
    assert receiver.got == []
    await receiver.start()
    back = time.monotonic()

    expected = {("provider-openai", "incident.opened"), ("service-router", "incident.opened"),
                ("backups", "incident.opened"), ("provider-openai", "incident.resolved"),
                ("backups", "incident.resolved")}
    await receiver.wait_for(lambda: len(receiver.at("/hook")) >= len(expected), timeout=10)
    delivered_after = time.monotonic() - back
    deadline = time.monotonic() + 10
    while await pending(store_url):  # everything sent: nothing more can arrive
        assert time.monotonic() < deadline, "the outbox did not drain"
        await asyncio.sleep(0.2)

    hooks = [r.json() for r in receiver.at("/hook")]
    assert {(h["component"], h["type"]) for h in hooks} == expected
    keys = Counter(r.headers["Idempotency-Key"] for r in receiver.got if r.path in ("/hook", "/slack"))
    assert keys and max(keys.values()) == 1, keys  # each once
    assert len(hooks) == len(expected)
    # in order per channel: every resolve after its own open
    for h in hooks:
        if h["type"] == "incident.resolved":
            opened = [i for i, x in enumerate(hooks) if x["incident_id"] == h["incident_id"]]
            assert hooks[opened[0]]["type"] == "incident.opened"
    assert delivered_after < 5.0, f"delivered {delivered_after:.1f}s after the receiver returned"
