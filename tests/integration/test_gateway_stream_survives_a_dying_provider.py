"""A stream whose primary dies after a few chunks, seen through the official SDKs: one complete,
well-formed stream under `resume`; an explicit error under `error`; a truncated answer never ends
with a normal finish reason. And text is relayed as it is produced, not buffered."""

import time

import aiohttp
import anthropic
import openai
import pytest

from tests.fixtures.gateway import SEAMLESS_ANSWER, stream_config
from tests.integration.conftest import requests_served, set_mode

ASK = [{"role": "user", "content": "What is your refund policy?"}]


async def scrape(gateway) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{gateway.health.url}/metrics") as r:
        return await r.text()


async def openai_stream(gateway) -> list:
    async with openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0) as client:
        stream = await client.chat.completions.create(model="chat", messages=ASK, stream=True)
        return [chunk async for chunk in stream]


@pytest.mark.parametrize("mode", ["cut", "stall", "stream_error", "malformed_chunk"])
async def test_resume_gives_the_caller_one_seamless_stream(mesh_parts, sim, mode):
    gateway = await mesh_parts(stream_config(policy="resume"))
    await set_mode(sim, "openai", mode, cut_after=3, latency_ms=3000)
    chunks = await openai_stream(gateway)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].delta.role for c in chunks[1:]] == [None] * (len(chunks) - 1)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == SEAMLESS_ANSWER
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert [c.choices[0].finish_reason for c in chunks].count("stop") == 1
    assert len({c.id for c in chunks}) == 1  # one completion, whoever wrote it
    lifeline = chunks[-1].model_extra["lifeline"]
    assert (lifeline["provider"], lifeline["fallback_depth"], lifeline["resumed"]) == ("anthropic", 1, 1)
    metrics = await scrape(gateway)
    assert 'lifeline_gateway_stream_failures_total{outcome="resumed",policy="resume",route="chat"} 1.0' in metrics
    assert 'lifeline_gateway_ttft_seconds_count{route="chat"} 1.0' in metrics


@pytest.mark.parametrize("mode", ["cut", "stream_error"])
async def test_error_policy_raises_in_the_openai_sdk_and_never_finishes(mesh_parts, sim, mode):
    gateway = await mesh_parts(stream_config(policy="error"))
    await set_mode(sim, "openai", mode, cut_after=3)
    got: list = []
    async with openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0) as client:
        stream = await client.chat.completions.create(model="chat", messages=ASK, stream=True)
        with pytest.raises(openai.APIError) as caught:
            async for chunk in stream:
                got.append(chunk)
    assert "openai/gpt-4o-mini failed mid-answer" in caught.value.message
    assert "".join(c.choices[0].delta.content or "" for c in got) == \
        "[openai/gpt-4o-mini] You asked: "  # exactly what the primary said before it died
    assert all(c.choices[0].finish_reason is None for c in got)  # never "stop" on a cut answer
    assert await requests_served(sim, "anthropic") == 0
    assert ('lifeline_gateway_stream_failures_total{outcome="errored",policy="error",route="chat"} 1.0'
            in await scrape(gateway))


async def test_error_policy_raises_in_the_anthropic_sdk_and_never_stops(mesh_parts, sim):
    gateway = await mesh_parts(stream_config(policy="error"))
    await set_mode(sim, "openai", "cut", cut_after=3)
    texts: list[str] = []
    async with anthropic.AsyncAnthropic(base_url=gateway.url, api_key="k", max_retries=0) as client:
        with pytest.raises(anthropic.APIError) as caught:
            async with client.messages.stream(model="chat", max_tokens=100, messages=ASK) as stream:
                async for text in stream.text_stream:
                    texts.append(text)
    assert "failed mid-answer" in str(caught.value)
    assert "".join(texts) == "[openai/gpt-4o-mini] You asked: "


async def test_resume_through_the_anthropic_sdk(mesh_parts, sim):
    gateway = await mesh_parts(stream_config(policy="resume"))
    await set_mode(sim, "openai", "cut", cut_after=3)
    async with anthropic.AsyncAnthropic(base_url=gateway.url, api_key="k", max_retries=0) as client:
        async with client.messages.stream(model="chat", max_tokens=100, messages=ASK) as stream:
            final = await stream.get_final_message()
    assert final.content[0].text == SEAMLESS_ANSWER and final.stop_reason == "end_turn"


async def test_every_member_dying_is_an_error_not_a_finished_answer(mesh_parts, sim):
    gateway = await mesh_parts(stream_config(policy="resume"))
    for vendor in ("openai", "anthropic", "local"):
        await set_mode(sim, vendor, "cut", cut_after=2)
    got: list = []
    async with openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0) as client:
        stream = await client.chat.completions.create(model="chat", messages=ASK, stream=True)
        with pytest.raises(openai.APIError, match="no provider could answer"):
            async for chunk in stream:
                got.append(chunk)
    assert got and all(c.choices[0].finish_reason is None for c in got)


async def test_text_is_relayed_as_produced_not_buffered(mesh_parts, sim):
    """With the vendor pacing words 100 ms apart, the caller's first token arrives long before
    the vendor has finished: nothing on the path waits for the whole answer."""
    gateway = await mesh_parts(stream_config(inter_token_timeout_ms=2000))
    await set_mode(sim, "openai", "ok", chunk_delay_ms=100)
    async with openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0) as client:
        t0 = time.monotonic()
        stream = await client.chat.completions.create(model="chat", messages=ASK, stream=True)
        arrivals = [(time.monotonic() - t0, c) async for c in stream]
    first_text = next(t for t, c in arrivals if c.choices and c.choices[0].delta.content)
    total = arrivals[-1][0]
    assert total > 1.0  # ~14 words x 100 ms at the vendor
    assert first_text < 0.5 and first_text < total / 3
