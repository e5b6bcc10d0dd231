"""The official SDKs, pointed at the gateway, complete chat calls streamed and not; every answer
says who answered (x-lifeline-* headers, and the final chunk of a stream)."""

import anthropic
import openai
import pytest

from tests.fixtures.gateway import SEAMLESS_ANSWER
from tests.integration.conftest import set_mode

ASK = [{"role": "system", "content": "Be brief."},
       {"role": "user", "content": "What is your refund policy?"}]


@pytest.fixture
async def gateway(mesh_parts):
    return await mesh_parts()


@pytest.fixture
async def oai_gw(gateway):
    async with openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="any", max_retries=0) as client:
        yield client


@pytest.fixture
async def claude_gw(gateway):
    async with anthropic.AsyncAnthropic(base_url=gateway.url, api_key="any", max_retries=0) as client:
        yield client


async def test_openai_sdk_non_streaming(oai_gw):
    raw = await oai_gw.chat.completions.with_raw_response.create(model="chat", messages=ASK, max_tokens=200)
    answer = raw.parse()
    assert answer.choices[0].message.content == SEAMLESS_ANSWER
    assert answer.choices[0].finish_reason == "stop" and answer.model == "chat"
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    h = raw.headers
    assert (h["x-lifeline-tier"], h["x-lifeline-provider"], h["x-lifeline-fallback-depth"]) == ("full", "openai", "0")
    assert len(h["x-lifeline-request-id"]) == 32 and answer.id == f"chatcmpl-{h['x-lifeline-request-id']}"


async def test_openai_sdk_streaming(oai_gw):
    stream = await oai_gw.chat.completions.create(model="chat", messages=ASK, stream=True,
                                                  stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == SEAMLESS_ANSWER
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0
    assert last.model_extra["lifeline"]["provider"] == "openai"
    assert last.model_extra["lifeline"]["tier"] == "full" and last.model_extra["lifeline"]["resumed"] == 0


async def test_openai_sdk_stream_headers_name_the_answering_member(gateway, sim, oai_gw):
    await set_mode(sim, "openai", "down")  # failover before the first token: invisible but told
    async with oai_gw.chat.completions.with_streaming_response.create(
            model="chat", messages=ASK, stream=True) as response:
        assert response.headers["x-lifeline-provider"] == "anthropic"
        assert response.headers["x-lifeline-tier"] == "degraded"
        text = "".join([c.choices[0].delta.content or "" async for c in await response.parse()
                        if c.choices])
    assert text.startswith("[anthropic/claude-haiku-4-5] You asked: What is your refund policy")


async def test_openai_sdk_lists_the_routes_as_models(oai_gw):
    models = [m.id async for m in oai_gw.models.list()]
    assert models == ["chat"]


async def test_anthropic_sdk_non_streaming(claude_gw):
    raw = await claude_gw.messages.with_raw_response.create(
        model="chat", max_tokens=200, system="Be brief.",
        messages=[{"role": "user", "content": "What is your refund policy?"}])
    message = await raw.parse()
    assert message.content[0].text == SEAMLESS_ANSWER
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0
    assert raw.headers["x-lifeline-provider"] == "openai"


async def test_anthropic_sdk_streaming(claude_gw):
    async with claude_gw.messages.stream(
            model="chat", max_tokens=200,
            messages=[{"role": "user", "content": "What is your refund policy?"}]) as stream:
        texts = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(texts) == SEAMLESS_ANSWER and len(texts) > 5
    assert final.stop_reason == "end_turn"
    assert final.content[0].text == SEAMLESS_ANSWER
    assert final.usage.output_tokens > 0
