"""`lifeline drill provider-outage --json` on the mesh `lifeline up` runs, with the shipped
lifeline.yaml (only the fault is shortened): detection and failover measured, no client-visible
error, a pass against the default targets, and a timeline that shows the switch and the way back."""

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from matplotlib.image import imread

from services.cli.mesh import SERVICES, Mesh
from services.runtime.natsd import NatsServer
from tests.e2e.conftest import REPO
from tests.e2e.drills.drill_mesh import (
    cli_env,
    drill_config,
    last_drill_on_the_status_page,
    start_mesh,
)

LIFELINE = str(Path(sys.executable).parent / "lifeline")


def bins_of(series: dict, start: float, end: float) -> dict[str, float]:
    """Answers per provider in the bins that lie wholly inside [start, end)."""
    totals: dict[str, float] = {}
    for i, t in enumerate(series["t"]):
        if t >= start and t + series["bin_s"] <= end:
            for provider, rates in series["by_provider"].items():
                totals[provider] = totals.get(provider, 0.0) + rates[i]
    return {p: v for p, v in totals.items() if v}


async def test_provider_outage_on_the_default_mesh(nats_server: NatsServer, tmp_path: Path):
    config = drill_config(tmp_path / "lifeline.yaml", fast=False)  # the shipped file
    others = tuple(s for s in SERVICES if s != "router")
    mesh: Mesh = await asyncio.to_thread(start_mesh, nats_server.url, tmp_path / "home", config,
                                         routers=1, services=others, beat_s=None)
    try:
        report = tmp_path / "report"
        done = await asyncio.to_thread(subprocess.run, [
            LIFELINE, "drill", "provider-outage", "--json", "--warmup", "3", "--duration", "5",
            "--report", str(report)], env=cli_env(mesh), capture_output=True, text=True, timeout=110)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        result = json.loads(done.stdout)
        f = result["figures"]
        print(f"\nprovider-outage on the default mesh: {f}")
        assert result["passed"] is True
        assert result["targets"] == {"rto_s": 30.0, "rpo_s": 0.0, "errors": 0, "max": {}}
        assert f["detection_s"] is not None and f["detection_s"] < 5.0
        assert f["failover_s"] is not None and f["failover_s"] < 1.0
        assert f["errors"] == 0 and f["lost"] == 0
        assert f["rto_s"] <= 30
        # The shipped breaker ramps a returning provider up over 10 s.
        assert f["gradual"] is True and f["ramp_bins"] >= 3 and f["full_return_s"] is not None

        # The timeline: the primary, then the fallback while it is down, then the primary again.
        marks, series = result["marks"], result["details"]["series"]
        assert set(bins_of(series, 0.5, marks["fault"])) == {"openai"}
        assert set(bins_of(series, marks["fault"] + 1.0, marks["cleared"])) == {"anthropic"}
        ramp = bins_of(series, marks["cleared"] + 1.0, marks["recovered"])
        assert ramp.get("openai") and ramp.get("anthropic")  # both while the share ramps up
        assert set(bins_of(series, marks["recovered"], 1e9)) == {"openai"}
        png = imread(result["report"]["plot"])
        assert png.shape[0] >= 600 and png.shape[1] >= 1000
        if os.environ.get("LIFELINE_UPDATE_SCREENSHOT"):  # the picture in docs/services/drills.md
            shutil.copy(result["report"]["plot"], REPO / "docs" / "drill-provider-outage.png")
        markdown = Path(result["report"]["markdown"]).read_text()
        assert "PASSED" in markdown and "failover_s" in markdown and "timeline.png" in markdown

        block = await last_drill_on_the_status_page(mesh, "provider-outage", within=10)
        assert "passed" in block
    finally:
        await asyncio.to_thread(mesh.stop_all)
