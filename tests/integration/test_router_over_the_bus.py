"""The router on a real nats-server, calling the simulated vendors over real HTTP."""

import asyncio
import json
import time
import uuid
from collections import Counter

import nats
import pytest

from schemas import subjects
from schemas.streams import LLM_EVENTS
from tests.fixtures.router import HeldVendor
from tests.integration.conftest import StartRouter, fast_config, set_mode

QUESTION = {"role": "user", "content": "What is your refund policy?"}


async def ask(nc: nats.NATS, body: bytes | dict | None = None, *, timeout: float = 10) -> dict:
    if body is None or isinstance(body, dict):
        body = json.dumps(body or {"messages": [QUESTION], "request_id": uuid.uuid4().hex}).encode()
    reply = await nc.request(subjects.LLM_COMPLETE, body, timeout=timeout)
    return json.loads(reply.data)


async def stored_events(nc: nats.NATS, subject: str) -> list[dict]:
    js = nc.jetstream()
    info = await js.stream_info(LLM_EVENTS.name)
    sub = await js.pull_subscribe(subject, stream=LLM_EVENTS.name)
    wanted = info.state.messages
    messages = await sub.fetch(wanted, timeout=2) if wanted else []
    return [json.loads(m.data) for m in messages if m.subject == subject]


async def eventually(predicate, *, timeout: float = 5.0) -> None:
    """Wait for a condition the code under test gives no event for (bounded)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_primary_answers_and_both_events_are_stored(nc, start_router: StartRouter):
    await start_router()
    result = await ask(nc, {"messages": [QUESTION], "request_id": "r-1", "user_id": "u-7"})
    assert (result["status"], result["tier"], result["provider"], result["fallback_depth"]) == (
        "ok", "full", "openai", 0)
    assert result["usage"]["input_tokens"] > 0 and result["usage"]["output_tokens"] > 0
    assert result["cost_usd"] > 0
    [attempt] = await stored_events(nc, subjects.LLM_ATTEMPT)
    [completed] = await stored_events(nc, subjects.LLM_COMPLETED)
    assert (attempt["request_id"], attempt["provider"], attempt["outcome"]) == ("r-1", "openai", "ok")
    assert (completed["request_id"], completed["user_id"], completed["tier"]) == ("r-1", "u-7", "full")


@pytest.mark.parametrize(("mode", "settings", "seen_as"), [
    ("down", {}, "server_error"),
    ("refuse", {}, "connection"),
    ("slow", {"latency_ms": 3000}, "timeout"),
    ("garbage", {}, "malformed_response"),
])
async def test_a_failing_primary_is_invisible_to_the_caller(
        nc, sim, start_router: StartRouter, mode, settings, seen_as):
    await start_router()
    await set_mode(sim, "openai", mode, **settings)
    result = await ask(nc)
    assert (result["status"], result["tier"], result["provider"], result["fallback_depth"]) == (
        "ok", "degraded", "anthropic", 1)
    assert [(a["provider"], a["outcome"]) for a in result["attempts"]] == [
        ("openai", seen_as), ("anthropic", "ok")]
    await set_mode(sim, "openai", "ok")
    result = await ask(nc)
    assert (result["tier"], result["provider"]) == ("full", "openai")


@pytest.mark.parametrize(("body", "complaint"), [
    (b"{not json", "not valid JSON"),
    (b'{"request_id": "r-9"}', "messages"),
    (b'["a list"]', "JSON object"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "route": "nope"}', "unknown route"),
])
async def test_bad_input_is_answered_with_an_error_and_the_router_keeps_serving(
        nc, start_router: StartRouter, body, complaint):
    await start_router()
    result = await ask(nc, body)
    assert result["status"] == "error"
    assert complaint in result["error"]["message"]
    assert result["error"]["kind"] in ("invalid_request", "no_route")
    if b"r-9" in body:
        assert result["request_id"] == "r-9"
    assert (await ask(nc))["status"] == "ok"


async def test_a_slow_provider_does_not_hold_up_other_callers(nc, sim, start_router: StartRouter):
    await start_router(config=fast_config(attempt_timeout_ms=5000, deadline_ms=10000))
    await set_mode(sim, "openai", "slow", latency_ms=400)
    started = time.monotonic()
    results = await asyncio.gather(*(ask(nc) for _ in range(100)))
    elapsed = time.monotonic() - started
    assert Counter(r["tier"] for r in results) == {"full": 100}
    # Served one after another this would take 40 s; concurrently, about one latency.
    assert elapsed < 3.0, f"100 requests of 400 ms took {elapsed:.1f}s"


async def test_graceful_stop_finishes_in_flight_work_while_the_other_instance_takes_new_work(
        nc, sim, held: HeldVendor, start_router: StartRouter):
    # The vendor holds every answer until released: with a fixed latency, a loaded machine that
    # took longer than it to start router-2 saw the 20 finish before the stop began (a flake).
    config = fast_config(attempt_timeout_ms=30_000, deadline_ms=30_000)
    first = await start_router("router-1", config=config, providers=held.providers(config, sim.url))
    in_flight = [asyncio.create_task(ask(nc, timeout=60)) for _ in range(20)]
    await eventually(lambda: held.arrived == 20 and first.in_flight() == 20, timeout=30)
    await start_router("router-2", config=config, providers=held.providers(config, sim.url))

    stopping = asyncio.create_task(first.stop())
    await first.intake_closed.wait()
    later = [asyncio.create_task(ask(nc, timeout=60)) for _ in range(30)]
    # router-1 takes nothing new but still holds its 20; router-2 takes the 30.
    await eventually(lambda: held.arrived == 50, timeout=30)
    assert not stopping.done() and first.in_flight() == 20
    held.release.set()
    await stopping
    results = await asyncio.gather(*in_flight, *later)

    assert Counter(r["status"] for r in results) == {"ok": 50}
    answered_by = Counter(e["source"] for e in await stored_events(nc, subjects.LLM_COMPLETED))
    assert answered_by == {"router/router-1": 20, "router/router-2": 30}
    assert held.arrived == 50


async def test_trace_context_crosses_the_bus_from_caller_to_stored_events(nc, start_router: StartRouter):
    await start_router()
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{'1' * 16}-01"
    body = json.dumps({"messages": [QUESTION], "request_id": "r-traced"}).encode()
    await nc.request(subjects.LLM_COMPLETE, body, timeout=10, headers={"traceparent": traceparent})
    js = nc.jetstream()
    sub = await js.pull_subscribe(subjects.LLM_COMPLETED, stream=LLM_EVENTS.name)
    [event] = await sub.fetch(1, timeout=2)
    assert event.headers["traceparent"].split("-")[1] == trace_id
