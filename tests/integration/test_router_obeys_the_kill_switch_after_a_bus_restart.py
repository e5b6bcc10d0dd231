"""A restarted nats-server forgets the ephemeral consumers behind KV watches: the router's
watch of the control bucket must notice and watch again, or a kill switch engaged after the
restart is never obeyed (runtime/bus.watch_bucket)."""

import asyncio
import json
import time

import nats

from schemas import subjects
from schemas.control import KILLSWITCH_KEY, Killswitch, ProviderHealth
from schemas.streams import CONTROL, PROVIDER_HEALTH
from services.runtime.natsd import NatsServer
from tests.integration.conftest import StartRouter

ASK = json.dumps({"messages": [{"role": "user", "content": "Where is my order?"}]}).encode()


async def ask(nc: nats.NATS) -> dict:
    return json.loads((await nc.request(subjects.LLM_COMPLETE, ASK, timeout=5)).data)


async def answered_again(nc: nats.NATS, within: float) -> dict:
    """The router's first answer once it has reconnected (it retries every 0.5 s)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await ask(nc)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            assert time.monotonic() < deadline, "the router did not come back"
            await asyncio.sleep(0.1)


async def first_answer_where(nc: nats.NATS, predicate, *, within: float) -> float:
    started = time.monotonic()
    while True:
        result = await ask(nc)
        elapsed = time.monotonic() - started
        if predicate(result):
            return elapsed
        assert elapsed < within, f"still {result['tier']} after {elapsed:.2f}s"
        await asyncio.sleep(0.02)


async def test_the_kill_switch_and_health_are_obeyed_after_the_bus_restarts(
        sim, nats_server: NatsServer, start_router: StartRouter):
    await start_router()
    nats_server.restart()
    nc = await nats.connect(nats_server.url)
    try:
        assert (await answered_again(nc, within=15))["tier"] == "full"
        js = nc.jetstream()
        control = await js.key_value(CONTROL.name)
        await control.put(KILLSWITCH_KEY, Killswitch(
            engaged=True, reason="after the restart", actor="test").model_dump_json().encode())
        elapsed = await first_answer_where(nc, lambda r: r["tier"] == "emergency", within=3.0)
        print(f"kill switch obeyed {elapsed:.2f}s after it was engaged (after a bus restart)")
        await control.delete(KILLSWITCH_KEY)
        await first_answer_where(nc, lambda r: r["tier"] == "full", within=3.0)

        # The provider-health watch is the same function: a `down` is obeyed too.
        health = await js.key_value(PROVIDER_HEALTH.name)
        await health.put("openai", ProviderHealth(
            state="down", reason="by hand", source="operator/test").model_dump_json().encode())
        await first_answer_where(nc, lambda r: r["provider"] == "anthropic", within=3.0)
    finally:
        await nc.close()
