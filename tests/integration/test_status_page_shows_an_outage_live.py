"""The Done-when of issue 9, on real parts: the router and the vendor simulator, a real bus, the
notifier, a real webhook receiver and a real headless Chromium that never reloads the page.

The health monitor is built in parallel, so provider.down/up are published on the bus as it
would publish them (the real event models, on the real subjects, into the STATUS stream).
"""

import json
import os
import shutil
import time
from pathlib import Path

import aiohttp
import nats

from schemas import subjects
from schemas.events import ProviderDown, ProviderUp
from services.notifier.alerts import verify
from tests.fixtures.notifier import (
    HOOK_SECRET, channel_env, channels, notifier_config, publish_event,
)
from tests.integration.conftest import fast_config, set_mode

ASK = json.dumps({"messages": [{"role": "user", "content": "Where is my order?"}]}).encode()
SCREENSHOT = Path(__file__).parents[2] / "docs" / "status-page-outage.png"
OPENAI = '[data-component="provider-openai"]'


async def test_an_outage_shows_within_5s_without_reload_and_alerts_signed_then_resolves(
        nc: nats.NATS, sim, start_router, store_url, start_notifier, receiver, page, tmp_path):
    await start_router()
    config = notifier_config(fast_config(), channels=channels(receiver))
    notifier = await start_notifier(config, db_url=store_url, env=channel_env(receiver))
    await page.goto(notifier.status_url)
    assert await page.get_attribute(OPENAI, "data-status") == "operational"
    await page.evaluate("window.__notReloaded = true")

    # openai breaks; the health monitor says so on the bus
    await set_mode(sim, "openai", "down")
    started = time.monotonic()
    down = ProviderDown(source="health-monitor/test", provider="openai",
                        reason="5 of 5 probes failed (HTTP 503)")
    await publish_event(nc, subjects.PROVIDER_DOWN, down)

    await page.wait_for_selector(f'{OPENAI}[data-status="major_outage"]', timeout=5000)
    incident = page.locator("#current-incidents .incident")
    await incident.filter(has_text="failing over to anthropic").wait_for(timeout=5000)
    shown_after = time.monotonic() - started
    assert shown_after < 5.0, f"the page showed the outage after {shown_after:.1f}s"
    print(f"\nprovider.down -> page shows the outage: {shown_after:.2f}s")  # the figure (-s)
    assert (await page.inner_text(f"{OPENAI} .status")) == "Major outage"
    title = await incident.locator("h3").inner_text()
    assert title == "Provider openai outage — traffic failing over to anthropic"

    # ... and that is what the router really does
    answer = json.loads((await nc.request(subjects.LLM_COMPLETE, ASK, timeout=5)).data)
    assert (answer["status"], answer["provider"], answer["fallback_depth"]) == ("ok", "anthropic", 1)

    # the on-call webhook got one correctly signed alert naming the fallback
    [opened] = await receiver.wait_for(lambda: receiver.at("/hook"))
    assert verify(HOOK_SECRET.encode(), opened.headers["X-Lifeline-Signature"], opened.body)
    assert not verify(b"another secret", opened.headers["X-Lifeline-Signature"], opened.body)
    alert = opened.json()
    assert (alert["type"], alert["component"], alert["title"]) == (
        "incident.opened", "provider-openai", title)
    assert opened.headers["Idempotency-Key"] == alert["id"]

    # metrics on the service's registry: the open incident, this page's live stream, the alert
    sent = 'lifeline_notifier_alerts_sent_total{channel="ops-hook"} 1.0'
    for _ in range(40):  # the receiver answers just before the delivery is recorded
        async with aiohttp.ClientSession() as http, http.get(f"{notifier.health.url}/metrics") as r:
            metrics = await r.text()
        if sent in metrics:
            break
        await page.wait_for_timeout(50)
    assert sent in metrics
    assert "lifeline_notifier_incidents_open 1.0" in metrics
    assert "lifeline_notifier_sse_clients 1.0" in metrics

    shot = tmp_path / "status-page-outage.png"
    await page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("LIFELINE_UPDATE_SCREENSHOT"):  # how docs/status-page-outage.png is made
        shutil.copy(shot, SCREENSHOT)

    # openai recovers: the incident resolves with its measured duration, and a resolve alert goes
    await set_mode(sim, "openai", "ok")
    up = ProviderUp(source="health-monitor/test", provider="openai", reason="3 probes passed")
    await publish_event(nc, subjects.PROVIDER_UP, up)
    incident_id = alert["incident_id"]
    recovered = time.monotonic()
    resolved = page.locator(f'[data-incident="{incident_id}"][data-status="resolved"]')
    await resolved.wait_for(timeout=5000)
    assert "lasted" in await resolved.locator(".meta").inner_text()
    assert await page.get_attribute(OPENAI, "data-status") == "operational"
    assert await page.locator("#current-incidents").count() == 0

    closing = await receiver.wait_for(
        lambda: [r for r in receiver.at("/hook") if r.json()["type"] == "incident.resolved"])
    print(f"provider.up -> resolved on the page and alerted: {time.monotonic() - recovered:.2f}s "
          f"(quiet period {config.notifier.incidents.resolve_after_s}s)")
    body = closing[0].json()
    measured = (up.occurred_at - down.occurred_at).total_seconds()
    assert body["incident_id"] == incident_id
    assert abs(body["duration_s"] - measured) < 0.01, (body["duration_s"], measured)
    assert verify(HOOK_SECRET.encode(), closing[0].headers["X-Lifeline-Signature"], closing[0].body)
    assert len(receiver.at("/hook")) == 2  # one alert per transition; "monitoring" pages nobody
    # PagerDuty: the same incident triggered, then resolved under one dedup key
    pd = [r.json() for r in receiver.at("/pd/v2/enqueue")]
    assert [(p["event_action"], p["dedup_key"]) for p in pd] == [
        ("trigger", incident_id), ("resolve", incident_id)]

    assert await page.evaluate("window.__notReloaded === true")  # live, not reloaded
