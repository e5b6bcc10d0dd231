"""1,000 requests parked while every vendor is down: nothing drains, nothing is spent, and when
the vendors return each is answered exactly once — also across a NATS restart."""

import asyncio
import time
from collections import Counter

import nats
import pytest

from schemas import subjects
from schemas.streams import LLM_EVENTS, LLM_QUEUE, LLM_RESULTS
from services.router.queue_worker import durable
from services.runtime.natsd import NatsServer
from tests.fixtures.degradation import (
    all_vendors, answered, degraded_config, park, queued, request, results,
)
from tests.integration.conftest import StartRouter

TOTAL = 1000
pytestmark = pytest.mark.timeout(180)


async def served_ok(sim) -> int:
    """Answers the vendors gave (HTTP 200), at the simulator's own counters."""
    from services.simulator.keys import VENDORS as KEY
    return sum(v.counters.by_status.get("200", 0) for v in sim.app[KEY].values())


async def calls(sim) -> int:
    from services.simulator.keys import VENDORS as KEY
    return sum(v.counters.total for v in sim.app[KEY].values())


async def assert_each_answered_once(nc: nats.NATS, bodies: list[dict]) -> None:
    stored = await results(nc)
    ids = Counter(r["request_id"] for r in stored)
    assert len(stored) == TOTAL and set(ids) == {b["request_id"] for b in bodies}
    assert max(ids.values()) == 1
    assert Counter(r["status"] for r in stored) == {"ok": TOTAL}
    assert all(r["ticket"] == r["request_id"] and r["tier"] in ("full", "degraded") for r in stored)
    js = nc.jetstream()
    assert (await js.stream_info(LLM_QUEUE.name)).state.messages == 0
    completed = await js.stream_info(LLM_EVENTS.name, subjects_filter=subjects.LLM_COMPLETED)
    assert completed.state.subjects == {subjects.LLM_COMPLETED: TOTAL}  # one each: spend, history


async def test_a_thousand_parked_requests_wait_out_the_outage_then_drain_exactly_once(
        nc: nats.NATS, sim, start_router: StartRouter):
    await start_router(config=degraded_config())
    await all_vendors(sim, "down")
    bodies = [request(f"question {i}: what is new?") for i in range(TOTAL)]
    await park(nc, bodies)

    # The outage: the queue waits. Held messages are not nak'ed (no delivery spent), and the
    # breakers keep the probing to a trickle instead of a loop over the backlog.
    outage_started = await calls(sim)
    await asyncio.sleep(1.5)  # the thing measured is what does NOT happen during this time
    during_outage = await calls(sim) - outage_started
    info = await nc.jetstream().consumer_info(LLM_QUEUE.name, durable("interactive"))
    assert info.num_redelivered == 0
    assert info.num_ack_pending <= degraded_config().tiers.queue.concurrency
    assert await queued(nc) == TOTAL
    assert (await nc.jetstream().stream_info(LLM_RESULTS.name)).state.messages == 0
    assert during_outage < 150, f"{during_outage} vendor calls in 1.5 s of outage"

    done = await answered(nc, TOTAL)
    before = await served_ok(sim)
    started = time.monotonic()
    await all_vendors(sim, "ok")
    await asyncio.wait_for(done.wait(), 60)
    drained_in = time.monotonic() - started
    print(f"outage: {during_outage} vendor calls in 1.5 s; drained {TOTAL} in {drained_in:.1f}s")

    await assert_each_answered_once(nc, bodies)
    assert await served_ok(sim) - before == TOTAL  # each request cost exactly one vendor answer


async def test_the_queue_survives_a_nats_restart_while_full(
        nc: nats.NATS, sim, nats_server: NatsServer, start_router: StartRouter):
    await start_router(config=degraded_config())
    await all_vendors(sim, "down")
    bodies = [request(f"restart {i}") for i in range(TOTAL)]
    await park(nc, bodies[: TOTAL // 2])
    await park(nc, bodies[TOTAL // 2:], priority="batch")
    await nc.close()

    nats_server.restart()  # file storage: the parked requests are on disk
    client = await nats.connect(nats_server.url)
    try:
        assert await queued(client) == TOTAL
        done = await answered(client, TOTAL)
        await all_vendors(sim, "ok")
        await asyncio.wait_for(done.wait(), 60)
        await assert_each_answered_once(client, bodies)
    finally:
        await client.close()
