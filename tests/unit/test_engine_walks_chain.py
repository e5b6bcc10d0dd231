"""The engine's failover walk, with a fake of the vendor port (no I/O)."""

import asyncio

import pytest

from schemas.completion import CompletionRequest, ErrorKind
from services.providers.base import ChatAnswer, ChatCall, ProviderError, ProviderSpec
from services.router.engine import Engine
from services.runtime.config import parse_config

CONFIG = parse_config("""
providers:
  a: {kind: openai, base_url: http://a, models: {m1: {input_per_mtok: 1.0, output_per_mtok: 2.0}}}
  b: {kind: anthropic, base_url: http://b, models: {m2: {input_per_mtok: 3.0, output_per_mtok: 4.0}}}
  c: {kind: openai_compatible, base_url: http://c, models: {m3: {input_per_mtok: 0, output_per_mtok: 0}}}
routes:
  chat: {chain: [a/m1, b/m2, c/m3], attempt_timeout_ms: 200, deadline_ms: 1000}
""")


class FakeVendor:
    """Scripted answers per call: an exception to raise, a delay, an answer, or success."""

    def __init__(self, name: str, *script: ProviderError | float | ChatAnswer | None) -> None:
        self.spec = ProviderSpec(name=name, kind="openai", base_url="http://x")
        self.script = list(script)
        self.calls: list[tuple[ChatCall, float]] = []

    async def complete(self, call: ChatCall, *, timeout: float) -> ChatAnswer:
        self.calls.append((call, timeout))
        step = self.script.pop(0) if self.script else None
        if isinstance(step, ProviderError):
            raise step
        if isinstance(step, ChatAnswer):
            return step
        if isinstance(step, float):
            try:
                await asyncio.wait_for(asyncio.sleep(step), timeout)
            except TimeoutError:
                raise ProviderError(ErrorKind.TIMEOUT, "slow") from None
        return ChatAnswer(content=f"{self.spec.name} says hi", model=call.model,
                          input_tokens=1000, output_tokens=500, finish_reason="stop")

    async def aclose(self) -> None:
        pass


def request(**kw) -> CompletionRequest:
    return CompletionRequest(messages=[{"role": "user", "content": "hi"}], **kw)


async def test_primary_answers_with_full_tier_and_its_price():
    a, b, c = FakeVendor("a"), FakeVendor("b"), FakeVendor("c")
    out = await Engine(CONFIG, {"a": a, "b": b, "c": c}).complete(request())
    r = out.result
    assert (r.status, r.tier, r.provider, r.model, r.fallback_depth) == ("ok", "full", "a", "m1", 0)
    assert r.cost_usd == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6)
    assert [x.outcome for x in r.attempts] == ["ok"]
    assert (len(b.calls), len(c.calls)) == (0, 0)


@pytest.mark.parametrize("kind", [ErrorKind.SERVER_ERROR, ErrorKind.CONNECTION, ErrorKind.TIMEOUT,
                                  ErrorKind.RATE_LIMITED, ErrorKind.MALFORMED_RESPONSE, ErrorKind.AUTH])
async def test_primary_failure_fails_over_to_the_next_member(kind):
    a, b, c = FakeVendor("a", ProviderError(kind, "boom", status_code=503)), FakeVendor("b"), FakeVendor("c")
    out = await Engine(CONFIG, {"a": a, "b": b, "c": c}).complete(request())
    r = out.result
    assert (r.status, r.tier, r.provider, r.fallback_depth) == ("ok", "degraded", "b", 1)
    assert [(x.provider, x.outcome) for x in r.attempts] == [("a", kind), ("b", "ok")]
    assert out.status_codes == [503, 200]
    assert r.cost_usd == pytest.approx((1000 * 3.0 + 500 * 4.0) / 1e6)


async def test_bad_request_is_the_callers_fault_and_not_retried_elsewhere():
    a, b = FakeVendor("a", ProviderError(ErrorKind.BAD_REQUEST, "messages: bad")), FakeVendor("b")
    out = await Engine(CONFIG, {"a": a, "b": b, "c": FakeVendor("c")}).complete(request())
    assert out.result.status == "error"
    assert out.result.error.kind == ErrorKind.BAD_REQUEST
    assert b.calls == []


async def test_a_model_missing_at_one_vendor_fails_over_rather_than_blaming_the_caller():
    a = FakeVendor("a", ProviderError(ErrorKind.BAD_REQUEST, "model not found", status_code=404))
    b = FakeVendor("b")
    out = await Engine(CONFIG, {"a": a, "b": b, "c": FakeVendor("c")}).complete(request())
    assert (out.result.status, out.result.provider, out.result.fallback_depth) == ("ok", "b", 1)
    assert out.status_codes == [404, 200]


async def test_every_member_failing_is_an_exhausted_error_listing_each_attempt():
    err = ProviderError(ErrorKind.SERVER_ERROR, "down")
    vendors = {n: FakeVendor(n, err) for n in "abc"}
    out = await Engine(CONFIG, vendors).complete(request())
    assert out.result.status == "error"
    assert out.result.error.kind == ErrorKind.EXHAUSTED
    assert [x.provider for x in out.result.attempts] == ["a", "b", "c"]


async def test_slow_primary_is_cut_at_the_attempt_timeout():
    a, b = FakeVendor("a", 5.0), FakeVendor("b")
    out = await Engine(CONFIG, {"a": a, "b": b, "c": FakeVendor("c")}).complete(request())
    assert out.result.provider == "b"
    assert a.calls[0][1] == pytest.approx(0.2)
    assert out.result.attempts[0].outcome == ErrorKind.TIMEOUT
    assert 150 <= out.result.attempts[0].latency_ms < 400


async def test_request_deadline_caps_the_attempt_timeout():
    a, b = FakeVendor("a", 5.0), FakeVendor("b", 5.0)
    out = await Engine(CONFIG, {"a": a, "b": b, "c": FakeVendor("c")}).complete(
        request(deadline_ms=300))
    assert out.result.status == "error"
    assert out.result.error.kind == ErrorKind.TIMEOUT
    assert a.calls[0][1] == pytest.approx(0.2)
    assert b.calls[0][1] == pytest.approx(0.1, abs=0.03)  # what the 300 ms deadline left
    assert out.result.latency_ms < 450


async def test_unknown_route_is_a_clear_error():
    out = await Engine(CONFIG, {}).complete(request(route="nope"))
    assert out.result.error.kind == ErrorKind.NO_ROUTE
    assert "'nope'" in out.result.error.message and "chat" in out.result.error.message


async def test_in_flight_counts_concurrent_requests():
    a = FakeVendor("a", 0.05, 0.05, 0.05)
    engine = Engine(CONFIG, {"a": a, "b": FakeVendor("b"), "c": FakeVendor("c")})
    tasks = [asyncio.create_task(engine.complete(request())) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert engine.in_flight == 3
    await asyncio.gather(*tasks)
    assert engine.in_flight == 0
