"""Mode `wrong`: a 200 in the vendor's exact format whose content is not the answer, in both wire
formats, streamed or not; the golden prompts' rules in mode ok; and the models list the health
monitor probes, through our adapters. Real simulator on a free port, official SDKs."""

from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from schemas.completion import ErrorKind
from services.providers import ProviderError, ProviderSpec, make_provider
from services.simulator.logic import wrong_text
from services.simulator.server import RunningSimulator
from tests.integration.conftest import set_mode

GOLDEN: Any = [{"role": "user", "content": "What is 17 + 25? Reply with the number only."}]


async def test_wrong_is_a_well_formed_200_with_the_wrong_content_in_both_formats(
        sim: RunningSimulator, oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic):
    right = await oai.chat.completions.create(model="gpt-4o-mini", messages=GOLDEN)
    assert right.choices[0].message.content == "17 + 25 = 42"
    await set_mode(sim, "openai", "wrong")
    await set_mode(sim, "anthropic", "wrong")
    reply = await oai.chat.completions.create(model="gpt-4o-mini", messages=GOLDEN)
    assert reply.choices[0].message.content == wrong_text("openai", "gpt-4o-mini")
    assert reply.choices[0].finish_reason == "stop" and reply.usage.completion_tokens > 0
    chunks = [c async for c in await oai.chat.completions.create(
        model="gpt-4o-mini", messages=GOLDEN, stream=True)]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == wrong_text(
        "openai", "gpt-4o-mini")
    message = await claude.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=GOLDEN)
    assert message.content[0].text == wrong_text("anthropic", "claude-haiku-4-5")
    async with claude.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=GOLDEN) as s:
        assert (await s.get_final_text()) == wrong_text("anthropic", "claude-haiku-4-5")


async def test_the_control_api_knows_mode_wrong(sim: RunningSimulator):
    async with aiohttp.ClientSession() as http:
        async with http.put(f"{sim.url}/_sim/vendors/local", json={"mode": "wrong"}) as r:
            assert r.status == 200 and (await r.json())["mode"] == "wrong"
        async with http.put(f"{sim.url}/_sim/vendors/local", json={"mode": "wrongish"}) as r:
            assert r.status == 400 and "'wrong'" in (await r.json())["error"]["message"]


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
async def test_the_adapters_list_models_and_see_faults(sim: RunningSimulator, vendor: str):
    kind = "anthropic" if vendor == "anthropic" else "openai"
    provider = make_provider(ProviderSpec(name=vendor, kind=kind, base_url=sim.base_url(vendor),
                                          api_key="k"))
    try:
        listed = await provider.list_models(timeout=2)
        assert ("claude-haiku-4-5" if vendor == "anthropic" else "gpt-4o-mini") in listed
        await set_mode(sim, vendor, "wrong")  # the list is right even when the answers are not
        assert await provider.list_models(timeout=2) == listed
        await set_mode(sim, vendor, "down")
        with pytest.raises(ProviderError) as down:
            await provider.list_models(timeout=2)
        assert (down.value.kind, down.value.status_code) == (ErrorKind.SERVER_ERROR, 503)
        await set_mode(sim, vendor, "garbage")
        with pytest.raises(ProviderError) as garbage:
            await provider.list_models(timeout=2)
        assert garbage.value.kind is ErrorKind.MALFORMED_RESPONSE
        await set_mode(sim, vendor, "slow", latency_ms=1000)
        with pytest.raises(ProviderError) as slow:
            await provider.list_models(timeout=0.2)
        assert slow.value.kind is ErrorKind.TIMEOUT
    finally:
        await provider.aclose()
