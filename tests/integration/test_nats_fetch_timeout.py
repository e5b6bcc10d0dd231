"""A pull fetch that times out raises nats.errors.TimeoutError, which FastStream's pull loops
catch (see services/runtime/natsfix.py, fix 2)."""

import asyncio

import nats
import nats.errors

from services.runtime import natsfix

ROUNDS = 200


async def bare_timeouts(nc: nats.NATS) -> int:
    """How many fetches on an empty consumer time out with a bare asyncio.TimeoutError."""
    js = nc.jetstream()
    await js.add_stream(name="FETCH_TIMEOUT", subjects=["fetch.timeout"])
    sub = await js.pull_subscribe("fetch.timeout", durable="d", stream="FETCH_TIMEOUT")
    bare = 0
    for _ in range(ROUNDS):
        try:
            # Shorter than the no-wait probe's round trip: the deadline passes in between.
            await sub.fetch(10, timeout=0.0002)
        except nats.errors.TimeoutError:
            pass
        except asyncio.TimeoutError:
            bare += 1
    return bare


async def test_fetch_times_out_as_a_nats_timeout(nc: nats.NATS):
    assert await bare_timeouts(nc) == 0


async def test_without_the_fix_fetch_times_out_bare(nc: nats.NATS):
    natsfix.revert()
    try:
        assert await bare_timeouts(nc) > 0
    finally:
        natsfix.apply()
