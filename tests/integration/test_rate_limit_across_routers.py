"""Per-user limits hold across router instances: the count is taken in SQL, under a row lock,
before the call; a limited caller is told which limit and when it resets."""

import asyncio
import time
from datetime import UTC, datetime

import nats

from tests.fixtures.cost_guard import ask, ask_body, priced_config, wait_for_ledger


async def test_100_requests_a_day_for_one_user_through_two_routers_lets_through_100(
        nc: nats.NATS, db_url: str, start_router, start_cost_guard):
    config = priced_config(rate_limits={"user": {"requests_per_day": 100}})
    await start_cost_guard(config, db_url)
    await start_router("router-1", config=config)
    await start_router("router-2", config=config)
    body = ask_body("alice")
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(150):
        queue.put_nowait(i)
    results = []

    async def caller() -> None:  # 50 callers, each asking again as soon as it is answered
        while not queue.empty():
            queue.get_nowait()
            results.append(await ask(nc, body))

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(50)))
    elapsed = time.perf_counter() - started

    answered = [r for r in results if r["status"] == "ok"]
    limited = [r for r in results if r["status"] == "error"]
    print(f"\n150 requests by 50 callers through 2 routers in {elapsed:.2f}s: "
          f"{len(answered)} answered (limit 100, overshoot {len(answered) - 100})")
    assert len(answered) == 100
    assert len(limited) == 50
    error = limited[0]["error"]
    assert error["kind"] == "limited"
    assert "user alice reached its limit of 100 requests per day" in error["message"]
    assert 0 < error["retry_after_s"] <= 86400
    # a different user is not limited by alice's count
    assert (await ask(nc, ask_body("bob")))["status"] == "ok"
    await wait_for_ledger(db_url, 151)


async def test_requests_per_minute_say_when_the_minute_resets(nc: nats.NATS, sqlite_url: str,
                                                              start_router, start_cost_guard):
    config = priced_config(rate_limits={"key": {"requests_per_minute": 3}})
    frozen = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)  # no minute boundary mid-test
    await start_cost_guard(config, sqlite_url, clock=lambda: frozen)
    await start_router(config=config)
    results = [await ask(nc, ask_body(key="k1")) for _ in range(4)]
    assert [r["status"] for r in results] == ["ok", "ok", "ok", "error"]
    error = results[3]["error"]
    assert "key k1 reached its limit of 3 requests per minute" in error["message"]
    assert error["retry_after_s"] == 34.0
    assert "resets at 2026-03-14T15:10:00+00:00" in error["message"]
