"""The router's streaming path on a real bus: text as it comes, failover before the first token
invisible, a mid-answer death resumed seamlessly or reported as an error (never as a finished
answer), and the events the ledger and the history need."""

import asyncio
import json

import pytest

from schemas import subjects
from tests.fixtures.gateway import QUESTION, SEAMLESS_ANSWER, stream_config, stream_over_bus
from tests.integration.conftest import requests_served, set_mode
from tests.integration.test_router_over_the_bus import stored_events


def text_of(chunks) -> str:
    return "".join(c.text for c in chunks if c.type == "delta")


def assert_well_formed(chunks) -> None:
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert chunks[0].type == "start" and [c.type for c in chunks].count("start") == 1
    assert all(c.type == "delta" for c in chunks[1:-1])


async def test_a_healthy_stream_arrives_word_by_word_and_is_recorded(nc, start_router):
    await start_router(config=stream_config())
    chunks = await stream_over_bus(nc, {"messages": [QUESTION], "user_id": "u-1"})
    assert_well_formed(chunks)
    start, end = chunks[0], chunks[-1]
    assert (start.tier, start.provider, start.fallback_depth) == ("full", "openai", 0)
    assert end.type == "end" and end.finish_reason == "stop" and end.resumed == 0
    assert len(chunks) > 10 and text_of(chunks) == SEAMLESS_ANSWER
    assert end.usage.input_tokens > 0 and end.usage.output_tokens > 0 and end.cost_usd > 0
    [completed] = await stored_events(nc, subjects.LLM_COMPLETED)
    assert (completed["status"], completed["content"], completed["user_id"]) == ("ok", SEAMLESS_ANSWER, "u-1")
    assert completed["metadata"]["stream"] is True
    [attempt] = await stored_events(nc, subjects.LLM_ATTEMPT)
    assert (attempt["provider"], attempt["outcome"]) == ("openai", "ok")


@pytest.mark.parametrize("mode", ["down", "refuse", "garbage"])
async def test_failover_before_the_first_token_is_invisible(nc, sim, start_router, mode):
    await start_router(config=stream_config())
    await set_mode(sim, "openai", mode)
    chunks = await stream_over_bus(nc, {"messages": [QUESTION]})
    assert_well_formed(chunks)
    assert (chunks[0].provider, chunks[0].tier, chunks[0].fallback_depth) == ("anthropic", "degraded", 1)
    assert chunks[-1].type == "end" and chunks[-1].finish_reason == "stop"
    assert text_of(chunks).startswith("[anthropic/claude-haiku-4-5] You asked: What is your refund policy")


@pytest.mark.parametrize("mode", ["cut", "stall", "stream_error", "malformed_chunk"])
async def test_resume_turns_a_mid_answer_death_into_one_seamless_stream(nc, sim, start_router, mode):
    await start_router(config=stream_config(policy="resume"))
    await set_mode(sim, "openai", mode, cut_after=3, latency_ms=3000)
    chunks = await stream_over_bus(nc, {"messages": [QUESTION]})
    assert_well_formed(chunks)
    assert chunks[0].provider == "openai"  # the caller got the primary's first words ...
    end = chunks[-1]
    assert (end.type, end.finish_reason, end.resumed) == ("end", "stop", 1)
    assert (end.provider, end.tier, end.fallback_depth) == ("anthropic", "degraded", 1)
    # ... and the second member carried on from them: no repeat, no gap, one space at the seam.
    assert text_of(chunks) == SEAMLESS_ANSWER
    attempts = await stored_events(nc, subjects.LLM_ATTEMPT)
    assert [a["provider"] for a in attempts] == ["openai", "anthropic"]
    assert attempts[0]["outcome"] != "ok" and attempts[0]["usage"]["output_tokens"] == 3
    [completed] = await stored_events(nc, subjects.LLM_COMPLETED)
    assert (completed["status"], completed["content"], completed["attempts"]) == ("ok", SEAMLESS_ANSWER, 2)


@pytest.mark.parametrize("mode", ["cut", "stream_error"])
async def test_policy_error_sends_an_explicit_error_never_an_end(nc, sim, start_router, mode):
    await start_router(config=stream_config(policy="error"))
    await set_mode(sim, "openai", mode, cut_after=3)
    chunks = await stream_over_bus(nc, {"messages": [QUESTION]})
    assert [c.type for c in chunks] == ["start", "delta", "delta", "delta", "error"]
    error = chunks[-1]
    assert error.partial is True and error.finish_reason is None
    assert "openai/gpt-4o-mini failed mid-answer" in error.error.message
    assert await requests_served(sim, "anthropic") == 0  # nobody was asked to continue
    [completed] = await stored_events(nc, subjects.LLM_COMPLETED)
    assert completed["status"] == "error" and completed["content"] == text_of(chunks)


async def test_every_member_dying_mid_answer_ends_in_an_error(nc, sim, start_router):
    await start_router(config=stream_config(policy="resume"))
    for vendor in ("openai", "anthropic", "local"):
        await set_mode(sim, vendor, "cut", cut_after=2)
    chunks = await stream_over_bus(nc, {"messages": [QUESTION]})
    assert chunks[-1].type == "error" and chunks[-1].partial and chunks[-1].resumed == 2
    assert chunks[-1].error.kind == "exhausted"
    assert not any(c.type == "end" for c in chunks)


async def test_bad_input_and_unknown_route_are_error_chunks(nc, start_router):
    await start_router(config=stream_config())
    [chunk] = await stream_over_bus(nc, {"messages": []})
    assert chunk.type == "error" and "messages" in chunk.error.message and not chunk.partial
    [chunk] = await stream_over_bus(nc, {"messages": [QUESTION], "route": "nope"})
    assert chunk.error.kind == "no_route"


async def test_a_caller_going_away_stops_the_provider_call(nc, sim, start_router):
    await start_router(config=stream_config(inter_token_timeout_ms=5000))
    await set_mode(sim, "openai", "ok", chunk_delay_ms=200)
    inbox = nc.new_inbox()
    got: asyncio.Queue = asyncio.Queue()
    sub = await nc.subscribe(inbox, cb=got.put)
    await nc.publish(subjects.LLM_STREAM, json.dumps(
        {"request_id": "gone-1", "messages": [QUESTION]}).encode(), reply=inbox)
    await asyncio.wait_for(got.get(), 5)  # start: the stream is running
    await nc.publish(subjects.LLM_STREAM_CANCEL, b'{"request_id": "gone-1"}')
    await sub.unsubscribe()
    for _ in range(100):  # the record is published once the walk has stopped
        done = [e for e in await stored_events(nc, subjects.LLM_COMPLETED) if e["request_id"] == "gone-1"]
        if done:
            break
        await asyncio.sleep(0.05)
    assert done and done[0]["error_kind"] == "cancelled"
    assert len(done[0]["content"]) < len(SEAMLESS_ANSWER)
