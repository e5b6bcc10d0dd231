"""A daily budget of a few cents, crossed by traffic: budget.exceeded once, then the scope's
requests are refused (block) or run on the route's cheaper chain (downgrade); the ledger total
is the sum of the answers' cost_usd."""

import asyncio

import nats
import pytest

from schemas.control import Downgrade
from schemas.streams import CONTROL
from tests.fixtures.cost_guard import ask, ask_body, priced_config, wait_for_ledger



async def test_block_refuses_the_users_requests_clearly_once_the_budget_is_spent(
        nc: nats.NATS, db_url: str, start_router, start_cost_guard, status_events):
    config = priced_config(spend=[{"scope": "user", "period": "day", "limit_usd": 0.05,
                                   "warn_pct": 50, "action": "block"}])
    await start_cost_guard(config, db_url)
    await start_router(config=config)
    results = [await ask(nc, ask_body("alice")) for _ in range(10)]
    statuses = [r["status"] for r in results]
    answered = statuses.count("ok")
    assert 3 <= answered <= 5 and statuses == ["ok"] * answered + ["error"] * (10 - answered)
    error = results[-1]["error"]
    assert error["kind"] == "budget_exhausted"
    assert "the day budget of user alice is spent" in error["message"]
    assert error["retry_after_s"] > 0
    assert (await ask(nc, ask_body("bob")))["status"] == "ok"  # bob's own budget is untouched

    summary = await wait_for_ledger(db_url, 11)
    assert summary["spent_usd"] == pytest.approx(sum(r["cost_usd"] for r in results) + 0.01)
    [exceeded] = await status_events.wait("budget.exceeded")
    assert (exceeded["scope"], exceeded["scope_id"], exceeded["action"]) == ("user", "alice", "block")
    [warning] = await status_events.wait("budget.warning")
    assert warning["threshold_pct"] == 50
    await asyncio.sleep(0.5)  # later refusals do not announce it again
    assert len(status_events.of("budget.exceeded")) == 1


async def test_downgrade_switches_the_route_to_its_cheaper_chain(
        nc: nats.NATS, db_url: str, start_router, start_cost_guard, status_events):
    config = priced_config(downgrade_chain=["anthropic/claude-haiku-4-5"],
                           spend=[{"scope": "global", "period": "day", "limit_usd": 0.05,
                                   "action": "downgrade"}])
    await start_cost_guard(config, db_url)
    await start_router(config=config)
    kv = await nc.jetstream().key_value(CONTROL.name)
    results = [await ask(nc, ask_body("alice")) for _ in range(8)]
    assert all(r["status"] == "ok" for r in results)  # downgrade never refuses
    [exceeded] = await status_events.wait("budget.exceeded")
    assert (exceeded["scope"], exceeded["action"]) == ("global", "downgrade")

    async def downgraded() -> Downgrade:
        for _ in range(50):
            try:
                return Downgrade.model_validate_json((await kv.get("downgrade.chat")).value)
            except nats.js.errors.KeyNotFoundError:
                await asyncio.sleep(0.1)
        raise AssertionError("downgrade.chat never written")

    flag = await downgraded()
    assert flag.active and flag.actor == "cost-guard" and "exceeded" in flag.reason
    assert (await kv.get("downgrade.chat")).revision == 1  # written once

    later = [await ask(nc, ask_body("alice")) for _ in range(3)]
    assert {(r["provider"], r["model"]) for r in later} == {("anthropic", "claude-haiku-4-5")}
    results += later
    summary = await wait_for_ledger(db_url, len(results))
    assert summary["spent_usd"] == pytest.approx(sum(r["cost_usd"] for r in results))
    await asyncio.sleep(0.5)
    assert len(status_events.of("budget.exceeded")) == 1


async def test_a_users_downgrade_moves_only_that_user_to_the_cheaper_chain(
        nc: nats.NATS, db_url: str, start_router, start_cost_guard, status_events):
    config = priced_config(downgrade_chain=["anthropic/claude-haiku-4-5"],
                           spend=[{"scope": "user", "period": "day", "limit_usd": 0.03,
                                   "action": "downgrade"}])
    await start_cost_guard(config, db_url)
    await start_router("router-1", config=config)
    await start_router("router-2", config=config)
    results = [await ask(nc, ask_body("alice")) for _ in range(8)]
    assert all(r["status"] == "ok" for r in results)  # downgrade never refuses
    models = [(r["provider"], r["model"], r["tier"]) for r in results]
    full = models.count(("openai", "gpt-4o-mini", "full"))
    assert 1 <= full <= 3  # about a cent each: the budget of 3 cents holds two or three
    assert models[full:] == [("anthropic", "claude-haiku-4-5", "degraded")] * (8 - full)
    bob = await ask(nc, ask_body("bob"))  # everyone else stays on the primary
    assert (bob["provider"], bob["tier"]) == ("openai", "full")

    [exceeded] = await status_events.wait("budget.exceeded")
    assert (exceeded["scope"], exceeded["scope_id"], exceeded["action"]) == ("user", "alice", "downgrade")
    kv = await nc.jetstream().key_value(CONTROL.name)
    with pytest.raises(nats.js.errors.NoKeysError):  # no downgrade.<route>: not the whole route
        await kv.keys()
    summary = await wait_for_ledger(db_url, 9)
    assert summary["spent_usd"] == pytest.approx(sum(r["cost_usd"] for r in results) + bob["cost_usd"])
