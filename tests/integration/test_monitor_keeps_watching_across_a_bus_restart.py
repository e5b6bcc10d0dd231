"""A restarted nats-server forgets ephemeral consumers; the monitor must not go deaf: after the
restart it still hears the routers' calls, the provider-health KV and the STATUS stream."""

import asyncio
import json
import uuid

import nats

from schemas import subjects
from schemas.control import ProviderHealth
from schemas.streams import PROVIDER_HEALTH
from services.runtime.natsd import NatsServer
from tests.fixtures.health_monitor import StartMonitor, health_config
from tests.integration.conftest import StartRouter, set_mode

ASK = {"messages": [{"role": "user", "content": "Where is my order?"}]}


async def report(nc: nats.NATS) -> dict:
    return json.loads((await nc.request(subjects.HEALTH_REPORT, b"{}", timeout=5)).data)


async def test_after_a_bus_restart_attempts_kv_and_status_still_reach_the_monitor(
        sim, nats_server: NatsServer, start_router: StartRouter, start_monitor: StartMonitor):
    # openai unprobed: only the routers' calls (llm.attempt) can tell the monitor about it.
    config = health_config(providers={"openai": {"probe": "off"}})
    await start_router()
    await start_monitor(config=config)
    nats_server.restart()
    nc = await nats.connect(nats_server.url)
    try:
        for _ in range(100):  # the services reconnect on their own (every 0.5 s)
            try:
                await nc.request(subjects.HEALTH_REPORT, b"{}", timeout=1)
                break
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                await asyncio.sleep(0.1)
        await set_mode(sim, "openai", "down")
        for _ in range(50):
            body = json.dumps({**ASK, "request_id": uuid.uuid4().hex}).encode()
            await nc.request(subjects.LLM_COMPLETE, body, timeout=5)
            if (await report(nc))["providers"]["openai"]["state"] == "down":
                break
            await asyncio.sleep(0.1)
        openai = (await report(nc))["providers"]["openai"]
        assert openai["state"] == "down" and openai["models"]["gpt-4o-mini"]["calls"] >= 3
        # Its own provider.down came back to it through the STATUS stream: the uptime counts it.
        assert openai["uptime"][0]["down_s"] > 0

        kv = await nc.jetstream().key_value(PROVIDER_HEALTH.name)
        entry = await kv.get("local")
        held = ProviderHealth(state="down", reason="by hand", source="operator/test")
        revision = await kv.update("local", held.model_dump_json().encode(), last=entry.revision)
        # The monitor takes the KV's word (down), then sees local answer and says so: its next
        # write is on top of ours.
        for _ in range(100):
            latest = await kv.get("local")
            if latest.revision > revision:
                break
            await asyncio.sleep(0.05)
        after = ProviderHealth.model_validate_json(latest.value)
        assert (after.previous, after.state, after.source) == ("down", "up", "health-monitor/monitor-1")
    finally:
        await nc.close()
