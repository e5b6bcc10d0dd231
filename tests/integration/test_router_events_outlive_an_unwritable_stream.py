"""A router whose events cannot be stored in time (no stream to take them, as while a lost stream
is restored or its cluster has no quorum) still answers its callers, keeps the events, and stores
every one once the stream takes writes again; what it still holds at a stop is counted as lost."""

import asyncio
import json

import nats
import pytest

from schemas import subjects
from schemas.streams import LLM_EVENTS
from services.runtime.bus import provision
from tests.integration.conftest import StartRouter


def ask_body(n: int) -> bytes:
    return json.dumps({"request_id": f"backlog-{n}",
                       "messages": [{"role": "user", "content": f"question {n}"}]}).encode()


async def completed_ids(js: nats.js.JetStreamContext) -> list[str]:
    """The request ids of every llm.completed the stream holds, in order."""
    found = []
    sub = await js.subscribe(subjects.LLM_COMPLETED, stream=LLM_EVENTS.name, ordered_consumer=True)
    try:
        while True:
            msg = await sub.next_msg(timeout=5)
            found.append(json.loads(msg.data)["request_id"])
            if msg.metadata.num_pending == 0:
                return found
    finally:
        await sub.unsubscribe()


async def test_events_held_while_the_stream_is_gone_are_all_stored_when_it_returns(
        nc: nats.NATS, start_router: StartRouter):
    js = nc.jetstream()
    router = await start_router(event_store_timeout_s=0.3)
    await js.delete_stream(LLM_EVENTS.name)

    replies = await asyncio.gather(*(nc.request(subjects.LLM_COMPLETE, ask_body(n), timeout=10)
                                     for n in range(20)))
    assert [json.loads(r.data)["status"] for r in replies] == ["ok"] * 20  # answered regardless
    waiting = router.metrics.get_sample_value("lifeline_router_events_backlog")
    assert waiting >= 40  # an llm.attempt and an llm.completed each

    await provision(js)  # the stream is back (restored, or its cluster has quorum again)
    for _ in range(200):
        if router.metrics.get_sample_value("lifeline_router_events_backlog") == 0:
            break
        await asyncio.sleep(0.05)
    assert router.metrics.get_sample_value("lifeline_router_events_backlog") == 0
    stored = await completed_ids(js)
    assert sorted(stored) == sorted(f"backlog-{n}" for n in range(20))  # each once
    await router.stop()
    assert router.metrics.get_sample_value("lifeline_router_events_dropped_total") == 0


async def test_what_is_still_held_at_a_stop_is_counted_as_lost(
        nc: nats.NATS, start_router: StartRouter, caplog: pytest.LogCaptureFixture):
    js = nc.jetstream()
    router = await start_router(event_store_timeout_s=0.3)
    await js.delete_stream(LLM_EVENTS.name)
    reply = await nc.request(subjects.LLM_COMPLETE, ask_body(1), timeout=10)
    assert json.loads(reply.data)["status"] == "ok"
    held = router.metrics.get_sample_value("lifeline_router_events_backlog")
    assert held >= 2
    with caplog.at_level("ERROR", logger="services.router.events"):
        await router.stop()
    assert router.metrics.get_sample_value("lifeline_router_events_dropped_total") == held
    assert any("event lost: router stopping: llm.completed backlog-1" in r.getMessage()
               for r in caplog.records)
