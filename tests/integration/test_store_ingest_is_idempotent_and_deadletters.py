"""The store's durable consumer of llm.completed on a real nats-server and database: each turn
once, only answered requests become turns, bad input is dead-lettered and never stops it."""

import asyncio
import json

import nats
import pytest

from schemas import subjects
from schemas.streams import LLM_EVENTS
from services.conversation_store.app import DURABLE
from services.conversation_store.store import TurnStore
from tests.fixtures.conversation_store import (
    StartStore, completed, publish_completed, store_config, wait_for_turns,
)


async def acked_all(js, *, timeout: float = 10) -> None:
    """Waits until the consumer has nothing pending or unacknowledged."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        info = await js.consumer_info(LLM_EVENTS.name, DURABLE)
        if info.num_pending == 0 and info.num_ack_pending == 0:
            return
        assert loop.time() < deadline, f"still pending: {info.num_pending}, {info.num_ack_pending}"
        await asyncio.sleep(0.05)


async def test_each_answered_request_is_one_turn_and_redelivery_changes_nothing(
        nc: nats.NATS, db_url: str, start_store: StartStore):
    js = nc.jetstream()
    store = await start_store(db_url)
    answered = [completed(i, session="s-1") for i in range(40)]
    not_turns = [completed(100, status="error"), completed(101, status="queued")]
    await publish_completed(js, answered + not_turns)
    # The same request again under another message id (a router retried after a crash, past
    # JetStream's duplicate window): still one turn.
    again = answered[0].model_copy(update={"id": "another-event-id"})
    await js.publish(subjects.LLM_COMPLETED, again.model_dump_json().encode(),
                     headers={"Nats-Msg-Id": "another-msg-id"})
    await acked_all(js)

    async with TurnStore(db_url) as turns:
        assert await turns.count() == 40
        records = [r async for r in turns.records()]
    assert [r.request_id for r in records] == [e.request_id for e in answered]
    first = records[0]
    assert (first.session_id, first.user_id, first.route, first.provider, first.model,
            first.tier, first.fallback_depth, first.input_tokens, first.output_tokens,
            first.content, first.messages) == (
        "s-1", "user-1", "chat", "openai", "gpt-4o-mini", "full", 0, 12, 34, "answer 0",
        [{"role": "user", "content": "question 0"}])
    assert first.cost_usd == pytest.approx(0.0000216) and first.at == answered[0].occurred_at

    # A restarted store (same durable consumer) does not ingest anything twice.
    await store.stop()
    await start_store(db_url, instance="store-2")
    await publish_completed(js, [completed(200, session="s-1")])
    assert await wait_for_turns(db_url, 41) == 41
    await acked_all(js)
    assert await wait_for_turns(db_url, 42, timeout=0.5) == 41


async def test_bad_events_go_to_the_dead_letters_with_a_reason_and_ingest_goes_on(
        nc: nats.NATS, db_url: str, start_store: StartStore):
    js = nc.jetstream()
    dead: asyncio.Queue = asyncio.Queue()
    await nc.subscribe(subjects.deadletter(subjects.LLM_COMPLETED), cb=dead.put)
    await start_store(db_url)
    await js.publish(subjects.LLM_COMPLETED, b"{not json", headers={"Nats-Msg-Id": "bad-1"})
    await js.publish(subjects.LLM_COMPLETED, json.dumps({"request_id": "r-x"}).encode(),
                     headers={"Nats-Msg-Id": "bad-2"})
    await publish_completed(js, [completed(i) for i in range(5)])

    reasons = []
    for _ in range(2):
        msg = await asyncio.wait_for(dead.get(), 10)
        reasons.append((msg.data, msg.headers[subjects.DEADLETTER_REASON_HEADER]))
    assert reasons[0][0] == b"{not json" and "not a valid LlmCompleted" in reasons[0][1]
    assert "route: Field required" in reasons[1][1] and "status" in reasons[1][1]
    await acked_all(js)  # the bad ones are acked too: they never come back
    assert await wait_for_turns(db_url, 5) == 5


async def test_a_row_the_database_refuses_is_dead_lettered_and_the_batch_is_stored(
        nc: nats.NATS, pg_url: str, start_store: StartStore):
    # PostgreSQL text cannot hold NUL: that turn can never be stored; its neighbours must be.
    js = nc.jetstream()
    dead: asyncio.Queue = asyncio.Queue()
    await nc.subscribe(subjects.deadletter(subjects.LLM_COMPLETED), cb=dead.put)
    await start_store(pg_url, config=store_config(ingest={"max_wait_ms": 300, "ack_wait_s": 5}))
    events = [completed(i) for i in range(10)]
    events[4] = completed(4, content="nul \x00 inside")
    await publish_completed(js, events)

    msg = await asyncio.wait_for(dead.get(), 10)
    assert json.loads(msg.data)["request_id"] == events[4].request_id
    assert "the database refused the turn" in msg.headers[subjects.DEADLETTER_REASON_HEADER]
    await acked_all(js)
    assert await wait_for_turns(pg_url, 9) == 9
