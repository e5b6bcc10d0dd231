"""Each fault mode reaches a client as the real failure would, switched at run time over /_sim.

Uses: the real simulator app on a free port, the official SDKs, raw aiohttp (for what SDKs hide).
"""

import errno
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from services.simulator.app import build_app
from services.simulator.server import RunningSimulator, running

QUESTION: Any = [{"role": "user", "content": "What is the capital of France?"}]  # Any: the SDKs want TypedDicts
OPENAI_HEADERS = {"Authorization": "Bearer k"}
ANTHROPIC_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
CHAT = {"model": "m", "messages": QUESTION, "max_tokens": 100}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[RunningSimulator]:
    async with running(build_app(seed=42, clock=clock)) as sim:
        yield sim


async def _set(http: aiohttp.ClientSession, sim: RunningSimulator, vendor: str, **body: Any) -> dict[str, Any]:
    async with http.put(f"{sim.url}/_sim/vendors/{vendor}", json=body) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def _requests(http: aiohttp.ClientSession, sim: RunningSimulator, vendor: str) -> dict[str, Any]:
    async with http.get(f"{sim.url}/_sim/vendors/{vendor}") as r:
        return (await r.json())["requests"]


async def _openai_status(http: aiohttp.ClientSession, sim: RunningSimulator, vendor: str = "openai") -> int:
    async with http.post(f"{sim.url}/{vendor}/v1/chat/completions", json=CHAT, headers=OPENAI_HEADERS) as r:
        await r.read()
        return r.status


