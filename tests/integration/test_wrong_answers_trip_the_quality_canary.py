"""A vendor that answers 200 with the wrong content - invisible to status codes and to the models
list - trips the golden prompts: provider.degraded, reason quality; right answers clear it."""

import asyncio
import time

from schemas import subjects
from tests.conftest import StatusEvents
from tests.fixtures.health_monitor import StartMonitor, health_config
from tests.integration.conftest import requests_served, set_mode


async def test_wrong_content_is_degraded_quality_and_right_content_is_up_again(
        sim, start_monitor: StartMonitor, status_events: StatusEvents):
    config = health_config(canary={"enabled": True, "interval_s": 0.3, "window": 3},
                           providers={"anthropic": {"canary": False}, "local": {"canary": False}})
    await start_monitor(config=config)
    await status_events.wait_for(subjects.PROVIDER_UP, 5, provider="openai")
    # The canaries pass in mode ok: nothing happens for a few rounds.
    calls = await requests_served(sim, "openai")
    while await requests_served(sim, "openai") < calls + 6:  # two rounds of three golden prompts
        await asyncio.sleep(0.05)
    assert status_events.of(subjects.PROVIDER_DEGRADED) == []

    seen = len(status_events.events)
    await set_mode(sim, "openai", "wrong")
    changed = time.monotonic()
    at, degraded = await status_events.wait_for(subjects.PROVIDER_DEGRADED, 5, after=seen,
                                                provider="openai")
    print(f"\nwrong answers: provider.degraded (quality) after {at - changed:.2f} s")
    assert degraded["reason"] == "quality"
    evidence = degraded["evidence"]
    assert evidence["canary_pass_rate"] < 0.6
    assert any(f.startswith("exact: expected 'lifeline-canary-7'") for f in evidence["canary_failures"])
    assert evidence["error_rate"] == 0.0  # every call answered 200: only the content was wrong

    seen = len(status_events.events)
    await set_mode(sim, "openai", "ok")
    _, up = await status_events.wait_for(subjects.PROVIDER_UP, 5, after=seen, provider="openai")
    assert up["evidence"]["previous"] == "degraded"
    assert status_events.of(subjects.PROVIDER_DOWN) == []
