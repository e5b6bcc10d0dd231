"""5,000 requests with session ids, 50 in flight, through the real router and the simulated
vendors: every answered turn is in the store exactly once, in order per session, and
conversation.history.get returns each session's turns, oldest first."""

import asyncio
import json
import time
import uuid
from collections import Counter

import nats

from schemas import subjects
from schemas.events import HistoryReply
from services.conversation_store.store import TurnStore
from tests.fixtures.conversation_store import StartStore, wait_for_turns
from tests.integration.conftest import StartRouter

SESSIONS, TURNS = 50, 100  # 50 conversations at once, each one question after another


async def converse(nc: nats.NATS, session: str, sent: list[str]) -> list[dict]:
    results = []
    for n in range(TURNS):
        request_id = f"{session}-{n:03d}-{uuid.uuid4().hex[:6]}"
        body = {"request_id": request_id, "session_id": session, "user_id": f"user-{session}",
                "messages": [{"role": "user", "content": f"{session} question {n}"}]}
        reply = await nc.request(subjects.LLM_COMPLETE, json.dumps(body).encode(), timeout=15)
        results.append(json.loads(reply.data))
        sent.append(request_id)
    return results


async def history(nc: nats.NATS, session: str) -> HistoryReply:
    reply = await nc.request(subjects.CONVERSATION_HISTORY_GET,
                             json.dumps({"session_id": session}).encode(), timeout=10)
    return HistoryReply.model_validate_json(reply.data)


async def test_5000_turns_at_50_in_flight_each_stored_once_in_order(
        nc: nats.NATS, db_url: str, start_router: StartRouter, start_store: StartStore):
    await start_router()
    await start_store(db_url)
    sessions = [f"s{i:02d}" for i in range(SESSIONS)]
    sent: dict[str, list[str]] = {s: [] for s in sessions}

    started = time.monotonic()
    results = await asyncio.gather(*(converse(nc, s, sent[s]) for s in sessions))
    answered = [r for rs in results for r in rs]
    answers = {r["request_id"]: r for r in answered}
    assert Counter(r["status"] for r in answered) == {"ok": SESSIONS * TURNS}
    count = await wait_for_turns(db_url, SESSIONS * TURNS, timeout=60)
    elapsed = time.monotonic() - started
    print(f"\n{db_url.split(':')[0]}: {count} turns answered and stored in {elapsed:.1f}s")
    assert count == SESSIONS * TURNS

    async with TurnStore(db_url) as store:
        records = [r async for r in store.records()]
        assert await store.count_conversations() == SESSIONS
    assert len({r.request_id for r in records}) == len(records) == SESSIONS * TURNS
    by_session: dict[str, list[str]] = {s: [] for s in sessions}
    for r in records:  # records() is oldest first
        by_session[r.session_id].append(r.request_id)
    assert by_session == sent

    replies = await asyncio.gather(*(history(nc, s) for s in sessions))
    for session, reply in zip(sessions, replies, strict=True):
        assert reply.error is None and not reply.truncated
        assert [t.request_id for t in reply.turns] == sent[session]
        assert reply.turns[-1].messages == [
            {"role": "user", "content": f"{session} question {TURNS - 1}"}]
        last = answers[reply.turns[-1].request_id]  # the turn holds what the caller was answered
        assert (reply.turns[-1].content, reply.turns[-1].provider) == (last["content"], last["provider"])
