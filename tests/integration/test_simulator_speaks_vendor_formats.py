"""The official openai and anthropic SDKs talk to the simulator as to the real vendors.

Uses: the real simulator app on a free port (aiohttp AppRunner), the official SDKs, raw aiohttp.
"""

import time
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from services.simulator.logic import count_prompt_tokens, count_tokens, reply_text
from services.simulator.server import RunningSimulator

QUESTION: Any = [{"role": "user", "content": "What is the capital of France?"}]  # Any: the SDKs want TypedDicts
ANTHROPIC_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


async def test_openai_sdk_gets_a_deterministic_completion_with_honest_usage(oai: openai.AsyncOpenAI) -> None:
    before = int(time.time())
    first = await oai.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    second = await oai.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    expected = reply_text("openai", "gpt-4o-mini", QUESTION)
    assert first.choices[0].message.content == second.choices[0].message.content == expected
    assert first.choices[0].finish_reason == "stop"
    assert first.model == "gpt-4o-mini" and first.object == "chat.completion"
    assert first.id.startswith("chatcmpl-") and first.id != second.id
    assert before <= first.created <= int(time.time())
    assert first.usage is not None
    assert first.usage.prompt_tokens == count_prompt_tokens(QUESTION)
    assert first.usage.completion_tokens == count_tokens(expected)
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens


async def test_openai_stream_carries_the_same_content_and_usage_at_the_end(oai: openai.AsyncOpenAI) -> None:
    whole = await oai.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    stream = await oai.chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == whole.choices[0].message.content
    assert len(chunks) > 5  # word by word, not one blob
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert all(c.usage is None for c in chunks[:-1])


async def test_openai_stream_without_include_usage_reports_no_usage(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(model="m", messages=QUESTION, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(c.usage is None and c.choices for c in chunks)


async def test_local_vendor_is_openai_compatible_under_its_own_prefix(sim: RunningSimulator) -> None:
    async with openai.AsyncOpenAI(base_url=sim.base_url("local"), api_key="x", max_retries=0) as local:
        reply = await local.chat.completions.create(model="llama-3.1-8b", messages=QUESTION)
    assert reply.choices[0].message.content == reply_text("local", "llama-3.1-8b", QUESTION)


async def test_openai_max_tokens_truncates_with_finish_reason_length(oai: openai.AsyncOpenAI) -> None:
    reply = await oai.chat.completions.create(model="m", messages=QUESTION, max_completion_tokens=5)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 5
    assert reply.choices[0].message.content == "[openai/m]"


async def test_anthropic_sdk_gets_a_message_with_honest_usage(claude: anthropic.AsyncAnthropic) -> None:
    message = await claude.messages.create(
        model="claude-sonnet-4-6", max_tokens=200, system="Be brief.", messages=QUESTION
    )
    expected = reply_text("anthropic", "claude-sonnet-4-6", QUESTION)
    assert message.content[0].type == "text" and message.content[0].text == expected
    assert message.id.startswith("msg_") and message.model == "claude-sonnet-4-6" and message.role == "assistant"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == count_prompt_tokens(QUESTION, system="Be brief.")
    assert message.usage.output_tokens == count_tokens(expected)


async def test_anthropic_stream_helper_accumulates_the_same_message(claude: anthropic.AsyncAnthropic) -> None:
    whole = await claude.messages.create(model="claude-haiku-4-5", max_tokens=200, messages=QUESTION)
    async with claude.messages.stream(model="claude-haiku-4-5", max_tokens=200, messages=QUESTION) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert len(texts) > 5
    assert "".join(texts) == final.content[0].text == whole.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == whole.usage.input_tokens
    assert final.usage.output_tokens == whole.usage.output_tokens


async def test_anthropic_max_tokens_stops_with_max_tokens(claude: anthropic.AsyncAnthropic) -> None:
    message = await claude.messages.create(model="c", max_tokens=3, messages=QUESTION)
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 3


async def test_models_are_listed_in_each_format(oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic) -> None:
    openai_models = [m.id async for m in oai.models.list()]
    anthropic_models = [m.id async for m in claude.models.list()]
    assert "gpt-4o-mini" in openai_models
    assert "claude-sonnet-4-6" in anthropic_models


async def test_context_too_long_is_the_vendors_own_400(
    sim: RunningSimulator, http: aiohttp.ClientSession, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    async with http.put(f"{sim.url}/_sim/vendors/anthropic", json={"mode": "ok", "context_window": 5}) as r:
        assert r.status == 200
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.messages.create(model="c", max_tokens=5, messages=QUESTION)
    assert caught.value.status_code == 400
    assert caught.value.api_message == f"prompt is too long: {count_prompt_tokens(QUESTION)} tokens > 5 maximum"
    # The default window (128k for openai) is real too, and a prompt over 1 MiB still reaches it.
    huge = [{"role": "user", "content": "word " * 250_000}]
    with pytest.raises(openai.BadRequestError) as too_long:
        await oai.chat.completions.create(model="m", messages=huge)
    assert too_long.value.code == "context_length_exceeded" and too_long.value.param == "messages"
    assert "maximum context length is 128000 tokens. However, your messages resulted in 250003 tokens" in (
        too_long.value.message
    )


async def test_missing_key_is_401_with_each_vendors_body(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    body = {"model": "m", "messages": QUESTION, "max_tokens": 5}
    async with http.post(f"{sim.url}/openai/v1/chat/completions", json=body) as r:
        assert r.status == 401
        error = (await r.json())["error"]
        assert error["type"] == "invalid_request_error" and error["code"] is None
        assert error["message"].startswith("You didn't provide an API key")
    no_key = {"anthropic-version": "2023-06-01"}
    async with http.post(f"{sim.url}/anthropic/v1/messages", json=body, headers=no_key) as r:
        assert r.status == 401
        payload = await r.json()
        assert payload["type"] == "error"
        assert payload["error"] == {"type": "authentication_error", "message": "x-api-key header is required"}
        assert payload["request_id"] == r.headers["request-id"]


async def test_bad_bodies_are_400_in_each_vendors_shape(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    auth = {"Authorization": "Bearer k", "Content-Type": "application/json"}
    async with http.post(f"{sim.url}/openai/v1/chat/completions", data=b"{not json", headers=auth) as r:
        assert r.status == 400
        error = (await r.json())["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    async with http.post(f"{sim.url}/anthropic/v1/messages", json={"model": "c", "messages": QUESTION},
                         headers=ANTHROPIC_HEADERS) as r:
        assert r.status == 400
        assert (await r.json())["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}


async def test_unknown_vendor_and_wrong_format_paths_are_json_404s(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{sim.url}/nosuch/v1/chat/completions", json={}) as r:
        assert r.status == 404
        assert "nosuch" in (await r.json())["error"]["message"]
    async with http.post(f"{sim.url}/anthropic/v1/chat/completions", json={}, headers=ANTHROPIC_HEADERS) as r:
        assert r.status == 404
        payload = await r.json()
        assert payload["type"] == "error" and payload["error"]["type"] == "not_found_error"
    async with http.get(f"{sim.url}/openai/v1/chat/completions") as r:
        assert r.status == 404
        assert (await r.json())["error"]["message"] == "Invalid URL (GET /v1/chat/completions)"


async def test_healthz(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sim.url}/healthz") as r:
        assert r.status == 200 and await r.json() == {"status": "ok"}
