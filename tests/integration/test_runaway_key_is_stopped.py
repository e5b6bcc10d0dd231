"""A runaway loop (one key at 20x its own baseline) is announced within a minute and, with
auto-kill, that key is stopped while the others keep working."""

import asyncio
import time

import nats

from schemas.control import Killswitch
from schemas.streams import CONTROL
from tests.fixtures.cost_guard import ask, ask_body, priced_config

RUNAWAY = {"factor": 10, "bucket_s": 1, "window_s": 3, "baseline_s": 60, "min_history_s": 4,
           "min_rate_usd_per_min": 0.01, "auto_kill": True, "check_every_s": 0.25}


async def steady(nc: nats.NATS, key: str, per_s: float, until: float) -> list[dict]:
    results = []
    while time.monotonic() < until:
        started = time.monotonic()
        results.append(await ask(nc, ask_body(key=key)))
        await asyncio.sleep(max(0.0, 1 / per_s - (time.monotonic() - started)))
    return results


async def test_a_key_at_20x_its_baseline_is_announced_and_stopped_alone(
        nc: nats.NATS, db_url: str, start_router, start_cost_guard, status_events):
    config = priced_config(runaway=RUNAWAY)
    await start_cost_guard(config, db_url)
    await start_router("router-1", config=config)
    await start_router("router-2", config=config)
    # A baseline: both keys at 2 requests a second for 6 s.
    baseline_until = time.monotonic() + 6
    await asyncio.gather(steady(nc, "loop", 2, baseline_until), steady(nc, "calm", 2, baseline_until))
    assert not status_events.of("cost.anomaly")

    # The loop: 40 requests a second on one key, while the other carries on as before.
    spike_started = time.monotonic()
    stop = spike_started + 30
    calm = asyncio.create_task(steady(nc, "calm", 2, stop))
    loop = [asyncio.create_task(steady(nc, "loop", 10, stop)) for _ in range(4)]
    [anomaly] = await status_events.wait("cost.anomaly", within=30,
                                         where=lambda e: e["scope"] == "key")
    detected_s = time.monotonic() - spike_started
    assert (anomaly["scope_id"], anomaly["action"]) == ("loop", "killswitch")
    assert anomaly["factor"] >= 10
    print(f"\nrunaway at ~20x its baseline announced {detected_s:.1f}s after it began "
          f"(rate ${anomaly['rate_usd_per_min']:.3f}/min, baseline "
          f"${anomaly['baseline_usd_per_min']:.3f}/min, factor {anomaly['factor']})")
    assert detected_s < 60

    [engaged] = await status_events.wait("killswitch.engaged", within=5)
    assert (engaged["scope"], engaged["actor"]) == ("key:loop", "cost-guard:runaway")
    kv = await nc.jetstream().key_value(CONTROL.name)
    switch = Killswitch.model_validate_json((await kv.get("killswitch.key.loop")).value)
    assert switch.engaged and "runaway spend" in switch.reason

    # From here on the loop's key gets no answer from a provider; the calm key keeps working.
    await asyncio.sleep(1.0)
    after = [await ask(nc, ask_body(key="loop")) for _ in range(5)]
    assert all(r["status"] != "ok" or r["tier"] == "emergency" for r in after), after
    refused = [r for r in after if r["status"] == "error"]
    if refused:  # this branch's router: the cost guard refuses the killed key at admission
        assert "stopped by its kill switch" in refused[0]["error"]["message"]
    for task in loop:
        task.cancel()
    calm_after = [await ask(nc, ask_body(key="calm")) for _ in range(5)]
    assert all(r["status"] == "ok" and r["tier"] == "full" for r in calm_after)
    calm.cancel()
    await asyncio.gather(calm, *loop, return_exceptions=True)
    assert len(status_events.of("killswitch.engaged")) == 1
