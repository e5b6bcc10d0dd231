"""health.report: each provider's state, p95, today's uptime and probe spend, each route's
composite availability; the uptime is rebuilt from the STATUS stream by a new instance."""

import json

import aiohttp
import nats

from schemas import subjects
from tests.conftest import StatusEvents
from tests.fixtures.health_monitor import StartMonitor, health_config
from tests.integration.conftest import set_mode


async def report(nc: nats.NATS, body: bytes = b"{}") -> dict:
    return json.loads((await nc.request(subjects.HEALTH_REPORT, body, timeout=5)).data)


async def test_report_fields_spend_and_uptime_across_a_restart(
        sim, nc: nats.NATS, start_monitor: StartMonitor, status_events: StatusEvents):
    # openai is probed with capped completions, so its probes cost something (priced from
    # lifeline.yaml); the others with their free models list.
    config = health_config(providers={"openai": {"probe": "completion"}})
    first = await start_monitor("monitor-1", config=config)
    for provider in ("openai", "anthropic", "local"):
        await status_events.wait_for(subjects.PROVIDER_UP, 5, provider=provider)
    seen = len(status_events.events)
    await set_mode(sim, "openai", "down")
    await status_events.wait_for(subjects.PROVIDER_DOWN, 5, after=seen, provider="openai")
    seen = len(status_events.events)
    await set_mode(sim, "openai", "ok")
    await status_events.wait_for(subjects.PROVIDER_UP, 5, after=seen, provider="openai")

    before = await report(nc, b'{"days": 2}')
    openai = before["providers"]["openai"]
    assert (openai["state"], openai["reason"]) == ("up", "answering")
    assert openai["p95_ms"] is not None and openai["p95_ms"] > 0
    today, yesterday = openai["uptime"]
    assert today["down_s"] > 0 and today["up_s"] > 0 and 0 < today["availability"] < 1
    assert yesterday["availability"] is None  # not monitored then
    assert openai["probe"]["method"] == "completion" and openai["probe"]["spend_usd"] > 0
    assert set(openai["models"]) >= {"gpt-4o-mini", "gpt-4o"}  # a probe per model
    assert before["providers"]["anthropic"]["probe"]["spend_usd"] == 0  # models lists are free
    assert before["probe_spend_usd"] == openai["probe"]["spend_usd"]
    chat = before["routes"]["chat"]
    assert chat["chain"] == ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5", "local/llama-3.1-8b"]
    assert chat["state"] == "up"
    # Anthropic never went down: the chain was always able to answer.
    assert chat["availability_today"] == 1.0 and chat["uptime"][0]["down_s"] == 0
    assert chat["uptime"][0]["degraded_s"] > 0  # while openai was down, a fallback answered
    assert {(s["service"], s["instance"], s["alive"]) for s in before["services"]} >= {
        ("health-monitor", "monitor-1", True)}
    print(f"\nopenai today: up {today['up_s']:.1f}s, down {today['down_s']:.1f}s, "
          f"availability {today['availability']:.4f}; probe spend ${openai['probe']['spend_usd']:.8f}")

    async with aiohttp.ClientSession() as http, http.get(f"{first.health.url}/metrics") as r:
        metrics = await r.text()
    for name in ("lifeline_health_probe_latency_seconds_bucket", "lifeline_health_provider_state",
                 "lifeline_health_probe_spend_usd_total"):
        assert name in metrics, name
    assert 'lifeline_health_provider_state{provider="openai"} 0.0' in metrics

    # A new instance, the old one gone: the state comes from the KV, the uptime from STATUS.
    await first.stop()
    await start_monitor("monitor-2", config=config)
    after = await report(nc)
    assert after["source"] == "health-monitor/monitor-2"
    again = after["providers"]["openai"]
    assert again["state"] == "up"
    assert again["uptime"][0]["down_s"] == today["down_s"]
    assert again["uptime"][0]["up_s"] >= today["up_s"]


async def test_a_bad_report_request_is_answered_with_what_was_wrong(
        nc: nats.NATS, start_monitor: StartMonitor):
    await start_monitor()
    answer = await report(nc, b'{"days": 0}')
    assert answer["error"] == "days: Input should be greater than or equal to 1"
    answer = await report(nc, b"not json")
    assert answer["error"].startswith("body: Invalid JSON")
