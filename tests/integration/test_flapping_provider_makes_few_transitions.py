"""A provider that flaps every 2 seconds for a minute produces a handful of transitions, not
dozens. Scaled down by 4 to run in 15 s: the flap every 0.5 s, the flap window 30 s (120 s
shipped) and the time to be stable 15 s (60 s shipped). The monitor looks hard: a probe every
0.1 s (like steady traffic of 10 calls a second), so each half-period holds five calls - enough to
pass N failures or M answers every time, which without damping would mean a transition every
0.5 s (30 in the run)."""

import asyncio
import time

from schemas import subjects
from tests.conftest import StatusEvents
from tests.fixtures.health_monitor import StartMonitor, health_config
from tests.integration.conftest import set_mode

SCALE = 4
FLAP_S = 2.0 / SCALE
RUN_S = 60.0 / SCALE


async def test_flapping_every_2s_for_a_minute_gives_a_handful_of_transitions(
        sim, start_monitor: StartMonitor, status_events: StatusEvents):
    config = health_config(
        probe={"interval_s": 0.1, "confirm_interval_s": 0.1},
        hysteresis={"failures_to_down": 3, "successes_to_up": 3,
                    "flap_window_s": 120.0 / SCALE, "stable_s": 60.0 / SCALE})
    await start_monitor(config=config)
    await status_events.wait_for(subjects.PROVIDER_UP, 5, provider="openai")
    seen = len(status_events.events)
    started = time.monotonic()
    modes = 0
    while time.monotonic() - started < RUN_S:
        await set_mode(sim, "openai", "down" if modes % 2 == 0 else "ok")
        modes += 1
        await asyncio.sleep(FLAP_S)
    await set_mode(sim, "openai", "ok")
    changes = [(body["state"], body["reason"]) for _, subject, body in status_events.events[seen:]
               if subject.startswith("provider.") and body["provider"] == "openai"]
    print(f"\nflapping every {FLAP_S:g}s for {RUN_S:g}s ({modes} mode switches): "
          f"{len(changes)} transitions: {changes}")
    assert 1 <= len(changes) <= 5
    assert changes[-1] == ("degraded", "flapping")
