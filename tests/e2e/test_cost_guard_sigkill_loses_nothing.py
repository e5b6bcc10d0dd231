"""The cost guard SIGKILLed under traffic and started again: every answered request is in the
ledger once, and the spend is the sum of the answers' cost_usd (separate processes, as deployed)."""

import asyncio
import json
import signal
from pathlib import Path

import nats
import pytest
import yaml

from schemas import subjects
from services.cli.mesh import Mesh
from tests.e2e.conftest import write_config
from tests.fixtures.cost_guard import ask_body, spend_counted, wait_for_ledger


def config_with_budget(path: Path) -> Path:
    write_config(path)
    data = yaml.safe_load(path.read_text())
    # A budget that is never reached: every request takes the reservation path.
    data["budgets"] = {"spend": [{"scope": "user", "period": "day", "limit_usd": 1000}],
                       "admission": {"timeout_ms": 2000}}
    path.write_text(yaml.safe_dump(data))
    return path


async def test_sigkill_and_restart_lose_and_double_count_nothing(mesh: Mesh, pg_url: str,
                                                                 tmp_path: Path):
    mesh.db_url = pg_url
    mesh.env["LIFELINE_CONFIG"] = str(config_with_budget(tmp_path / "lifeline.yaml"))
    mesh.start_simulator()
    mesh.start_service("cost-guard")
    mesh.start_service("router")
    mesh.wait_ready(["cost-guard", "router"])
    nc = await nats.connect(mesh.nats_url)
    answers: list[dict] = []
    stop = asyncio.Event()

    async def caller(n: int) -> None:
        while not stop.is_set():
            msg = await nc.request(subjects.LLM_COMPLETE, ask_body(f"user-{n}"), timeout=15)
            answers.append(json.loads(msg.data))

    callers = [asyncio.create_task(caller(n)) for n in range(8)]
    try:
        await asyncio.sleep(2.0)
        mesh.signal("cost-guard", signal.SIGKILL)
        killed_at = len(answers)
        await asyncio.sleep(1.5)  # routers go on without it (fail open), events wait in the stream
        mesh.start_service("cost-guard")
        await asyncio.to_thread(mesh.wait_ready, ["cost-guard"])
        await asyncio.sleep(1.5)
    finally:
        stop.set()
        await asyncio.gather(*callers)
        await nc.close()

    assert all(a["status"] == "ok" for a in answers)
    assert len(answers) > killed_at > 0
    # what the killed instance had fetched comes back after the consumers' AckWait (10 s)
    summary = await wait_for_ledger(pg_url, len(answers), within=40)
    total = sum(a["cost_usd"] for a in answers)
    assert summary["spent_usd"] == pytest.approx(total, rel=1e-9)
    # the budgets' counters too: each charge added once, none twice after the redelivery
    assert await spend_counted(pg_url, "global", "*") == pytest.approx(total, rel=1e-9)
    mesh.stop_all()  # before the database is dropped
    print(f"\n{len(answers)} answered ({killed_at} before the SIGKILL): {summary['requests']} "
          f"ledger rows, ${summary['spent_usd']:.6f} = the answers' sum")
