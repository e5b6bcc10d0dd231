"""No cost guard answering: requests go ahead (`on_unreachable: open`, the default: a cost-guard
outage must not become an outage) or are refused plainly (`closed`); once it answers again,
budgets are enforced again."""

import asyncio
import time

import nats

from tests.fixtures.cost_guard import ask, ask_body, priced_config


async def test_open_lets_requests_through_without_waiting_and_enforces_again_on_return(
        nc: nats.NATS, sqlite_url: str, start_router, start_cost_guard):
    config = priced_config(spend=[{"scope": "user", "period": "day", "limit_usd": 0.015}])
    await start_router(config=config)
    started = time.monotonic()
    results = [await ask(nc, ask_body("alice")) for _ in range(5)]
    assert [r["status"] for r in results] == ["ok"] * 5  # unchecked, but answered
    assert time.monotonic() - started < 5

    await start_cost_guard(config, sqlite_url)
    await asyncio.sleep(1.1)  # the router asks again at most a second after the last probe
    later = [await ask(nc, ask_body("alice")) for _ in range(3)]
    # the 5 unchecked answers are in the ledger now, so alice's budget is spent
    assert later[-1]["status"] == "error" and later[-1]["error"]["kind"] == "budget_exhausted"


async def test_closed_refuses_what_it_cannot_check(nc: nats.NATS, start_router):
    config = priced_config(spend=[{"scope": "user", "period": "day", "limit_usd": 1}],
                           admission={"on_unreachable": "closed", "timeout_ms": 500})
    await start_router(config=config)
    result = await ask(nc, ask_body("alice"))
    assert result["status"] == "error" and result["error"]["kind"] == "budget_exhausted"
    assert "cost guard unreachable" in result["error"]["message"]
    assert result["error"]["retry_after_s"] > 0
