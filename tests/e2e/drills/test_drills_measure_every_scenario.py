"""Every scenario against one mesh of separate processes (test timings: 2 s warm-up, 3 s fault,
20 requests/s), each asserting its figures. Scenarios leave the mesh healthy behind them; the
one that kills a router goes last."""

import asyncio
import subprocess
import sys

import pytest

from services.cli.mesh import Mesh
from tests.e2e.drills.drill_mesh import (
    BEAT_S,
    DrillMesh,
    assert_passed,
    cli_env,
    last_drill_on_the_status_page,
)


async def test_provider_outage_through_the_router_fault_switch(drills: DrillMesh):
    result = await drills.drill("provider-outage", via="router")
    f = result.figures
    assert result.timeline.notes[0] == "openai: fault switch"
    assert f["detection_s"] is None  # nothing broke at the vendor: no monitor can see it
    assert f["errors"] == 0 and f["lost"] == 0
    assert f["failover_s"] is not None and f["failover_s"] < 1.0
    assert f["rto_s"] is not None and f["rto_s"] < 1.0
    assert f["gradual"] is True and f["full_return_s"] is not None
    assert_passed(result)
    block = await last_drill_on_the_status_page(drills.mesh, "provider-outage")
    assert "passed" in block and "failover_s" in block


async def test_rate_limit_storm_respects_retry_after(drills: DrillMesh):
    result = await drills.drill("rate-limit-storm")
    f = result.figures
    assert f["errors"] == 0
    assert f["primary_calls_during"] <= f["primary_calls_bound"] < 20
    assert f["fallback_share_during"] >= 0.8
    assert_passed(result)


async def test_latency_spike_fails_over_within_the_attempt_timeout(drills: DrillMesh):
    result = await drills.drill("latency-spike")
    f = result.figures
    assert f["errors"] == 0
    assert f["detection_s"] is not None and f["detection_s"] < 4.0
    assert f["max_during_ms"] < 3000  # the primary's 10 s never reach a caller (attempt timeout 1 s)
    assert f["rto_s"] is not None and f["rto_s"] < 4.0
    assert_passed(result)


async def test_quality_drop_is_caught_by_the_canary_and_taken_out_of_rotation(drills: DrillMesh):
    result = await drills.drill("quality-drop")
    f = result.figures
    assert f["detection_s"] is not None and f["detection_s"] < 3.0
    assert f["responded_s"] is not None and f["wrong_after_response"] == 0
    assert f["errors"] == 0
    assert_passed(result)


async def test_region_outage_moves_traffic_but_never_pinned_requests(drills: DrillMesh):
    result = await drills.drill("region-outage")
    f = result.figures
    assert f["region"] == "us" and f["errors"] == 0
    assert f["pinned_crossed"] == 0
    assert f["pinned_during"] > 0 and f["pinned_degraded"] == f["pinned_during"]
    assert f["other_region_share"] == 1.0
    assert_passed(result)


async def test_all_providers_down_parks_and_drains_without_loss(drills: DrillMesh):
    result = await drills.drill("all-providers-down")
    f = result.figures
    assert f["parked"] > 0 and f["lost"] == 0
    assert f["results_ok"] == f["parked"], result.details.get("results_by_status")
    assert f["errors"] == 0 and f["lower_tier_answers"] > 0
    assert f["drain_s"] is not None and f["drain_s"] < 15
    assert_passed(result)


async def test_killswitch_turns_everything_to_maintenance_within_a_second(drills: DrillMesh):
    result = await drills.drill("killswitch")
    f = result.figures
    assert f["engage_s"] is not None and f["engage_s"] < 1.0
    assert f["provider_answers_after_engage"] == 0 and f["maintenance_answers"] > 0
    assert f["announced_s"] is not None
    assert_passed(result)


async def test_load_spike_holds_the_budget(drills: DrillMesh):
    result = await drills.drill("load-spike", rate=5)
    f = result.figures
    assert f["refused_budget"] > 0
    assert f["spent_usd"] is not None and f["spent_usd"] <= f["cap_usd"]
    assert f["overshoot_usd"] == 0 and f["errors"] == 0
    assert_passed(result)


def backup_commands_exist(mesh: Mesh) -> bool:
    done = subprocess.run([sys.executable, "-m", "services.cli", "backup", "now", "--help"],
                          env=cli_env(mesh), capture_output=True, text=True, timeout=60, check=False)
    restore = subprocess.run([sys.executable, "-m", "services.cli", "restore", "--help"],
                             env=cli_env(mesh), capture_output=True, text=True, timeout=60, check=False)
    return done.returncode == 0 and restore.returncode == 0 and "--to" in restore.stdout


async def test_data_loss_is_restored_from_the_snapshot_with_replay(drills: DrillMesh):
    if not await asyncio.to_thread(backup_commands_exist, drills.mesh):
        pytest.skip("`lifeline backup now` and `lifeline restore SNAPSHOT --to` are not there yet "
                    "(the backup agent is being built in parallel)")
    result = await drills.drill("data-loss")
    f = result.figures
    assert f["rows_before"] > 0 and f["rows_missing"] == 0 and f["rows_changed"] == 0
    assert f["rto_s"] is not None and f["rto_s"] <= 300
    assert f["rpo_s"] is not None and f["rpo_s"] <= 60
    assert_passed(result)


async def test_service_crash_loses_at_most_the_killed_routers_replies(drills: DrillMesh):
    result = await drills.drill("service-crash", service="router")
    f = result.figures
    assert f["instance"] == "router-2"
    assert f["detection_s"] is not None and f["detection_s"] < 3 * BEAT_S + 2.5
    assert f["errors"] <= 5 and f["rto_s"] is not None and f["rto_s"] < 2.0
    assert_passed(result)
    # The supervisor's part, so that the mesh is whole again for the tests after this one.
    drills.mesh.children.pop("router-2").proc.wait()
    drills.mesh.start_service("router", instance="router-2")
    await asyncio.to_thread(drills.mesh.wait_ready, ["router-2"])
