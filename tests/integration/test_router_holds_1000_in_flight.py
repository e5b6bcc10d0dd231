"""One router instance keeps at least 1,000 requests in flight (issue 3).

The vendor here holds every answer until the test releases it (a stand-in for the vendor's HTTP
API that is as slow as the test needs, whatever the machine's load): so the figure measured is
how many requests the router takes on at once, not how fast a loaded machine feeds it.
Real things used: nats-server, the router, aiohttp client pools, an aiohttp server on 127.0.0.1.
"""

import asyncio
import json
import time

import nats

from schemas import subjects
from tests.fixtures.router import HeldVendor
from tests.integration.conftest import StartRouter, fast_config

N = 1000
ASK = json.dumps({"messages": [{"role": "user", "content": "Slow day?"}]}).encode()


async def test_one_router_holds_a_thousand_requests_in_flight(
        nc: nats.NATS, sim, held: HeldVendor, start_router: StartRouter):
    vendor = held
    config = fast_config(attempt_timeout_ms=60_000, deadline_ms=60_000)
    router = await start_router(config=config, providers=vendor.providers(config, sim.url))

    started = time.monotonic()
    calls = [asyncio.create_task(nc.request(subjects.LLM_COMPLETE, ASK, timeout=90)) for _ in range(N)]
    peak = 0
    while (peak < N or vendor.arrived < N) and time.monotonic() - started < 60:  # bounded: a stuck router fails, not hangs
        await asyncio.sleep(0.01)
        peak = max(peak, router.in_flight())
    held_for = time.monotonic() - started
    at_vendor = vendor.arrived
    vendor.release.set()
    results = [json.loads(r.data) for r in await asyncio.wait_for(asyncio.gather(*calls), 60)]
    print(f"{N} requests in flight at once after {held_for:.2f}s; peak {peak}, "
          f"{at_vendor} waiting at the vendor")
    assert peak >= N  # the router's own count of requests it was working on at once
    assert at_vendor >= N  # and every one of them was out at the vendor, not queued inside
    assert {(r["status"], r["provider"]) for r in results} == {("ok", "openai")}
