"""1,000 parked requests, two router processes, one SIGKILLed mid-drain: each request is still
answered exactly once (the dead router's messages come back after AckWait)."""

import asyncio
import signal
from collections import Counter
from pathlib import Path

import aiohttp
import nats
import pytest
import yaml

from schemas import subjects
from schemas.streams import LLM_QUEUE
from services.cli.mesh import Mesh
from services.runtime.natsd import NatsServer
from tests.e2e.conftest import write_config
from tests.fixtures.degradation import VENDORS, park, request, results

TOTAL = 1000
pytestmark = pytest.mark.timeout(180)


def queue_config(path: Path) -> Path:
    write_config(path)
    data = yaml.safe_load(path.read_text())
    data["breaker"].update(wait_in_open_ms=300, minimum_calls=3, window_size=5)
    data["tiers"]["queue"].update(ack_wait_s=2, start_rate=200, max_rate=1000, ramp_every_s=0.5,
                                  retry_delay_s=0.1)
    path.write_text(yaml.safe_dump(data))
    return path


async def set_all(mesh: Mesh, mode: str) -> None:
    async with aiohttp.ClientSession() as http:
        for vendor in VENDORS:
            async with http.put(f"{mesh.simulator_url}/_sim/vendors/{vendor}", json={"mode": mode}) as r:
                assert r.status == 200


async def vendor_answers(mesh: Mesh) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{mesh.simulator_url}/_sim/vendors") as r:
            vendors = (await r.json())["vendors"]
    return sum(v["requests"]["by_status"].get("200", 0) for v in vendors.values())


async def test_a_router_killed_mid_drain_loses_and_doubles_nothing(
        mesh: Mesh, nats_server: NatsServer, tmp_path: Path):
    config = queue_config(tmp_path / "lifeline.yaml")
    mesh.start_simulator()
    env = {"LIFELINE_CONFIG": str(config), "LIFELINE_HEARTBEAT_INTERVAL": "0.5"}
    for i in (1, 2):
        mesh.start_service("router", instance=f"router-{i}", env=env)
    mesh.wait_ready()
    await set_all(mesh, "down")

    nc = await nats.connect(nats_server.url)
    try:
        bodies = [request(f"crash {i}") for i in range(TOTAL)]
        await park(nc, bodies)
        seen: list[str] = []
        at_300, at_all = asyncio.Event(), asyncio.Event()

        async def on_result(msg) -> None:
            seen.append(msg.subject)
            if len(seen) >= 300:
                at_300.set()
            if len(set(seen)) >= TOTAL:
                at_all.set()

        await nc.subscribe(f"{subjects.LLM_RESULT_PREFIX}.>", cb=on_result)
        await set_all(mesh, "ok")
        await asyncio.wait_for(at_300.wait(), 60)
        mesh.signal("router-1", signal.SIGKILL)  # mid-drain, messages in its hands
        killed_at = len(seen)
        await asyncio.wait_for(at_all.wait(), 90)

        stored = await results(nc)
        ids = Counter(r["request_id"] for r in stored)
        print(f"killed after {killed_at} answers; {len(stored)} stored, "
              f"{await vendor_answers(mesh)} vendor answers")
        assert len(stored) == TOTAL and set(ids) == {b["request_id"] for b in bodies}
        assert max(ids.values()) == 1 and len(seen) == TOTAL  # published once, stored once
        assert Counter(r["status"] for r in stored) == {"ok": TOTAL}
        # A request the dead router answered but never acked comes back after AckWait (2 s) to
        # the other router, which sees its stored result and only acks it.
        js = nc.jetstream()
        for _ in range(100):
            if (await js.stream_info(LLM_QUEUE.name)).state.messages == 0:
                break
            await asyncio.sleep(0.1)
        assert (await js.stream_info(LLM_QUEUE.name)).state.messages == 0
        again = await results(nc)
        assert len(again) == TOTAL and max(Counter(r["request_id"] for r in again).values()) == 1
        # A vendor answer the dead router got but never published is asked again: at most the
        # messages it held (its concurrency) cost a second vendor call.
        assert TOTAL <= await vendor_answers(mesh) <= TOTAL + 16
    finally:
        await nc.close()
