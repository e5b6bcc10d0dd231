"""The engine with breakers, Retry-After, refused keys, residency and the kill switch (no I/O)."""

import time

from schemas.completion import CompletionRequest, ErrorKind
from services.providers.base import ProviderError
from services.router.engine import Engine
from services.runtime.config import parse_config
from tests.unit.test_engine_walks_chain import FakeVendor

CONFIG = parse_config("""
providers:
  a: {kind: openai, base_url: http://a, region: us, models: {m1: {input_per_mtok: 1, output_per_mtok: 2}}}
  b: {kind: anthropic, base_url: http://b, region: us, models: {m2: {input_per_mtok: 3, output_per_mtok: 4}}}
  e: {kind: openai_compatible, base_url: http://e, region: eu, models: {m3: {input_per_mtok: 0, output_per_mtok: 0}}}
routes:
  chat: {chain: [a/m1, b/m2, e/m3], attempt_timeout_ms: 200, deadline_ms: 2000}
  solo: {chain: [a/m1], attempt_timeout_ms: 200, deadline_ms: 2000}
  solo_degrade: {chain: [a/m1], attempt_timeout_ms: 200, deadline_ms: 2000, when_all_cooling: degrade}
breaker: {window_size: 4, minimum_calls: 4, failure_rate_threshold: 50, wait_in_open_ms: 300, half_open_calls: 1}
tiers: {maintenance_message: "Back soon."}
""")

DOWN = ProviderError(ErrorKind.SERVER_ERROR, "503", status_code=503)


class Clock:
    """Time the test moves by hand, for the waits that are state, not events."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request(**kw) -> CompletionRequest:
    return CompletionRequest(messages=[{"role": "user", "content": "hi"}], **kw)


def vendors(a: FakeVendor | None = None) -> dict[str, FakeVendor]:
    return {"a": a or FakeVendor("a"), "b": FakeVendor("b"), "e": FakeVendor("e")}


async def test_an_open_breaker_skips_the_primary_without_calling_it_then_probes_it():
    v = vendors(FakeVendor("a", *[DOWN] * 4))
    clock = Clock()
    engine = Engine(CONFIG, v, clock=clock)
    for _ in range(4):
        assert (await engine.complete(request())).result.provider == "b"
    assert engine.availability.breaker("a/m1").state == "open"
    for _ in range(10):
        out = await engine.complete(request())
        assert out.result.provider == "b" and [x.provider for x in out.attempts] == ["b"]
    assert len(v["a"].calls) == 4  # none while open
    clock.now += 0.3  # the breaker's wait in open
    out = await engine.complete(request())  # the probe, and the script has no failures left
    assert (out.result.provider, out.result.tier) == ("a", "full")
    assert engine.availability.breaker("a/m1").state == "closed"


async def test_a_rate_limit_cools_the_provider_down_for_its_retry_after():
    limited = ProviderError(ErrorKind.RATE_LIMITED, "429", status_code=429, retry_after=0.3)
    v = vendors(FakeVendor("a", limited))
    clock = Clock()
    engine = Engine(CONFIG, v, clock=clock)
    assert (await engine.complete(request())).result.provider == "b"
    clock.now += 0.29
    assert (await engine.complete(request())).result.provider == "b"
    assert len(v["a"].calls) == 1
    clock.now += 0.01
    assert (await engine.complete(request())).result.provider == "a"


async def test_a_refused_key_takes_the_provider_out_of_rotation():
    v = vendors(FakeVendor("a", ProviderError(ErrorKind.AUTH, "invalid x-api-key", status_code=401)))
    engine = Engine(CONFIG, v)
    for _ in range(3):
        assert (await engine.complete(request())).result.provider == "b"
    assert len(v["a"].calls) == 1
    assert "invalid x-api-key" in engine.availability.revoked["a"]


async def test_when_every_member_cools_down_the_request_waits_for_the_first_due_back():
    limited = ProviderError(ErrorKind.RATE_LIMITED, "429", status_code=429, retry_after=0.2)
    v = vendors(FakeVendor("a", limited))
    engine = Engine(CONFIG, v)
    await engine.complete(request(route="solo"))  # a 429: cooling for 0.2 s
    started = time.monotonic()
    out = await engine.complete(request(route="solo"))
    assert out.result.status == "ok" and 0.15 < time.monotonic() - started < 1.0
    assert len(v["a"].calls) == 2


async def test_a_route_set_to_degrade_does_not_wait():
    limited = ProviderError(ErrorKind.RATE_LIMITED, "429", status_code=429, retry_after=5)
    engine = Engine(CONFIG, vendors(FakeVendor("a", limited)))
    await engine.complete(request(route="solo_degrade"))
    started = time.monotonic()
    out = await engine.complete(request(route="solo_degrade"))
    assert time.monotonic() - started < 0.1
    assert out.result.status == "error" and out.result.error.kind == ErrorKind.EXHAUSTED
    assert "rate limited" in out.result.error.message


async def test_an_eu_request_never_leaves_the_eu_even_when_the_eu_member_is_down():
    v = vendors()
    v["e"] = FakeVendor("e", DOWN)
    engine = Engine(CONFIG, v)
    out = await engine.complete(request(region="eu"))
    assert out.result.status == "error"
    assert [x.provider for x in out.attempts] == ["e"]
    assert (v["a"].calls, v["b"].calls) == ([], [])
    out = await engine.complete(request(region="eu"))
    # Depth counts within what the request may use: the EU member is the EU request's first choice.
    assert (out.result.provider, out.result.fallback_depth, out.result.tier) == ("e", 0, "full")


async def test_a_region_without_members_is_an_error_not_a_crossing():
    out = await Engine(CONFIG, vendors()).complete(request(region="ap"))
    assert out.result.error.kind == ErrorKind.NO_ROUTE and "region 'ap'" in out.result.error.message


async def test_the_kill_switch_answers_with_the_maintenance_message_and_calls_nobody():
    v = vendors()
    engine = Engine(CONFIG, v)
    engine.controls.everything = "runaway spend"
    out = await engine.complete(request())
    assert (out.result.status, out.result.tier, out.result.content) == ("ok", "emergency", "Back soon.")
    assert all(not x.calls for x in v.values())
