"""A mesh for drills: every service as its own process, on a config fast enough for tests.

Not a test module: the drill tests import `drill_config` and `start_mesh` from here, and build
one mesh per module (scenarios share it where they leave it healthy behind them).
"""

import asyncio
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.cli.mesh import Mesh
from services.drills import DrillOptions, DrillResult, run_drill
from services.runtime.config import load_config
from services.runtime.natsd import free_port
from services.runtime.settings import Settings
from tests.e2e.conftest import REPO

BEAT_S = 0.5  # heartbeat interval of every process here (2 s shipped)
ADMIN_TOKEN = "drill-test-admin-token"  # the notifier's admin API (lifeline incident)

FAST: dict[str, Any] = {
    "breaker": {"wait_in_open_ms": 1000, "slow_start_ms": 2000},
    "health": {
        "probe": {"interval_s": 1.0, "confirm_interval_s": 0.2, "timeout_s": 3.0,
                  "traffic_covers_s": 1.0},
        "hysteresis": {"failures_to_down": 3, "successes_to_up": 3, "flap_window_s": 1.0,
                       "stable_s": 1.0},
        "degraded": {"window_s": 6.0},
        "canary": {"interval_s": 0.5, "window": 6},
    },
    "tiers": {"tier_window_s": 1,
              "queue": {"start_rate": 50, "max_rate": 200, "ramp_every_s": 1, "retry_delay_s": 0.2,
                        "retry_delay_max_s": 0.5}},
    # Any budget makes routers ask the cost guard, so run-time budgets (load-spike) are enforced.
    "budgets": {"spend": [{"scope": "global", "period": "month", "limit_usd": 1000}], "tick_s": 0.2},
    "drills": {"duration_s": 3, "warmup_s": 2, "recovery_timeout_s": 20, "traffic": {"rate": 20}},
}


def drill_config(path: Path, *, fast: bool = True) -> Path:
    """The shipped lifeline.yaml; with `fast`, the test timings above laid over it."""
    data = yaml.safe_load((REPO / "lifeline.yaml").read_text())
    data["tiers"]["faq_file"] = str(REPO / "faq.yaml")
    if fast:
        data["routes"]["chat"].update(attempt_timeout_ms=1000, deadline_ms=8000)
        for section, fields in FAST.items():
            data[section] = _merge(data.get(section) or {}, fields)
    path.write_text(yaml.safe_dump(data))
    return path


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out.get(k) or {}, v) if isinstance(v, dict) and k != "spend" else v
    return out


def start_mesh(nats_url: str, home: Path, config: Path, *, routers: int = 2,
               services: tuple[str, ...] = ("health-monitor", "cost-guard", "conversation-store",
                                            "notifier"),
               env: dict[str, str] | None = None, db_url: str | None = None,
               beat_s: float | None = BEAT_S) -> Mesh:
    """Simulator, routers and `services` as processes; `beat_s` None keeps the shipped heartbeat."""
    beat = {"LIFELINE_HEARTBEAT_INTERVAL": str(beat_s)} if beat_s else {}
    mesh = Mesh(nats_url=nats_url, home=home, simulator_port=free_port(), gateway_port=free_port(),
                status_port=free_port(), db_url=db_url,
                env={"LIFELINE_LOG_LEVEL": "WARNING", "LIFELINE_CONFIG": str(config), **beat,
                     **(env or {})})
    try:
        mesh.start_simulator()
        for i in range(routers):
            mesh.start_service("router", instance=f"router-{i + 1}")
        for name in services:
            mesh.start_service(name)
        mesh.wait_ready(timeout=60)
    except BaseException:
        mesh.stop_all()
        raise
    return mesh


def cli_env(mesh: Mesh) -> dict[str, str]:
    """What `lifeline` needs to talk to this mesh (as an operator's shell would have it)."""
    env = mesh._env({})
    env.pop("LIFELINE_HEALTH_PORT", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return env


@dataclass
class DrillMesh:
    mesh: Mesh
    config: Path
    reports: Path

    async def drill(self, name: str, **options: object) -> DrillResult:
        settings = Settings(nats_url=self.mesh.nats_url, simulator_url=self.mesh.simulator_url,
                            config=self.config, home=self.mesh.home, heartbeat_interval=BEAT_S)
        result = await run_drill(name, settings=settings, config=load_config(self.config),
                                 options=DrillOptions(report_dir=self.reports / name, **options),  # type: ignore[arg-type]
                                 destructive_ok=True)
        figures = {k: v for k, v in result.figures.items()}
        failed = [v for v in result.verdicts if not v.ok]
        print(f"\n{name}: {'PASSED' if result.passed else 'FAILED'} {figures} {failed} "
              f"{result.timeline.notes}")
        return result


def assert_passed(result: DrillResult) -> None:
    assert result.passed, [v for v in result.verdicts if not v.ok]
    assert Path(result.files["plot"]).stat().st_size > 10_000
    assert "PASSED" in Path(result.files["markdown"]).read_text()


async def last_drill_on_the_status_page(mesh: Mesh, scenario: str, within: float = 5.0) -> str:
    url = f"http://127.0.0.1:{mesh.status_port}/"
    html = ""
    for _ in range(int(within / 0.25)):
        html = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=3).read().decode())
        block = html.split('id="last-drill"', 1)[-1].split("</div>", 1)[0]
        if scenario in block:
            return block
        await asyncio.sleep(0.25)
    raise AssertionError(f"the status page never showed the {scenario} drill: {html[-2000:]}")
