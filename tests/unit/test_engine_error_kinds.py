"""The engine by error kind: refused keys said once, context too long, content policy (no I/O)."""

from schemas.completion import CompletionRequest, ErrorKind
from services.providers.base import ProviderError
from services.router.engine import Engine
from services.runtime.config import parse_config
from tests.unit.test_engine_walks_chain import FakeVendor

CONFIG = parse_config("""
providers:
  a: {kind: openai, base_url: http://a, models: {small: {input_per_mtok: 1, output_per_mtok: 2, context_window: 1000}}}
  b: {kind: openai, base_url: http://b, models: {small2: {input_per_mtok: 1, output_per_mtok: 2, context_window: 800}}}
  c: {kind: anthropic, base_url: http://c, models: {big: {input_per_mtok: 3, output_per_mtok: 4, context_window: 200000}}}
routes:
  chat: {chain: [a/small, b/small2, c/big], attempt_timeout_ms: 200, deadline_ms: 2000}
  strict: {chain: [a/small, c/big], attempt_timeout_ms: 200, deadline_ms: 2000}
  lenient: {chain: [a/small, c/big], attempt_timeout_ms: 200, deadline_ms: 2000, on_content_policy: failover}
  tiny: {chain: [a/small, b/small2], attempt_timeout_ms: 200, deadline_ms: 2000}
""")
REFUSED = ProviderError(ErrorKind.AUTH, "HTTP 401 invalid x-api-key", status_code=401)
TOO_LONG = ProviderError(ErrorKind.CONTEXT_TOO_LONG, "prompt is too long: 1200 tokens > 1000", status_code=400)
POLICY = ProviderError(ErrorKind.CONTENT_POLICY, "flagged by the safety system", status_code=400)


def req(content: str = "hi", **kw) -> CompletionRequest:
    return CompletionRequest(messages=[{"role": "user", "content": content}], **kw)


def vendors(**scripts) -> dict[str, FakeVendor]:
    return {n: FakeVendor(n, *scripts.get(n, ())) for n in "abc"}


async def test_a_refused_key_is_reported_once_per_episode_not_per_request():
    v = vendors(a=[REFUSED, REFUSED])
    engine = Engine(CONFIG, v)
    first = await engine.complete(req())
    assert first.result.provider == "b"
    assert [(r.provider, r.status_code) for r in first.key_refusals] == [("a", 401)]
    for _ in range(5):  # out of rotation: not called, not reported again
        out = await engine.complete(req())
        assert out.key_refusals == [] and out.result.provider == "b"
    assert len(v["a"].calls) == 1
    engine.availability.revoked.pop("a")  # the health monitor saw the key work again
    again = await engine.complete(req())
    assert [r.provider for r in again.key_refusals] == ["a"]  # a new episode, said again


async def test_context_too_long_moves_to_the_first_later_member_with_a_larger_window():
    v = vendors(a=[TOO_LONG])
    out = await Engine(CONFIG, v).complete(req())
    r = out.result
    assert (r.status, r.provider, r.fallback_depth) == ("ok", "c", 2)
    assert [(x.provider, x.outcome) for x in r.attempts] == [("a", "context_too_long"), ("c", "ok")]
    assert v["b"].calls == []  # 800 < 1000: it cannot take what a could not


async def test_a_prompt_plainly_too_big_for_a_member_skips_it_without_a_call():
    long = "word " * 1000  # ~1,250 estimated tokens: more than a's 1,000 and b's 800
    v = vendors()
    out = await Engine(CONFIG, v).complete(req(long))
    assert (out.result.provider, [x.provider for x in out.result.attempts]) == ("c", ["c"])
    assert v["a"].calls == [] and v["b"].calls == []


async def test_when_no_member_is_larger_the_caller_gets_context_too_long():
    v = vendors(a=[TOO_LONG])
    out = await Engine(CONFIG, v).complete(req(route="tiny"))
    assert out.result.status == "error" and out.result.error.kind == ErrorKind.CONTEXT_TOO_LONG
    assert "1200 tokens > 1000" in out.result.error.message
    assert v["b"].calls == []


async def test_if_no_member_could_fit_the_estimate_the_vendors_judge_not_the_estimate():
    v = vendors()
    out = await Engine(CONFIG, v).complete(req("word " * 1000, route="tiny"))
    assert out.result.provider == "a"  # the estimate is rough: a vendor had the last word


async def test_content_policy_is_returned_to_the_caller_by_default():
    v = vendors(a=[POLICY])
    out = await Engine(CONFIG, v).complete(req(route="strict"))
    assert out.result.status == "error" and out.result.error.kind == ErrorKind.CONTENT_POLICY
    assert v["c"].calls == []


async def test_content_policy_fails_over_where_the_route_says_so():
    v = vendors(a=[POLICY])
    out = await Engine(CONFIG, v).complete(req(route="lenient"))
    assert (out.result.status, out.result.provider) == ("ok", "c")


async def test_neither_policy_nor_context_errors_count_against_the_breaker():
    v = vendors(a=[POLICY] * 30)
    engine = Engine(CONFIG, v)
    for _ in range(30):
        await engine.complete(req(route="lenient"))
    assert engine.availability.breaker("a/small").state == "closed"
