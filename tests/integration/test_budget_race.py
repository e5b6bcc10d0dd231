"""Budgets hold under concurrency: the cost is reserved before the call, so 200 requests at once
against a budget that covers 50 cannot overshoot it (today's gateways check after the fact)."""

import asyncio

import nats

from tests.fixtures.cost_guard import ask, ask_body, priced_config, wait_for_ledger

ONE = 0.01  # 8 input tokens x $100/M + 23 output tokens x $400/M (the simulator's answer)


async def test_200_concurrent_requests_against_a_budget_for_50_stay_within_it(
        nc: nats.NATS, db_url: str, start_router, start_cost_guard, status_events):
    limit = 50 * ONE + ONE / 2
    config = priced_config(spend=[{"scope": "global", "period": "day", "limit_usd": limit}])
    await start_cost_guard(config, db_url, instance="cost-guard-1")
    await start_cost_guard(config, db_url, instance="cost-guard-2")
    await start_router("router-1", config=config)
    await start_router("router-2", config=config)
    # max_tokens = the answer's length: the estimate is the real cost, so exactly 50 fit
    body = ask_body("alice", max_tokens=23)
    results = await asyncio.gather(*(ask(nc, body) for _ in range(200)))

    answered = [r for r in results if r["status"] == "ok"]
    refused = [r for r in results if r["status"] == "error"]
    assert {r["error"]["kind"] for r in refused} == {"budget_exhausted"}
    assert all(r["error"]["retry_after_s"] > 0 for r in refused)
    assert "day budget of everyone is spent" in refused[0]["error"]["message"]
    summary = await wait_for_ledger(db_url, 200)  # refused requests are recorded too, at $0
    spent = summary["spent_usd"]
    assert spent <= limit + ONE, (spent, limit)
    assert spent == sum(r["cost_usd"] for r in results)
    assert len(answered) == 50, len(answered)
    print(f"\nbudget ${limit:.3f}: {len(answered)} of 200 answered, ledger ${spent:.4f} "
          f"(overshoot ${max(0.0, spent - limit):.4f})")
    exceeded = await status_events.wait("budget.exceeded")
    await asyncio.sleep(0.5)  # a second announcement would have arrived by now
    assert len(status_events.of("budget.exceeded")) == 1
    assert (exceeded[0]["scope"], exceeded[0]["period"], exceeded[0]["limit_usd"]) == (
        "global", "day", limit)
