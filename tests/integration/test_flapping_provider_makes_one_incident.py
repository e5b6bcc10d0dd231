"""A provider flapping for "a minute" (time compressed tenfold: 6 s of down/up every 0.5 s, with
a 3 s quiet period before an incident resolves) is one incident and at most a few alerts."""

import asyncio

import aiohttp
import nats

from schemas import subjects
from schemas.events import ProviderDown, ProviderUp
from tests.fixtures.notifier import channel_env, channels, notifier_config, publish_event

FLAP_S = 6.0
HALF_PERIOD_S = 0.5


async def test_a_flapping_provider_is_one_incident_and_at_most_a_few_alerts(
        nc: nats.NATS, start_notifier, receiver):
    config = notifier_config(channels=channels(receiver), incidents={
        "resolve_after_s": 3.0, "reopen_within_s": 30, "alert_min_interval_s": 60})
    notifier = await start_notifier(config, env=channel_env(receiver))

    loop = asyncio.get_running_loop()
    end = loop.time() + FLAP_S
    flips = 0
    while loop.time() < end:  # the flapping itself is the thing under test: it takes time
        event = (ProviderDown(provider="openai", reason="probe failed") if flips % 2 == 0
                 else ProviderUp(provider="openai", reason="probe passed"))
        await publish_event(nc, subjects.PROVIDER_DOWN if flips % 2 == 0 else subjects.PROVIDER_UP,
                            event)
        flips += 1
        await asyncio.sleep(HALF_PERIOD_S)
    if flips % 2:  # end up
        await publish_event(nc, subjects.PROVIDER_UP, ProviderUp(provider="openai", reason="ok"))
        flips += 1
    assert flips >= 10

    resolved = await receiver.wait_for(
        lambda: [r for r in receiver.at("/hook") if r.json()["type"] == "incident.resolved"],
        timeout=10)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{notifier.status_url}/api/v2/incidents.json") as r:
            incidents = (await r.json())["incidents"]
    assert len(incidents) == 1, [i["name"] for i in incidents]
    [incident] = incidents
    assert incident["status"] == "resolved"
    assert resolved[0].json()["flaps"] >= flips // 2 - 2  # every relapse folded into it

    hooks = [r.json()["type"] for r in receiver.at("/hook")]
    assert hooks == ["incident.opened", "incident.resolved"], hooks
    assert len(receiver.at("/slack")) <= 3 and len(receiver.at("/pd/v2/enqueue")) <= 3
    # the timeline keeps every relapse for the page, while nobody was paged for them
    timeline = [u["body"] for u in incident["incident_updates"]]
    assert sum("Failing again" in body for body in timeline) >= flips // 2 - 2
