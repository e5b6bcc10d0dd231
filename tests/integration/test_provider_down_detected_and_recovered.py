"""`provider.down` soon after a vendor dies - within two probe intervals with no traffic at all,
within 5 s under light traffic - and `provider.up` after it returns. Real nats-server, real
simulator over HTTP, the monitor (and the router) in this process. Detection times are printed."""

import asyncio
import json
import time
import uuid

import nats
from nats.aio.msg import Msg

from schemas import subjects
from tests.conftest import StatusEvents
from tests.fixtures.health_monitor import StartMonitor, health_config
from tests.integration.conftest import StartRouter, set_mode

ASK = {"messages": [{"role": "user", "content": "Where is my order?"}]}


async def test_without_traffic_down_within_two_probe_intervals_and_up_after_ok(
        sim, start_monitor: StartMonitor, status_events: StatusEvents):
    interval = 1.0
    # A short flap window, so that three outages in a row are three outages, not a flap.
    config = health_config(probe={"interval_s": interval, "confirm_interval_s": 0.1},
                           hysteresis={"flap_window_s": 0.5})
    await start_monitor(config=config)
    await status_events.wait_for(subjects.PROVIDER_UP, 5, provider="openai")
    downs, ups = [], []
    for _ in range(3):
        await asyncio.sleep(interval)  # a probe just went out: the worst phase is a full interval
        seen = len(status_events.events)
        await set_mode(sim, "openai", "down")
        changed = time.monotonic()
        at, down = await status_events.wait_for(subjects.PROVIDER_DOWN, 2 * interval + 1, after=seen,
                                                provider="openai")
        downs.append(at - changed)
        assert down["reason"] == "server_error" and down["state"] == "down"
        assert down["evidence"]["consecutive_failures"] >= 3 and down["evidence"]["last_errors"]
        seen = len(status_events.events)
        await set_mode(sim, "openai", "ok")
        changed = time.monotonic()
        at, up = await status_events.wait_for(subjects.PROVIDER_UP, 5, after=seen, provider="openai")
        ups.append(at - changed)
        assert up["evidence"]["previous"] == "down" and up["since"] == down["occurred_at"]
    print(f"\nno traffic, probe interval {interval:g}s: provider.down after "
          f"{', '.join(f'{d:.2f}' for d in downs)} s; provider.up after {', '.join(f'{u:.2f}' for u in ups)} s")
    assert max(downs) < 2 * interval
    # No other provider was touched.
    assert {e["provider"] for e in status_events.of(subjects.PROVIDER_DOWN)} == {"openai"}


async def test_under_light_traffic_down_within_5s_and_up_after_ok(
        sim, nc: nats.NATS, start_router: StartRouter, start_monitor: StartMonitor,
        status_events: StatusEvents):
    # Probes every second - except that they pause while real traffic measures a provider:
    # the routers' calls (llm.attempt) are what tell the monitor here.
    config = health_config(probe={"interval_s": 1.0, "confirm_interval_s": 0.5, "timeout_s": 2.0,
                                  "traffic_covers_s": 1.0})
    probes: list[dict] = []

    async def on_probe(msg: Msg) -> None:
        probes.append(json.loads(msg.data))

    await nc.subscribe(subjects.HEALTH_PROBE, cb=on_probe)
    await start_router()
    await start_monitor(config=config)
    await status_events.wait_for(subjects.PROVIDER_UP, 5, provider="openai")
    stop = asyncio.Event()
    answered: list[dict] = []

    async def light_traffic() -> None:  # four requests a second, at most 100 of them
        for _ in range(100):
            if stop.is_set():
                return
            body = json.dumps({**ASK, "request_id": uuid.uuid4().hex}).encode()
            answered.append(json.loads((await nc.request(subjects.LLM_COMPLETE, body, timeout=5)).data))
            await asyncio.sleep(0.25)

    traffic = asyncio.create_task(light_traffic())
    try:
        await asyncio.sleep(1.0)  # the first answers reach the monitor
        before = len(probes)
        await asyncio.sleep(3.0)
        during = [p["provider"] for p in probes[before:]]
        seen = len(status_events.events)
        await set_mode(sim, "openai", "down")
        changed = time.monotonic()
        at, down = await status_events.wait_for(subjects.PROVIDER_DOWN, 8, after=seen, provider="openai")
        detected = at - changed
        seen = len(status_events.events)
        await set_mode(sim, "openai", "ok")
        changed = time.monotonic()
        at, _ = await status_events.wait_for(subjects.PROVIDER_UP, 10, after=seen, provider="openai")
        recovered = at - changed
    finally:
        stop.set()
        await traffic
    print(f"\nlight traffic (4 req/s): provider.down after {detected:.2f} s, provider.up after "
          f"{recovered:.2f} s; probes in 3 s of traffic: openai {during.count('openai')}, "
          f"anthropic {during.count('anthropic')}")
    assert detected < 5.0
    assert during.count("openai") == 0 and during.count("anthropic") >= 2  # paused, not stopped
    assert down["evidence"]["real_calls"] > 0  # the evidence is the routers' own calls
    assert all(r["status"] == "ok" for r in answered)  # the router failed over meanwhile
