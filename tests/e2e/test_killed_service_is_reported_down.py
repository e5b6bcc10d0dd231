"""Every part a separate process: a router killed with SIGKILL yields service.down naming it, a
router stopped with SIGTERM yields nothing, a killed one that comes back yields service.up, and
`lifeline status --json` shows the health monitor's picture."""

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import nats
import yaml

from schemas import subjects
from services.cli.mesh import Mesh
from tests.e2e.conftest import REPO
from tests.conftest import StatusEvents
from tests.fixtures.health_monitor import FAST_HEALTH

LIFELINE = str(Path(sys.executable).parent / "lifeline")
BEAT_S = 0.5  # every process's heartbeat interval here (2 s shipped); misses: 3


def fast_config(path: Path) -> Path:
    data = yaml.safe_load((REPO / "lifeline.yaml").read_text())
    # Separate processes on a busy machine: probes get more time than in-process tests give them.
    data["health"] = {**FAST_HEALTH, "probe": {**FAST_HEALTH["probe"], "timeout_s": 3.0}}
    path.write_text(yaml.safe_dump(data))
    return path


async def monitor_knows(url: str, routers: set[str], within: float = 10.0) -> None:
    """Until the monitor has heard each of them beat: it cannot miss what it never heard."""
    nc = await nats.connect(url)
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            reply = json.loads((await nc.request(subjects.HEALTH_REPORT, b"{}", timeout=5)).data)
            if routers <= {s["instance"] for s in reply["services"] if s["alive"]}:
                return
            await asyncio.sleep(BEAT_S / 2)
        raise AssertionError(f"the monitor never heard all of {routers}: {reply['services']}")
    finally:
        await nc.close()


async def test_sigkill_is_service_down_sigterm_is_quiet_and_status_shows_health(
        mesh: Mesh, status_events: StatusEvents, tmp_path: Path):
    env = {"LIFELINE_CONFIG": str(fast_config(tmp_path / "lifeline.yaml")),
           "LIFELINE_HEARTBEAT_INTERVAL": str(BEAT_S)}
    mesh.env.update(env)
    mesh.start_simulator()
    for name in ("router-1", "router-2", "router-3"):
        mesh.start_service("router", instance=name)
    mesh.start_service("health-monitor")
    mesh.wait_ready()
    await status_events.wait_for(subjects.PROVIDER_UP, 20, provider="openai")
    await monitor_knows(mesh.nats_url, {"router-1", "router-2", "router-3"})

    mesh.stop("router-1")  # SIGTERM: a clean stop, its last heartbeat says so
    seen = len(status_events.events)
    mesh.signal("router-3", signal.SIGKILL)
    killed = time.monotonic()
    at, down = await status_events.wait_for(subjects.SERVICE_DOWN, 10, after=seen, instance="router-3")
    detected = at - killed
    print(f"\nSIGKILL of router-3: service.down after {detected:.2f} s (heartbeat {BEAT_S}s x 3 misses)")
    assert (down["service"], down["instance"]) == ("router", "router-3")
    assert "no heartbeat" in down["reason"] and down["last_seen"]
    assert detected < 3 * BEAT_S + 2.0
    # router-1 stopped before router-3 died: had its silence been an alarm, it would have come first.
    assert status_events.of(subjects.SERVICE_DOWN, instance="router-1") == []

    seen = len(status_events.events)
    mesh.children.pop("router-3").proc.wait()
    mesh.start_service("router", instance="router-3")
    _, up = await status_events.wait_for(subjects.SERVICE_UP, 20, after=seen, instance="router-3")
    assert up["reason"] == "heartbeats resumed"

    cli_env = {**mesh._env({}), **env}
    done = await asyncio.to_thread(subprocess.run, [LIFELINE, "status", "--json"], env=cli_env,
                                   capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    status = json.loads(done.stdout)
    openai = status["providers"]["openai"]
    assert openai["state"] == "up"
    assert openai["p95_ms"] is not None
    assert 0 < openai["uptime_today"] <= 1
    chat = status["routes"]["chat"]
    assert chat["state"] == "up" and 0 < chat["availability_today"] <= 1
    assert chat["chain"][0] == "openai/gpt-4o-mini"
    assert status["health"]["source"] == "health-monitor/health-monitor"
    table = await asyncio.to_thread(subprocess.run, [LIFELINE, "status"],
                                    env={**cli_env, "COLUMNS": "160"}, capture_output=True,
                                    text=True, timeout=60, check=False)
    assert table.returncode == 0, table.stdout + table.stderr
    print(table.stdout)
    assert "uptime today" in table.stdout and "availability today" in table.stdout