async def test_down_is_a_503_with_each_vendors_body(
    sim: RunningSimulator, http: aiohttp.ClientSession, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    await _set(http, sim, "openai", mode="down")
    await _set(http, sim, "anthropic", mode="down")
    with pytest.raises(openai.InternalServerError) as oa:
        await oai.chat.completions.create(model="m", messages=QUESTION)
    assert oa.value.status_code == 503 and oa.value.type == "server_error"
    with pytest.raises(anthropic.InternalServerError) as an:
        await claude.messages.create(model="c", max_tokens=10, messages=QUESTION)
    assert an.value.status_code == 503 and an.value.type == "api_error"
    assert await _requests(http, sim, "openai") == {"total": 1, "by_status": {"503": 1}, "by_model": {"m": 1}}


async def test_ratelimit_is_a_429_with_retry_after_and_vendor_headers(
    sim: RunningSimulator, http: aiohttp.ClientSession, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    await _set(http, sim, "openai", mode="ratelimit", retry_after_s=7)
    await _set(http, sim, "anthropic", mode="ratelimit")
    with pytest.raises(openai.RateLimitError) as oa:
        await oai.chat.completions.create(model="m", messages=QUESTION)
    assert oa.value.status_code == 429 and oa.value.code == "rate_limit_exceeded"
    assert oa.value.response.headers["retry-after"] == "7"
    assert oa.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(anthropic.RateLimitError) as an:
        await claude.messages.create(model="c", max_tokens=10, messages=QUESTION)
    assert an.value.type == "rate_limit_error"
    assert an.value.response.headers["retry-after"] == "1"  # the default
    assert an.value.response.headers["anthropic-ratelimit-requests-remaining"] == "0"


async def test_refuse_resets_the_connection_without_an_http_answer(
    sim: RunningSimulator, http: aiohttp.ClientSession, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    await _set(http, sim, "openai", mode="refuse")
    await _set(http, sim, "anthropic", mode="refuse")
    with pytest.raises(aiohttp.ClientOSError) as raw:
        await _openai_status(http, sim)
    assert raw.value.errno == errno.ECONNRESET  # a TCP RST, not a clean close
    with pytest.raises(openai.APIConnectionError):
        await oai.chat.completions.create(model="m", messages=QUESTION)
    with pytest.raises(anthropic.APIConnectionError):
        await claude.messages.create(model="c", max_tokens=10, messages=QUESTION)
    assert await _requests(http, sim, "openai") == {"total": 2, "by_status": {"reset": 2}, "by_model": {"m": 2}}


async def test_garbage_is_a_200_that_is_not_a_completion(
    sim: RunningSimulator, http: aiohttp.ClientSession, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    await _set(http, sim, "openai", mode="garbage")
    await _set(http, sim, "anthropic", mode="garbage")
    # The SDKs do not validate: they hand back an object whose required fields are all None.
    completion = await oai.chat.completions.create(model="m", messages=QUESTION)
    assert completion.choices is None and completion.id is None and completion.usage is None
    message = await claude.messages.create(model="c", max_tokens=10, messages=QUESTION)
    assert message.content is None and message.usage is None
    async with http.post(f"{sim.url}/openai/v1/chat/completions", json=CHAT, headers=OPENAI_HEADERS) as r:
        assert r.status == 200 and r.content_type == "application/json"
        assert "choices" not in await r.json()
    # Streamed, the anthropic stream helper trips over the nonsense event.
    with pytest.raises(AssertionError):
        async with claude.messages.stream(model="c", max_tokens=10, messages=QUESTION) as stream:
            await stream.get_final_message()


async def test_slow_delays_the_answer_and_a_streams_first_chunk(
    sim: RunningSimulator, http: aiohttp.ClientSession, oai: openai.AsyncOpenAI
) -> None:
    await _set(http, sim, "openai", mode="slow", latency_ms=300)
    started = time.perf_counter()
    reply = await oai.chat.completions.create(model="m", messages=QUESTION)
    assert time.perf_counter() - started >= 0.3
    assert reply.choices[0].finish_reason == "stop"
    started = time.perf_counter()
    async with http.post(f"{sim.url}/openai/v1/chat/completions", json={**CHAT, "stream": True},
                         headers=OPENAI_HEADERS) as r:
        headers_after = time.perf_counter() - started
        await r.content.readline()
        first_chunk_after = time.perf_counter() - started
        body = await r.read()
    assert headers_after < 0.25 <= 0.3 <= first_chunk_after  # headers at once, then the wait
    assert body.endswith(b"data: [DONE]\n\n")


async def test_flaky_fails_the_seeded_fraction_repeatably(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    await _set(http, sim, "openai", mode="flaky", error_rate=0.3)
    first = [await _openai_status(http, sim) for _ in range(200)]
    assert set(first) == {200, 500}
    assert 36 <= first.count(500) <= 84  # Binomial(200, 0.3): 60 +- 3.7 sd
    requests = await _requests(http, sim, "openai")
    assert requests["by_status"] == {"200": first.count(200), "500": first.count(500)}
    async with http.post(f"{sim.url}/_sim/reset") as r:
        assert r.status == 200
    await _set(http, sim, "openai", mode="flaky", error_rate=0.3)
    assert [await _openai_status(http, sim) for _ in range(200)] == first  # same seed, same run


async def test_flaky_errors_are_each_vendors_500(
    sim: RunningSimulator, http: aiohttp.ClientSession, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    await _set(http, sim, "openai", mode="flaky", error_rate=1.0)
    await _set(http, sim, "anthropic", mode="flaky", error_rate=1.0)
    with pytest.raises(openai.InternalServerError) as oa:
        await oai.chat.completions.create(model="m", messages=QUESTION)
    assert oa.value.status_code == 500 and oa.value.type == "server_error"
    with pytest.raises(anthropic.InternalServerError) as an:
        await claude.messages.create(model="c", max_tokens=10, messages=QUESTION)
    assert an.value.status_code == 500 and an.value.type == "api_error"


async def _sse_until_cut(response: aiohttp.ClientResponse) -> list[bytes]:
    lines = []
    with pytest.raises(aiohttp.ClientPayloadError):
        async for line in response.content:
            lines.append(line.strip())
    return [line for line in lines if line]


async def test_cut_kills_an_openai_stream_before_done(
    sim: RunningSimulator, http: aiohttp.ClientSession, oai: openai.AsyncOpenAI
) -> None:
    await _set(http, sim, "openai", mode="cut")
    async with http.post(f"{sim.url}/openai/v1/chat/completions", json={**CHAT, "stream": True},
                         headers=OPENAI_HEADERS) as r:
        assert r.status == 200
        lines = await _sse_until_cut(r)
    chunks = [json.loads(line.removeprefix(b"data: ")) for line in lines]
    assert len(chunks) == 1 + 3  # the role chunk, then 3 content chunks (cut_after's default)
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    assert b"data: [DONE]" not in lines
    with pytest.raises(openai.APIConnectionError):
        stream = await oai.chat.completions.create(model="m", messages=QUESTION, stream=True)
        async for _ in stream:
            pass
    assert (await _requests(http, sim, "openai"))["by_status"] == {"cut": 2}


async def test_cut_kills_an_anthropic_stream_before_message_stop(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    await _set(http, sim, "anthropic", mode="cut", cut_after=2)
    async with http.post(f"{sim.url}/anthropic/v1/messages", json={**CHAT, "stream": True},
                         headers=ANTHROPIC_HEADERS) as r:
        lines = await _sse_until_cut(r)
    events = [line.removeprefix(b"event: ").decode() for line in lines if line.startswith(b"event: ")]
    assert events == ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta"]


async def test_cut_truncates_a_non_streamed_body(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    await _set(http, sim, "openai", mode="cut")
    async with http.post(f"{sim.url}/openai/v1/chat/completions", json=CHAT, headers=OPENAI_HEADERS) as r:
        assert r.status == 200 and r.content_length is not None
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()


async def test_a_timed_mode_reverts_to_ok_on_the_injected_clock(
    sim: RunningSimulator, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    state = await _set(http, sim, "local", mode="down", for_s=30)
    assert (state["mode"], state["for_s"], state["remaining_s"]) == ("down", 30, 30)
    assert await _openai_status(http, sim, "local") == 503
    clock.now += 29.5
    assert await _openai_status(http, sim, "local") == 503
    clock.now += 0.5
    assert await _openai_status(http, sim, "local") == 200
    async with http.get(f"{sim.url}/_sim/vendors/local") as r:
        state = await r.json()
    assert (state["mode"], state["for_s"], state["remaining_s"]) == ("ok", None, None)
    assert state["requests"]["by_status"] == {"503": 2, "200": 1}


async def test_faults_apply_to_the_models_list_but_are_not_counted(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    await _set(http, sim, "openai", mode="down")
    async with http.get(f"{sim.url}/openai/v1/models", headers=OPENAI_HEADERS) as r:
        assert r.status == 503
    assert (await _requests(http, sim, "openai"))["total"] == 0


async def test_one_vendors_fault_leaves_the_others_alone(sim: RunningSimulator, http: aiohttp.ClientSession) -> None:
    await _set(http, sim, "openai", mode="down")
    assert await _openai_status(http, sim, "openai") == 503
    assert await _openai_status(http, sim, "local") == 200
