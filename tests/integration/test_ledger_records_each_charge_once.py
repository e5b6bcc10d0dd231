"""The ledger: every llm.completed and billed llm.attempt recorded once, whatever the order,
duplicates and bad messages; a charge is counted once in spend."""

import asyncio
import time

import nats
from sqlalchemy import select

from schemas import subjects
from schemas.events import LlmAttempt, LlmCompleted
from schemas.completion import Usage
from services.cost_guard import tables
from services.runtime.db import make_engine
from tests.fixtures.cost_guard import ledger_summary, priced_config


def completed(rid: str, cost: float, **fields: object) -> bytes:
    return LlmCompleted(request_id=rid, route="chat", status="ok", tier="full", provider="openai",
                        model="gpt-4o-mini", fallback_depth=0, usage=Usage(input_tokens=8, output_tokens=23),
                        cost_usd=cost, latency_ms=5, **fields).model_dump_json().encode()


def attempt(rid: str, n: int, cost: float, **fields: object) -> bytes:
    return LlmAttempt(request_id=rid, route="chat", attempt_no=n, provider="anthropic",
                      model="claude-haiku-4-5", outcome="ok", latency_ms=5, cost_usd=cost,
                      **fields).model_dump_json().encode()


async def publish(js, subject: str, body: bytes, msg_id: str) -> None:
    await js.publish(subject, body, headers={"Nats-Msg-Id": msg_id})


async def until(predicate, within: float = 10.0):
    deadline = time.monotonic() + within
    while True:
        value = await predicate()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def counters(db_url: str) -> dict[tuple[str, str], float]:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            c = tables.counters.c
            rows = await conn.execute(select(c.scope, c.scope_id, c.spent_usd).where(c.period == "day"))
            return {(r.scope, r.scope_id): round(r.spent_usd, 9) for r in rows}
    finally:
        await engine.dispose()


async def test_each_charge_counts_once_in_any_order_and_bad_messages_are_dead_lettered(
        nc: nats.NATS, db_url: str, start_cost_guard):
    await start_cost_guard(priced_config(), db_url)
    js = nc.jetstream()
    dead = []

    async def on_dead(msg) -> None:
        dead.append(msg)

    await nc.subscribe(subjects.deadletter(">"), cb=on_dead)
    who = {"user_id": "alice", "key_id": "k1", "team_id": "t1"}
    # r1: plain, delivered twice under different message ids (a redelivery the stream cannot dedupe)
    await publish(js, subjects.LLM_COMPLETED, completed("r1", 0.010, **who), "a")
    await publish(js, subjects.LLM_COMPLETED, completed("r1", 0.010, **who), "b")
    # r2: a billed hedged loser first, then the completion whose cost includes it
    await publish(js, subjects.LLM_ATTEMPT, attempt("r2", 1, 0.003, **who), "r2.1")
    await publish(js, subjects.LLM_COMPLETED, completed("r2", 0.013, **who), "r2")
    # r3: the completion first, its billed attempt after (already included: adds nothing)
    await publish(js, subjects.LLM_COMPLETED, completed("r3", 0.020, **who), "r3")
    await asyncio.sleep(0.3)
    await publish(js, subjects.LLM_ATTEMPT, attempt("r3", 1, 0.005, **who), "r3.1")
    # r4: a billed attempt whose request never completed (the router died): still spend
    await publish(js, subjects.LLM_ATTEMPT, attempt("r4", 0, 0.004), "r4.0")
    # an attempt nobody billed is no charge; garbage goes to the dead letters
    await publish(js, subjects.LLM_ATTEMPT, attempt("r1", 0, 0.0), "r1.0")
    await publish(js, subjects.LLM_COMPLETED, b'{"request_id": "r5", "cost_usd": "lots"}', "r5")
    await publish(js, subjects.LLM_COMPLETED, completed("r6", 0.001, **who), "r6")

    async def settled():
        s = await ledger_summary(db_url)
        return s if s["requests"] == 5 and s["rows"] == 8 else None

    summary = await until(settled)
    assert summary, await ledger_summary(db_url)
    # r1 .010 + r2 .013 + r3 .020 + r4 .004 (attempt alone) + r6 .001
    assert round(summary["spent_usd"], 9) == 0.048
    spent = await counters(db_url)
    assert spent[("global", "*")] == 0.048
    # r4's attempt carried nobody: only the global scope paid for it
    assert spent[("user", "alice")] == spent[("key", "k1")] == spent[("team", "t1")] == 0.044
    await until(lambda: asyncio.sleep(0, result=bool(dead)))  # type: ignore[arg-type]
    assert [m.subject for m in dead] == ["deadletter.llm.completed"]
    assert "cost_usd" in dead[0].headers[subjects.DEADLETTER_REASON_HEADER]


async def test_attempts_that_did_not_carry_who_pays_are_charged_to_the_payer_on_completion(
        nc: nats.NATS, db_url: str, start_cost_guard):
    await start_cost_guard(priced_config(), db_url)
    js = nc.jetstream()
    await publish(js, subjects.LLM_ATTEMPT, attempt("r1", 0, 0.003), "r1.0")
    await asyncio.sleep(0.3)
    await publish(js, subjects.LLM_COMPLETED, completed("r1", 0.013, user_id="bob"), "r1")
    async def both():
        spent = await counters(db_url)
        return spent if spent.get(("user", "bob")) == 0.013 else None

    spent = await until(both)
    assert spent == {("global", "*"): 0.013, ("user", "bob"): 0.013}


async def test_a_burst_is_recorded_in_batches(nc: nats.NATS, pg_url: str, start_cost_guard):
    await start_cost_guard(priced_config(), pg_url)
    js = nc.jetstream()
    n = 2000
    started = time.perf_counter()
    acks = [await js.publish_async(subjects.LLM_COMPLETED, completed(f"b{i}", 0.001, user_id=f"u{i % 50}"),
                                   headers={"Nats-Msg-Id": f"b{i}"}) for i in range(n)]
    await asyncio.gather(*acks)

    async def all_in():
        s = await ledger_summary(pg_url)
        return s if s["requests"] == n else None

    summary = await until(all_in, 30)
    elapsed = time.perf_counter() - started
    assert summary and round(summary["spent_usd"], 6) == 2.0
    print(f"\nledger: {n} llm.completed recorded in {elapsed:.2f}s ({n / elapsed:.0f}/s)")
