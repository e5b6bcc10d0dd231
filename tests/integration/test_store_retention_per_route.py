"""Retention per route: the periodic sweep deletes turns older than their route's period (and
the conversations it empties); an event already past it is not stored at all."""

import asyncio
from datetime import timedelta

import nats

from services.conversation_store import logic
from services.conversation_store.store import TurnStore
from services.runtime.db import migrate
from tests.fixtures.conversation_store import (
    StartStore, completed, publish_completed, store_config, utc, wait_for_turns,
)

NOW = utc(2026, 6, 1, 12)
RETENTION = {"default_days": 365, "routes": {"chat": 30}, "sweep_interval_s": 0.2}


def aged(days: float, route: str, session: str, n: int):
    event = completed(n, route=route, session=session, at=NOW - timedelta(days=days))
    return logic.to_turn(event, stored_at=NOW - timedelta(days=days))


async def test_the_sweep_keeps_each_route_for_its_own_period(
        nc: nats.NATS, db_url: str, start_store: StartStore):
    keep = [aged(10, "chat", "s-recent", i) for i in range(3)]
    keep += [aged(40, "support", "s-support", i) for i in range(2)]  # default: 365 days
    expire = [aged(40, "chat", "s-old", i) for i in range(4)]
    expire += [aged(400, "support", "s-ancient", i) for i in range(2)]
    async with TurnStore(db_url) as store:
        await migrate(store.engine)
        await store.add(keep + expire)
        assert await store.count_conversations() == 4

    service = await start_store(db_url, config=store_config(retention=RETENTION), clock=lambda: NOW)
    expired = 0.0
    for _ in range(200):  # the first sweep runs at start-up
        expired = service.metrics.get_sample_value("lifeline_store_expired_turns_total") or 0.0
        if expired >= len(expire):
            break
        await asyncio.sleep(0.05)
    assert expired == len(expire)
    async with TurnStore(db_url) as store:
        assert {r.request_id async for r in store.records()} == {r.request_id for r in keep}
        assert await store.count_conversations() == 2  # s-old and s-ancient emptied, gone

    # Ingest applies the same rule: a turn already expired is acknowledged and not stored.
    stale = completed(50, route="chat", session="s-x", at=NOW - timedelta(days=31))
    fresh = completed(51, route="chat", session="s-x", at=NOW - timedelta(days=1))
    await publish_completed(nc.jetstream(), [stale, fresh])
    assert await wait_for_turns(db_url, len(keep) + 1) == len(keep) + 1
    outcome = service.metrics.get_sample_value("lifeline_store_ingest_events_total",
                                               {"outcome": "expired"})
    assert outcome == 1
