"""budget.restored: when a new period begins, or when a limit is raised above what is spent
(`lifeline budget set`); the controls the budget set are lifted, once."""

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

import nats
import yaml

from schemas.control import Downgrade
from schemas.streams import CONTROL
from services.cli import costs
from services.cost_guard.app import build_app as build_cost_guard
from services.cost_guard.settings import CostGuardSettings
from services.runtime.config.budgets import SpendBudget
from tests.fixtures.cost_guard import ask, ask_body, priced_config


async def test_raising_the_limit_restores_the_budget_and_lets_requests_through(
        nc: nats.NATS, nats_server, db_url: str, start_router, start_cost_guard, status_events):
    config = priced_config(spend=[{"scope": "user", "period": "day", "limit_usd": 0.03}])
    await start_cost_guard(config, db_url)
    await start_router(config=config)
    results = [await ask(nc, ask_body("alice")) for _ in range(4)]
    assert results[-1]["error"]["kind"] == "budget_exhausted"
    await status_events.wait("budget.exceeded")

    await costs._update_budgets(nats_server.url, lambda current: [
        *current, SpendBudget(scope="user", id="alice", period="day", limit_usd=1.0)])
    [restored] = await status_events.wait("budget.restored")
    assert (restored["scope_id"], restored["reason"], restored["limit_usd"]) == (
        "alice", "limit_raised", 1.0)
    assert (await ask(nc, ask_body("alice")))["status"] == "ok"
    await asyncio.sleep(0.6)  # several ticks later: still announced once
    assert len(status_events.of("budget.restored")) == 1


async def test_a_new_day_restores_the_budget_and_lifts_the_downgrade(
        nc: nats.NATS, sqlite_url: str, start_router, start_cost_guard, status_events):
    ahead = timedelta()

    def clock() -> datetime:  # the cost guard's clock; the test moves it to tomorrow
        return datetime.now(UTC) + ahead

    config = priced_config(downgrade_chain=["anthropic/claude-haiku-4-5"], spend=[
        {"scope": "global", "period": "day", "limit_usd": 0.02, "action": "downgrade"}])
    await start_cost_guard(config, sqlite_url, clock=clock)
    await start_router(config=config)
    for _ in range(3):
        await ask(nc, ask_body("alice"))
    await status_events.wait("budget.exceeded")
    kv = await nc.jetstream().key_value(CONTROL.name)

    async def downgrade_active() -> bool | None:
        try:
            return Downgrade.model_validate_json((await kv.get("downgrade.chat")).value).active
        except nats.js.errors.KeyNotFoundError:
            return None

    for _ in range(50):
        if await downgrade_active():
            break
        await asyncio.sleep(0.1)
    assert await downgrade_active()

    ahead = timedelta(days=1)
    [restored] = await status_events.wait("budget.restored")
    assert (restored["scope"], restored["reason"]) == ("global", "new_period")
    for _ in range(50):
        if await downgrade_active() is False:
            break
        await asyncio.sleep(0.1)
    flag = Downgrade.model_validate_json((await kv.get("downgrade.chat")).value)
    assert not flag.active and flag.actor == "cost-guard" and "restored" in flag.reason


async def test_a_limit_raised_in_lifeline_yaml_is_taken_up_and_restores_the_budget(
        nc: nats.NATS, sqlite_url: str, tmp_path, nats_server, start_router, status_events):
    config = priced_config(spend=[{"scope": "global", "period": "day", "limit_usd": 0.02}])
    path = tmp_path / "lifeline.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    guard = build_cost_guard(CostGuardSettings(nats_url=nats_server.url, db_url=sqlite_url,
                                               config=path, instance="cost-guard-file"))
    await guard.start()
    try:
        await start_router(config=config)
        for _ in range(3):
            await ask(nc, ask_body("alice"))
        await status_events.wait("budget.exceeded")
        raised = config.model_dump(mode="json", exclude_none=True)
        raised["budgets"]["spend"][0]["limit_usd"] = 5.0
        path.write_text(yaml.safe_dump(raised))
        os.utime(path, (time.time() + 1, time.time() + 1))  # a new mtime even within one tick
        [restored] = await status_events.wait("budget.restored")
        assert (restored["reason"], restored["limit_usd"]) == ("limit_raised", 5.0)
    finally:
        await guard.stop()
