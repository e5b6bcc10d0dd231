"""When the vendors return, the backlog drains at the configured pace (measured at the
simulator), ramping up from start_rate, and interactive work finishes before batch work that was
queued earlier."""

import asyncio
import math
import time

import nats
import pytest

from services.simulator.keys import VENDORS as SIM_VENDORS
from tests.fixtures.degradation import all_vendors, answered, degraded_config, park, request, results
from tests.integration.conftest import StartRouter

pytestmark = pytest.mark.timeout(120)
JITTER = 0.1  # seconds between the router's pacing of a call and the simulator's count of it


def answers_at_simulator(sim) -> int:
    return sum(v.counters.by_status.get("200", 0) for v in sim.app[SIM_VENDORS].values())


async def sample(sim, total: int, *, within: float) -> list[tuple[float, int]]:
    """(seconds, vendor answers so far), every 10 ms, from the first answer until `total`."""
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + within
    start = answers_at_simulator(sim)
    while (n := answers_at_simulator(sim) - start) < total:
        assert time.monotonic() < deadline, f"{n} of {total} answered within {within}s"
        samples.append((time.monotonic(), n))
        await asyncio.sleep(0.01)
    samples.append((time.monotonic(), total))
    return samples


def most_in_any_window(samples: list[tuple[float, int]], since: float, until: float,
                       window: float) -> int:
    """The most answers the vendors gave in any `window` seconds between since and until."""
    inside = [(t, n) for t, n in samples if since <= t <= until]
    return max((n2 - n1 for i, (t1, n1) in enumerate(inside) for t2, n2 in inside[i:]
                if t2 - t1 <= window), default=0)


async def test_the_drain_starts_at_start_rate_and_ramps(nc: nats.NATS, sim, start_router: StartRouter):
    start_rate, ramp_every = 10.0, 3.0
    config = degraded_config(start_rate=start_rate, ramp_every_s=ramp_every, max_rate=400.0)
    await start_router(config=config)
    await all_vendors(sim, "down")
    total = 150
    await park(nc, [request(f"paced {i}") for i in range(total)])
    await asyncio.sleep(0.5)  # the outage: every fetched message is held, the rest wait

    await all_vendors(sim, "ok")
    samples = await sample(sim, total, within=60)
    first = next(t for t, n in samples if n > 0)
    # In its first second the pace is start_rate, ramping continuously (doubling every
    # ramp_every seconds): at most the integral of that, plus the bucket's one-token burst.
    allowed = start_rate * ramp_every / math.log(2) * (2 ** (1 / ramp_every) - 1) + 1
    first_second = most_in_any_window(samples, first, first + 1.0, 1.0)
    took = samples[-1][0] - first
    print(f"first second: {first_second} answers (allowed {allowed:.1f}); {total} in {took:.1f}s")
    assert first_second <= allowed
    # And never faster than the ramp allows, at any moment of the drain. The router paces when a
    # call leaves and the simulator counts when it lands; one process runs both and this test,
    # so a call may land up to JITTER later than it was paced: a second of landings holds what
    # was paced in that second and the JITTER before it.
    for t, _ in samples:
        if t + 1.0 <= samples[-1][0]:
            ramped = _integral(start_rate, ramp_every, 400.0, t - first - JITTER,
                               t - first + 1.0) + 1
            assert most_in_any_window(samples, t, t + 1.0, 1.0) <= ramped
    assert first_second >= start_rate / 2  # it does drain at the start, not only later
    # It ramps: at start_rate alone the backlog would take total / start_rate seconds.
    assert took < 0.6 * total / start_rate


def _integral(start: float, ramp_every: float, cap: float, a: float, b: float) -> float:
    """Requests the pace allows between a and b seconds into the ramp (numerically, 1 ms steps)."""
    steps = max(1, int((b - a) * 1000))
    dt = (b - a) / steps
    return sum(min(start * 2 ** (max(0.0, a + (i + 0.5) * dt) / ramp_every), cap) * dt
               for i in range(steps))


async def test_interactive_work_finishes_before_batch_work_queued_earlier(
        nc: nats.NATS, sim, start_router: StartRouter):
    await start_router(config=degraded_config(start_rate=100.0, ramp_every_s=0.5))
    await all_vendors(sim, "down")
    batch = [request(f"batch {i}", priority="batch") for i in range(150)]
    interactive = [request(f"interactive {i}") for i in range(150)]
    await park(nc, batch, priority="batch")
    await asyncio.sleep(0.3)  # batch is older, and some of it is already in a router's hands
    await park(nc, interactive)

    done = await answered(nc, 300)
    await all_vendors(sim, "ok")
    await asyncio.wait_for(done.wait(), 60)
    order = sorted(await results(nc), key=lambda r: r["_seq"])
    assert len(order) == 300
    kinds = ["interactive" if r["request_id"] in {b["request_id"] for b in interactive} else "batch"
             for r in order]
    assert kinds == ["interactive"] * 150 + ["batch"] * 150
