"""Under load, with every part a separate process: a vendor dies, a router is stopped; nobody notices."""

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import nats
import pytest

from schemas import subjects
from services.cli.mesh import Mesh
from services.runtime.natsd import NatsServer, free_port
from tests.e2e.conftest import write_config

TOTAL, CONCURRENCY = 400, 50


async def drive(nc: nats.NATS, *, total: int, concurrency: int,
                on_answered: dict[int, asyncio.Event]) -> list[dict]:
    """`total` requests, `concurrency` at a time; on_answered[n] is set when n have answered."""
    slots = asyncio.Semaphore(concurrency)
    results: list[dict] = []

    async def one() -> None:
        body = json.dumps({"messages": [{"role": "user", "content": "Where is my order?"}],
                           "request_id": uuid.uuid4().hex}).encode()
        async with slots:
            started = time.monotonic()
            try:
                reply = await nc.request(subjects.LLM_COMPLETE, body, timeout=15)
                result = json.loads(reply.data)
            except Exception as e:  # the caller saw an error: that is what this test forbids
                result = {"status": "caller-error", "error": repr(e)}
            result["seconds"] = time.monotonic() - started
            results.append(result)
            if event := on_answered.get(len(results)):
                event.set()

    await asyncio.gather(*(one() for _ in range(total)))
    return results


def start_vendor_process(port: int, log: Path) -> subprocess.Popen[bytes]:
    """A vendor of our own, in its own process, so it can die like a real one."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.simulator", "--port", str(port), "--vendor", "openai=openai"],
            stdout=subprocess.PIPE, stderr=out)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    assert line.startswith("simulator listening on"), f"vendor did not start: {line!r}"
    return proc


async def test_killing_the_primary_vendor_mid_load_costs_no_request(
        mesh: Mesh, nats_server: NatsServer, tmp_path: Path):
    vendor_port = free_port()
    config = write_config(tmp_path / "lifeline.yaml", openai={
        "base_url": f"http://127.0.0.1:{vendor_port}/openai/v1", "api_key_env": "E2E_OPENAI_KEY"})
    vendor = start_vendor_process(vendor_port, tmp_path / "vendor.log")
    try:
        mesh.start_simulator()  # anthropic and local: the fallbacks
        env = {"LIFELINE_CONFIG": str(config), "E2E_OPENAI_KEY": "sk-e2e"}
        for i in (1, 2):
            mesh.start_service("router", instance=f"router-{i}", env=env)
        mesh.wait_ready()

        nc = await nats.connect(nats_server.url)
        at_100 = asyncio.Event()
        load = asyncio.create_task(drive(nc, total=TOTAL, concurrency=CONCURRENCY,
                                         on_answered={100: at_100}))
        await at_100.wait()
        vendor.send_signal(signal.SIGKILL)  # mid-load: ~CONCURRENCY requests are in flight
        vendor.wait()
        results = await load
        await nc.close()
    finally:
        if vendor.poll() is None:
            vendor.kill()
            vendor.wait()

    print(f"answered {len(results)}: {dict(Counter((r.get('provider'), r['status']) for r in results))}; "
          f"slowest {max(r['seconds'] for r in results):.3f}s")
    assert len(results) == TOTAL
    assert Counter(r["status"] for r in results) == {"ok": TOTAL}, [
        r for r in results if r["status"] != "ok"][:3]
    by_provider = Counter((r["provider"], r["tier"], r["fallback_depth"]) for r in results)
    assert set(by_provider) == {("openai", "full", 0), ("anthropic", "degraded", 1)}
    assert by_provider[("openai", "full", 0)] >= 100
    assert by_provider[("anthropic", "degraded", 1)] >= TOTAL - 100 - CONCURRENCY
    # Failover after a dead vendor costs one refused connection, not an attempt timeout.
    assert max(r["seconds"] for r in results) < 5


@pytest.mark.parametrize("sig", [signal.SIGTERM])
async def test_a_router_stopped_mid_load_finishes_its_work_and_the_other_takes_the_rest(
        mesh: Mesh, nats_server: NatsServer, tmp_path: Path, sig):
    config = write_config(tmp_path / "lifeline.yaml", attempt_timeout_ms=5000)
    mesh.start_simulator()
    for i in (1, 2):
        mesh.start_service("router", instance=f"router-{i}", env={"LIFELINE_CONFIG": str(config)})
    mesh.wait_ready()
    # Slow answers keep many requests inside each router when the signal lands.
    async with aiohttp.ClientSession() as http:
        await http.put(f"{mesh.simulator_url}/_sim/vendors/openai",
                       json={"mode": "slow", "latency_ms": 300})

    nc = await nats.connect(nats_server.url)
    at_50 = asyncio.Event()
    load = asyncio.create_task(drive(nc, total=300, concurrency=40, on_answered={50: at_50}))
    await at_50.wait()
    mesh.signal("router-1", sig)
    results = await load
    await nc.close()

    assert Counter(r["status"] for r in results) == {"ok": 300}, [
        r for r in results if r["status"] != "ok"][:3]
    assert mesh.stop("router-1") == 0
