"""A parked request's answer is POSTed to its callback URL (retried past failures), and one whose
deadline passes during the outage gets `expired` instead of a late answer."""

import asyncio

import nats
import pytest
from aiohttp import web

from tests.fixtures.degradation import all_vendors, answered, ask, degraded_config, park, request, results
from tests.integration.conftest import StartRouter

pytestmark = pytest.mark.timeout(60)


async def test_the_answer_is_posted_to_the_callback_url_through_its_failures(
        nc: nats.NATS, sim, start_router: StartRouter):
    posts: list[dict] = []
    got_it = asyncio.Event()

    async def hook(r: web.Request) -> web.Response:
        posts.append({"body": await r.json(), "id": r.headers.get("Lifeline-Request-Id")})
        if len(posts) < 3:
            return web.Response(status=503)  # the receiver is having a bad moment
        got_it.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        await start_router(config=degraded_config(callback_backoff_s=0.05))
        await all_vendors(sim, "down")
        parked = await ask(nc, "Summarize my week", allow_queue=True, callback_url=url)
        assert parked["status"] == "queued"
        await all_vendors(sim, "ok")
        await asyncio.wait_for(got_it.wait(), 20)
    finally:
        await runner.cleanup()
    assert len(posts) == 3
    assert all(p["id"] == parked["ticket"] for p in posts)
    assert posts[-1]["body"]["status"] == "ok" and posts[-1]["body"]["request_id"] == parked["ticket"]
    [stored] = await results(nc)
    assert stored["content"] == posts[-1]["body"]["content"]


async def test_a_request_whose_deadline_passes_in_the_outage_expires_instead_of_answering_late(
        nc: nats.NATS, sim, start_router: StartRouter):
    await start_router(config=degraded_config())
    await all_vendors(sim, "down")
    short = request("needed within half a second", deadline_ms=500)
    patient = request("needed today")
    done = await answered(nc, 1)
    await park(nc, [short, patient])
    await asyncio.wait_for(done.wait(), 10)  # the short one expires while the vendors are down
    before = sum(v["requests"]["by_status"].get("200", 0) for v in await _vendors(sim))
    done = await answered(nc, 1)  # the patient one, counted from here
    await all_vendors(sim, "ok")
    await asyncio.wait_for(done.wait(), 10)

    stored = {r["request_id"]: r for r in await results(nc)}
    assert stored[short["request_id"]]["status"] == "error"
    assert stored[short["request_id"]]["error"]["kind"] == "expired"
    assert stored[patient["request_id"]]["status"] == "ok"
    after = sum(v["requests"]["by_status"].get("200", 0) for v in await _vendors(sim))
    assert after - before == 1  # only the patient one reached a vendor


async def _vendors(sim) -> list[dict]:
    from services.simulator.keys import VENDORS, CLOCK
    return [v.describe(sim.app[CLOCK]()) for v in sim.app[VENDORS].values()]
