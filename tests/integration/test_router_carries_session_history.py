"""Conversation continuity over a real bus: the router asks `conversation.history.get` (answered
here by a small responder standing in for the conversation store, another service) and sends
the earlier turns to whichever provider answers; a missing or slow store costs at most ~200 ms."""

import asyncio
import json
import logging
import time
from datetime import UTC, datetime

import nats
import pytest

from schemas import subjects
from schemas.events import HistoryReply, HistoryRequest, Turn
from tests.integration.conftest import StartRouter, set_mode

TURNS = [Turn(request_id="r1", at=datetime.now(UTC), route="chat",
              messages=[{"role": "system", "content": "You are the shop's assistant."},
                        {"role": "user", "content": "Hello, my name is Ana and my order number is 4242."}],
              content="Hello Ana, how can I help with order 4242?")]


def body(session: str | None) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": "Where is my parcel?"}],
                       "session_id": session}).encode()


async def ask(nc: nats.NATS, session: str | None) -> dict:
    return json.loads((await nc.request(subjects.LLM_COMPLETE, body(session), timeout=5)).data)


@pytest.fixture
async def store(nc: nats.NATS):
    """A stand-in conversation store: answers from TURNS and remembers what it was asked."""
    asked: list[HistoryRequest] = []
    delay = {"s": 0.0}

    async def answer(msg) -> None:
        request = HistoryRequest.model_validate_json(msg.data)
        asked.append(request)
        await asyncio.sleep(delay["s"])
        await msg.respond(HistoryReply(session_id=request.session_id, turns=TURNS).model_dump_json().encode())
    sub = await nc.subscribe(subjects.CONVERSATION_HISTORY_GET, cb=answer)
    await nc.flush()
    yield asked, delay
    await sub.unsubscribe()


async def test_earlier_turns_reach_the_fallback_provider(nc, sim, start_router: StartRouter, store):
    asked, _ = store
    await start_router()
    await set_mode(sim, "openai", "down")  # the conversation must survive the failover
    alone = await ask(nc, None)
    carried = await ask(nc, "s-ana")
    assert (carried["status"], carried["provider"]) == ("ok", "anthropic")
    assert [(a.session_id, a.limit) for a in asked] == [("s-ana", 20)]
    assert "Where is my parcel" in carried["content"]  # still answering this turn's question
    # What the vendor counted: the earlier turn's words, the answer and the system prompt too.
    history_words = sum(len(m["content"].split()) for m in TURNS[0].messages) + 8
    assert carried["usage"]["input_tokens"] - alone["usage"]["input_tokens"] >= history_words


async def test_a_missing_store_costs_nothing_and_is_logged_once(nc, start_router: StartRouter, caplog):
    await start_router()
    with caplog.at_level(logging.WARNING, logger="services.router.history"):
        for _ in range(5):
            t = time.monotonic()
            result = await ask(nc, "s-nobody")
            assert result["status"] == "ok" and time.monotonic() - t < 0.5
    assert len([r for r in caplog.records if "unavailable" in r.getMessage()]) == 1


async def test_a_slow_store_is_cut_short_and_the_answer_goes_on_without_history(
        nc, start_router: StartRouter, store):
    asked, delay = store
    delay["s"] = 3.0
    await start_router()
    t = time.monotonic()
    result = await ask(nc, "s-slow")
    took = time.monotonic() - t
    assert result["status"] == "ok" and len(asked) == 1
    assert 0.19 < took < 0.8  # the 200 ms history timeout, then a normal answer
