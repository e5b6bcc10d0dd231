"""The router's own figures at /metrics (requests by route/tier/provider/status, latency,
fallback depth, breaker states, cache hits, the queue's depth and oldest age), and one trace
from the gateway through the bus and the router to the provider call. Real nats-server,
router, gateway, HTTP; the vendor simulator."""

import asyncio
import json
import time
import uuid

import aiohttp
import nats
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from schemas import subjects
from tests.fixtures.degradation import all_vendors, ask, cache_entries, degraded_config, until
from tests.fixtures.gateway import QUESTION, stream_over_bus
from tests.integration.conftest import set_mode

BOOK = "Can you recommend a good book about sailing?"


async def scrape(http: aiohttp.ClientSession, url: str) -> dict[tuple[str, frozenset], float]:
    async with http.get(url + "/metrics") as r:
        assert r.status == 200
        text = await r.text()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_what_the_router_did(nc: nats.NATS, sim, start_router):
    config = degraded_config(wait_in_open_ms=60_000)  # an open breaker stays open for the scrape
    router = await start_router(config=config)
    assert (await ask(nc, BOOK))["provider"] == "openai"
    await until(lambda: _cached(nc), within=5)
    for _ in range(2):
        assert (await ask(nc, "Where is my order?"))["tier"] == "full"
    assert (await stream_over_bus(nc, {"messages": [QUESTION]}))[-1].provider == "openai"
    await set_mode(sim, "openai", "down")
    for _ in range(3):  # three failures open openai's breaker (minimum_calls 3)
        assert (await ask(nc, "Where is my order?"))["provider"] == "anthropic"
    await all_vendors(sim, "down")
    assert (await ask(nc, BOOK))["cached"] is True
    assert (await ask(nc, "Write a haiku about databases", allow_queue=True))["status"] == "queued"
    reply = await nc.request(subjects.LLM_COMPLETE, b"{not json", timeout=5)
    assert json.loads(reply.data)["status"] == "error"

    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 10
        while True:  # the queue's gauges are sampled every heartbeat (0.2 s here)
            samples = await scrape(http, router.health.url)
            if value(samples, "lifeline_router_queue_depth", priority="interactive") == 1:
                break
            assert time.monotonic() < deadline, "the parked request never showed in the gauge"
            await asyncio.sleep(0.1)

    requests = "lifeline_router_requests_total"
    assert value(samples, requests, route="chat", tier="full", provider="openai", status="ok") == 4
    assert value(samples, requests, route="chat", tier="degraded", provider="anthropic", status="ok") == 3
    assert value(samples, requests, route="chat", tier="minimal", provider="-", status="ok") == 1
    assert value(samples, requests, route="chat", tier="emergency", provider="-", status="queued") == 1
    assert value(samples, requests, route="unknown", tier="-", provider="-", status="error") == 1
    assert value(samples, "lifeline_router_request_seconds_count", route="chat") == 9
    assert value(samples, "lifeline_router_fallback_depth_count", route="chat") == 7
    assert value(samples, "lifeline_router_fallback_depth_sum", route="chat") == 3
    assert value(samples, "lifeline_router_cache_hits_total", route="chat") == 1
    assert value(samples, "lifeline_router_breaker_state", member="openai/gpt-4o-mini") == 2
    assert value(samples, "lifeline_router_breaker_state", member="anthropic/claude-haiku-4-5") in (1, 2)
    assert value(samples, "lifeline_router_queue_depth", priority="batch") == 0
    assert value(samples, "lifeline_router_queue_oldest_age_seconds", priority="interactive") > 0


async def _cached(nc: nats.NATS) -> bool:
    return await cache_entries(nc) >= 1


async def test_one_trace_runs_from_the_gateway_through_the_router_to_the_provider(
        start_router, start_gateway):
    spans = InMemorySpanExporter()
    router = await start_router()
    gateway = await start_gateway()
    for service in (router, gateway):
        service.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    trace_id = uuid.uuid4().hex  # the application's own trace, sampled (flags 01)
    body = {"model": "chat", "messages": [QUESTION], "max_tokens": 50}
    async with aiohttp.ClientSession() as http:
        async with http.post(gateway.url + "/v1/chat/completions", json=body,
                             headers={"traceparent": f"00-{trace_id}-{'2' * 16}-01"}) as r:
            assert r.status == 200, await r.text()

    def services() -> dict[str, list]:
        by: dict[str, list] = {}
        for span in spans.get_finished_spans():
            by.setdefault(span.resource.attributes["service.name"], []).append(span)
        return by

    deadline = time.monotonic() + 5
    while not {"lifeline-gateway", "lifeline-router"} <= set(services()) or not any(
            s.name == "chat openai/gpt-4o-mini" for s in spans.get_finished_spans()):
        assert time.monotonic() < deadline, [s.name for s in spans.get_finished_spans()]
        await asyncio.sleep(0.02)
    finished = spans.get_finished_spans()
    assert {f"{s.context.trace_id:032x}" for s in finished} == {trace_id}  # one trace
    by_id = {s.context.span_id: s for s in finished}
    call = next(s for s in finished if s.name == "chat openai/gpt-4o-mini")
    chain = [call]
    while chain[-1].parent is not None and chain[-1].parent.span_id in by_id:
        chain.append(by_id[chain[-1].parent.span_id])
    # provider call <- router (the bus handler) <- ... <- the gateway's HTTP span
    assert [s.resource.attributes["service.name"] for s in chain][0] == "lifeline-router"
    assert chain[-1].resource.attributes["service.name"] == "lifeline-gateway"
    assert chain[-1].name == "POST /v1/chat/completions"
    assert call.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    print("\ntrace:", " <- ".join(f"{s.resource.attributes['service.name']}:{s.name}" for s in chain))
