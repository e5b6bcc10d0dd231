"""Over a real bus: a refused key is announced once; context too long finds a larger window;
a hedged request answers from the second member and reports both attempts and both costs."""

import asyncio
import dataclasses
import json
import os
import time

import nats

from schemas import subjects
from schemas.events import LlmAttempt, LlmCompleted, ProviderKeyRefused
from services.providers import make_provider
from services.runtime.config.routing import HedgeConfig
from tests.integration.conftest import StartRouter, fast_config, requests_served, set_mode

ASK = json.dumps({"messages": [{"role": "user", "content": "Is my order shipped?"}]}).encode()


async def ask(nc: nats.NATS, body: bytes = ASK) -> dict:
    return json.loads((await nc.request(subjects.LLM_COMPLETE, body, timeout=5)).data)


async def collect(nc: nats.NATS, subject: str) -> list[bytes]:
    got: list[bytes] = []

    async def keep(msg) -> None:
        got.append(msg.data)
    await nc.subscribe(subject, cb=keep)
    await nc.flush()
    return got


async def test_a_refused_key_is_announced_once_and_the_provider_left_alone(
        nc, sim, start_router: StartRouter):
    config = fast_config()
    specs = config.provider_specs(os.environ, sim.url)
    specs["openai"] = dataclasses.replace(specs["openai"], api_key=None)  # the vendor says 401
    refused = await collect(nc, subjects.PROVIDER_KEY_REFUSED)
    await start_router(config=config, providers={n: make_provider(s) for n, s in specs.items()})
    results = await asyncio.gather(*(ask(nc) for _ in range(20)))
    assert {(r["status"], r["provider"]) for r in results} == {("ok", "anthropic")}
    for _ in range(10):
        await ask(nc)
    await nc.flush()
    await asyncio.sleep(0.1)  # events are published before each answer; let the last arrive
    events = [ProviderKeyRefused.model_validate_json(e) for e in refused]
    assert [(e.provider, e.status_code) for e in events] == [("openai", 401)]
    # Only the requests already on their way when the first 401 came reached the vendor.
    assert await requests_served(sim, "openai") <= 20


async def test_a_prompt_too_long_for_the_primary_goes_to_the_larger_window(nc, sim, start_router: StartRouter):
    await start_router()
    await set_mode(sim, "openai", "ok", context_window=50)
    long = json.dumps({"messages": [{"role": "user", "content": "please check " * 40}]}).encode()
    result = await ask(nc, long)
    assert (result["status"], result["provider"]) == ("ok", "anthropic")
    assert [(a["provider"], a["outcome"]) for a in result["attempts"]] == [
        ("openai", "context_too_long"), ("anthropic", "ok")]
    assert (await ask(nc))["provider"] == "openai"  # a short prompt still fits the primary


async def test_a_hedged_request_answers_from_the_next_member_and_counts_both_costs(
        nc, sim, start_router: StartRouter):
    await start_router(config=fast_config(attempt_timeout_ms=3000, deadline_ms=5000,
                                          hedge=HedgeConfig(after_ms=150)))
    await set_mode(sim, "openai", "slow", latency_ms=2000)
    attempts = await collect(nc, subjects.LLM_ATTEMPT)
    completed = await collect(nc, subjects.LLM_COMPLETED)
    t = time.monotonic()
    result = await ask(nc)
    assert time.monotonic() - t < 1.0  # hedged at 150 ms, not 2 s
    assert (result["status"], result["provider"]) == ("ok", "anthropic")
    await asyncio.sleep(0.1)
    events = sorted((LlmAttempt.model_validate_json(a) for a in attempts), key=lambda a: a.provider)
    assert [(e.provider, e.outcome) for e in events] == [("anthropic", "ok"), ("openai", "cancelled")]
    assert all(e.cost_usd > 0 for e in events)
    done = LlmCompleted.model_validate_json(completed[0])
    assert done.cost_usd == result["cost_usd"]
    assert abs(result["cost_usd"] - sum(e.cost_usd for e in events)) < 1e-12
    assert await requests_served(sim, "openai") == 1  # the loser was sent once, then cancelled
