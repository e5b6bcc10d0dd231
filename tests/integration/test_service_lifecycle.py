"""What every service gets from services/runtime: health, heartbeats, reconnect, a clear start failure."""

import asyncio
import json

import aiohttp
import nats
import pytest

from schemas import subjects
from services.router.app import build_app as build_router
from services.router.settings import RouterSettings
from services.runtime.natsd import NatsServer, free_port
from tests.integration.conftest import StartRouter, fast_config, set_mode

ASK = json.dumps({"messages": [{"role": "user", "content": "hello"}]}).encode()


async def get(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        return r.status, await r.json()


async def test_health_ready_and_heartbeats_tell_the_truth(
        nc: nats.NATS, sim, start_router: StartRouter):
    beats: asyncio.Queue[dict] = asyncio.Queue()

    async def on_beat(msg: nats.aio.msg.Msg) -> None:
        await beats.put(json.loads(msg.data))

    await nc.subscribe(subjects.heartbeat("router"), cb=on_beat)
    router = await start_router("router-7")
    beat = await asyncio.wait_for(beats.get(), 5)
    assert (beat["service"], beat["instance"], beat["in_flight"]) == ("router", "router-7", 0)
    assert beat["health_url"] == router.health.url
    assert await get(f"{router.health.url}/healthz") == (200, {"status": "ok", "service": "router"})
    status, body = await get(f"{router.health.url}/readyz")
    assert (status, body["status"]) == (200, "ready")

    # While it stops, finishing a slow request, it is alive but no longer ready.
    await set_mode(sim, "openai", "slow", latency_ms=500)
    pending = asyncio.create_task(nc.request(subjects.LLM_COMPLETE, ASK, timeout=5))
    while (await asyncio.wait_for(beats.get(), 5))["in_flight"] != 1:
        pass  # the router says, in its heartbeat, that it is working on the request
    stopping = asyncio.create_task(router.stop())
    await router.intake_closed.wait()
    status, body = await get(f"{router.health.url}/readyz")
    assert (status, body["reasons"]) == (503, ["not accepting work (starting or stopping)"])
    assert json.loads((await pending).data)["status"] == "ok"
    await stopping


async def test_a_router_keeps_serving_across_a_bus_restart(
        nc: nats.NATS, nats_server: NatsServer, start_router: StartRouter):
    router = await start_router()
    assert json.loads((await nc.request(subjects.LLM_COMPLETE, ASK, timeout=5)).data)["status"] == "ok"
    await nc.close()
    nats_server.restart()
    client = await nats.connect(nats_server.url)
    try:
        # The router reconnects on its own (every 0.5 s) and resubscribes; wait for it to answer.
        for _ in range(100):
            try:
                reply = await client.request(subjects.LLM_COMPLETE, ASK, timeout=2)
                break
            except nats.errors.NoRespondersError:
                await asyncio.sleep(0.1)
        assert json.loads(reply.data)["status"] == "ok"
        status, _ = await get(f"{router.health.url}/readyz")
        assert status == 200
    finally:
        await client.close()


async def test_a_service_without_a_bus_fails_to_start_with_a_clear_error():
    url = f"nats://127.0.0.1:{free_port()}"
    service = build_router(RouterSettings(nats_url=url), config=fast_config())
    with pytest.raises(RuntimeError, match=f"router: cannot reach NATS at {url} within 1s"):
        await service.start(connect_timeout=1)


async def test_a_stop_step_that_hangs_is_abandoned_after_the_grace_and_named_in_the_log(
        start_router: StartRouter, caplog: pytest.LogCaptureFixture):
    router = await start_router(graceful_timeout=1.0)
    released = asyncio.Event()

    async def stuck_flush() -> None:  # e.g. a database connection that never answers
        await released.wait()

    router.on_stop(stuck_flush)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level("WARNING", logger="services.runtime.service"):
        await router.stop()
    assert 1.0 <= loop.time() - started < 3.0
    assert not released.is_set()
    assert any("stuck_flush did not finish in 1s" in r.getMessage() for r in caplog.records)
    with pytest.raises(aiohttp.ClientConnectionError):  # the steps after it still ran
        await get(f"{router.health.url}/healthz")
