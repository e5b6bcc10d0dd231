"""Hedged requests, retries of the same member within the budget, backoff and the deadline."""

import random
import time

import pytest

from schemas.completion import CompletionRequest, ErrorKind
from services.providers.base import ProviderError
from services.router.engine import Engine
from services.runtime.config import parse_config
from tests.unit.test_engine_walks_chain import FakeVendor

CONFIG = parse_config("""
providers:
  a: {kind: openai, base_url: http://a, models: {m1: {input_per_mtok: 1000, output_per_mtok: 2000}}}
  b: {kind: anthropic, base_url: http://b, models: {m2: {input_per_mtok: 3, output_per_mtok: 4}}}
routes:
  hedged: {chain: [a/m1, b/m2], attempt_timeout_ms: 1000, deadline_ms: 2000, hedge: {after_ms: 50}}
  p95: {chain: [a/m1, b/m2], attempt_timeout_ms: 1000, deadline_ms: 2000,
        hedge: {after: p95, after_ms: 900, min_samples: 10}}
  no_budget: {chain: [a/m1, b/m2], attempt_timeout_ms: 1000, deadline_ms: 2000,
              hedge: {after_ms: 50}, retry: {budget_ratio: 0, min_per_s: 0}}
  retrying: {chain: [a/m1, b/m2], attempt_timeout_ms: 300, deadline_ms: 2000,
             retry: {per_member: 2, budget_ratio: 1.0, base_backoff_ms: 20, max_backoff_ms: 40}}
  thrifty: {chain: [a/m1, b/m2], attempt_timeout_ms: 300, deadline_ms: 2000,
            retry: {per_member: 1, budget_ratio: 0.2, min_per_s: 0, base_backoff_ms: 1}}
  tight: {chain: [a/m1, b/m2], attempt_timeout_ms: 100, deadline_ms: 300,
          retry: {per_member: 3, budget_ratio: 1.0, base_backoff_ms: 1000, max_backoff_ms: 1000}}
breaker: {minimum_calls: 10000, window_size: 10000}  # keep breakers out of these tests
""")
DOWN = ProviderError(ErrorKind.SERVER_ERROR, "503", status_code=503)


class Longest(random.Random):
    """A jitter that always draws the longest wait: the deadline must still hold."""

    def uniform(self, a: float, b: float) -> float:
        return b


def req(route: str) -> CompletionRequest:
    return CompletionRequest(route=route, messages=[{"role": "user", "content": "hi " * 40}])


async def test_a_slow_first_attempt_is_hedged_and_the_first_answer_wins():
    a, b = FakeVendor("a", 0.5), FakeVendor("b")
    t = time.monotonic()
    out = await Engine(CONFIG, {"a": a, "b": b}).complete(req("hedged"))
    took = time.monotonic() - t
    r = out.result
    assert (r.status, r.provider, r.fallback_depth, r.tier) == ("ok", "b", 1, "degraded")
    assert 0.04 < took < 0.3  # the hedge went out at 50 ms; nobody waited for a's 500
    assert sorted((x.provider, x.outcome) for x in r.attempts) == [("a", "cancelled"), ("b", "ok")]
    # Both are counted: b's real bill, and a's prompt (estimated: its usage died with the call).
    b_cost = (1000 * 3 + 500 * 4) / 1e6
    a_cost = out.costs[[x.provider for x in r.attempts].index("a")]
    assert a_cost > 0 and r.cost_usd == pytest.approx(b_cost + a_cost)
    assert out.usages[[x.provider for x in r.attempts].index("a")].output_tokens == 0


async def test_an_attempt_that_answers_before_the_threshold_is_not_hedged():
    a, b = FakeVendor("a", 0.01), FakeVendor("b")
    out = await Engine(CONFIG, {"a": a, "b": b}).complete(req("hedged"))
    assert out.result.provider == "a" and b.calls == []


async def test_the_p95_threshold_follows_the_members_observed_latency():
    a, b = FakeVendor("a", *[0.01] * 10, 0.8), FakeVendor("b")
    engine = Engine(CONFIG, {"a": a, "b": b})
    for _ in range(10):
        assert (await engine.complete(req("p95"))).result.provider == "a"
    t = time.monotonic()
    out = await engine.complete(req("p95"))
    assert out.result.provider == "b"
    assert time.monotonic() - t < 0.3  # hedged near a's p95 (~10 ms), not at the 900 ms fallback


async def test_hedges_spend_the_retry_budget_and_none_go_out_without_one():
    a, b = FakeVendor("a", 0.2), FakeVendor("b")
    out = await Engine(CONFIG, {"a": a, "b": b}).complete(req("no_budget"))
    assert out.result.provider == "a" and b.calls == []


async def test_a_transient_failure_is_retried_on_the_same_member_after_a_jittered_backoff():
    a, b = FakeVendor("a", DOWN, DOWN), FakeVendor("b")
    out = await Engine(CONFIG, {"a": a, "b": b}, rng=Longest()).complete(req("retrying"))
    r = out.result
    assert (r.provider, r.fallback_depth, r.tier) == ("a", 0, "full")
    assert [x.outcome for x in r.attempts] == ["server_error", "server_error", "ok"]
    assert b.calls == []
    assert r.latency_ms >= 20 + 40  # 20 ms then 40 ms: the exponential cap of each retry


@pytest.mark.parametrize("kind", [ErrorKind.RATE_LIMITED, ErrorKind.AUTH, ErrorKind.BAD_REQUEST])
async def test_only_transient_failures_are_retried(kind):
    a, b = FakeVendor("a", ProviderError(kind, "no", status_code=404)), FakeVendor("b")
    out = await Engine(CONFIG, {"a": a, "b": b}).complete(req("retrying"))
    assert out.result.provider == "b" and len(a.calls) == 1


async def test_retries_add_at_most_the_budgets_fraction_of_calls():
    a, b = FakeVendor("a", *[DOWN] * 1000), FakeVendor("b")
    engine = Engine(CONFIG, {"a": a, "b": b})
    for _ in range(50):
        assert (await engine.complete(req("thrifty"))).result.provider == "b"
    assert len(a.calls) - 50 == 10  # 50 requests, 20 %: 10 retries of a and no more


async def test_a_retry_never_waits_past_the_deadline():
    a, b = FakeVendor("a", DOWN), FakeVendor("b")
    t = time.monotonic()
    out = await Engine(CONFIG, {"a": a, "b": b}, rng=Longest()).complete(req("tight"))
    assert out.result.provider == "b" and len(a.calls) == 1  # a 1 s backoff would not fit 300 ms
    assert time.monotonic() - t < 0.2
