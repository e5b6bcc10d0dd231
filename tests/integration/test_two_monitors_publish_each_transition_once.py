"""Two health-monitor instances on one bus: each transition is published once (the KV's
compare-and-set decides who), never contradicted, and the probing is split between them."""

import asyncio
import itertools
import json

import nats
from nats.aio.msg import Msg

from schemas import subjects
from schemas.control import ProviderHealth
from schemas.streams import PROVIDER_HEALTH
from tests.conftest import StatusEvents
from tests.fixtures.health_monitor import StartMonitor, health_config
from tests.integration.conftest import set_mode


async def test_two_instances_one_story(sim, nc: nats.NATS, start_monitor: StartMonitor,
                                       status_events: StatusEvents):
    core: list[dict] = []  # what a plain subscriber sees: a duplicate publish would show here
    probes: list[dict] = []

    async def on_core(msg: Msg) -> None:
        core.append(json.loads(msg.data))

    async def on_probe(msg: Msg) -> None:
        probes.append(json.loads(msg.data))

    await nc.subscribe("provider.*", cb=on_core)
    await nc.subscribe(subjects.HEALTH_PROBE, cb=on_probe)
    config = health_config(probe={"interval_s": 0.3, "confirm_interval_s": 0.05},
                           hysteresis={"flap_window_s": 0.2})
    monitors = [await start_monitor("monitor-a", config=config),
                await start_monitor("monitor-b", config=config)]
    for provider in ("openai", "anthropic", "local"):
        await status_events.wait_for(subjects.PROVIDER_UP, 5, provider=provider)
    for _ in range(3):  # outages and recoveries, each seen by both instances
        seen = len(status_events.events)
        await set_mode(sim, "openai", "down")
        await status_events.wait_for(subjects.PROVIDER_DOWN, 5, after=seen, provider="openai")
        seen = len(status_events.events)
        await set_mode(sim, "openai", "ok")
        await status_events.wait_for(subjects.PROVIDER_UP, 5, after=seen, provider="openai")
    await asyncio.sleep(0.5)  # room for a duplicate, were there one

    stored = [body for _, subject, body in status_events.events if subject.startswith("provider.")]
    openai = [e for e in stored if e["provider"] == "openai"]
    assert [e["state"] for e in openai] == ["up"] + ["down", "up"] * 3
    for before, after in itertools.pairwise(openai):  # a story without gaps or contradictions
        assert after["evidence"]["previous"] == before["state"]
        assert after["since"] == before["occurred_at"]
    assert len({e["id"] for e in stored}) == len(stored) == len(core)
    writers = {e["source"] for e in stored}
    lost = sum(m.metrics.get_sample_value("lifeline_health_transition_conflicts_total",
                                          {"provider": "openai"}) or 0 for m in monitors)
    print(f"\n{len(stored)} transitions, each published once; written by {sorted(writers)}; "
          f"{lost:g} openai writes lost the compare-and-set to the other instance")

    kv = await nc.jetstream().key_value(PROVIDER_HEALTH.name)
    entry = await kv.get("openai")
    assert ProviderHealth.model_validate_json(entry.value).state == "up"
    assert openai[-1]["id"] == f"provider-health.openai.{entry.revision}"
    # The work is shared: once both know of each other, each provider has one prober.
    late = probes[len(probes) // 2:]
    by_provider = {p: {x["source"] for x in late if x["provider"] == p} for p in ("openai", "anthropic", "local")}
    assert all(len(sources) == 1 for sources in by_provider.values()), by_provider
    assert len({s for sources in by_provider.values() for s in sources}) == 2, by_provider


async def test_the_kv_write_is_the_arbiter_one_writer_wins_each_race(nc: nats.NATS, status_events):
    from services.health_monitor.store import HealthKV
    writers = [HealthKV(nc.jetstream()), HealthKV(nc.jetstream())]
    last = None
    for round_no in range(20):
        value = ProviderHealth(state="down" if round_no % 2 == 0 else "up", reason="race")
        won = await asyncio.gather(*(w.write("openai", value, last) for w in writers))
        assert sum(r is not None for r in won) == 1, won
        last = next(r for r in won if r is not None)


async def test_a_transition_whose_writer_died_before_publishing_is_published_by_another(
        nc: nats.NATS, start_monitor: StartMonitor, status_events: StatusEvents):
    await start_monitor()
    await status_events.wait_for(subjects.PROVIDER_UP, 5, provider="local")
    kv = await nc.jetstream().key_value(PROVIDER_HEALTH.name)
    entry = await kv.get("local")
    # What an instance that won the write and died at once leaves behind: the KV says, no event.
    ghost = ProviderHealth(state="degraded", reason="latency", previous="up",
                           source="health-monitor/ghost", evidence={"p95_ms": 9000.0})
    revision = await kv.update("local", ghost.model_dump_json().encode(), last=entry.revision)
    _, event = await status_events.wait_for(subjects.PROVIDER_DEGRADED, 5, provider="local")
    assert event["id"] == f"provider-health.local.{revision}"
    assert (event["source"], event["reason"], event["evidence"]["p95_ms"]) == (
        "health-monitor/ghost", "latency", 9000.0)
