"""The engine choosing per request: rules, strategies, headroom, downgrade, kill-switch scopes,
slow start after a breaker closes (no I/O)."""

from collections import Counter

from schemas.completion import CompletionRequest, ErrorKind
from schemas.control import Downgrade, Killswitch
from services.providers.base import ChatAnswer, ProviderError
from services.providers.headroom import Headroom
from services.router.engine import Engine
from services.runtime.config import parse_config
from tests.unit.test_engine_availability import Clock
from tests.unit.test_engine_walks_chain import FakeVendor

CONFIG = parse_config("""
providers:
  a: {kind: openai, base_url: http://a, models: {m1: {input_per_mtok: 5, output_per_mtok: 15}}}
  b: {kind: anthropic, base_url: http://b, models: {m2: {input_per_mtok: 1, output_per_mtok: 2}}}
  c: {kind: openai_compatible, base_url: http://c, models: {m3: {input_per_mtok: 0, output_per_mtok: 0}}}
routes:
  chat:
    chain: [a/m1, b/m2]
    attempt_timeout_ms: 500
    deadline_ms: 2000
    downgrade_chain: [c/m3]
    rules:
      - {name: urgent, when: {metadata: {priority: urgent}}, strategy: least-latency}
      - {name: free, when: {metadata: {tier: free}}, chain: [c/m3, b/m2]}
  cheap: {chain: [a/m1, b/m2], strategy: cost}
  shared: {chain: [a/m1, b/m2], strategy: weighted, weights: {a/m1: 3, b/m2: 1}}
breaker: {window_size: 4, minimum_calls: 4, wait_in_open_ms: 300, half_open_calls: 1, slow_start_ms: 1000}
tiers: {maintenance_message: "Back soon."}
""")
DOWN = ProviderError(ErrorKind.SERVER_ERROR, "503", status_code=503)


def req(**kw) -> CompletionRequest:
    return CompletionRequest(messages=[{"role": "user", "content": "hi"}], **kw)


def vendors(**scripts) -> dict[str, FakeVendor]:
    return {n: FakeVendor(n, *scripts.get(n, ())) for n in "abc"}


async def test_an_urgent_request_takes_the_fastest_member_a_normal_one_the_primary():
    v = vendors(a=[0.08, 0.08, 0.08])
    engine = Engine(CONFIG, v)
    for _ in range(2):  # both measured once: a 80 ms, b instant
        await engine.complete(req(metadata={"priority": "urgent"}))
    assert (await engine.complete(req(metadata={"priority": "urgent"}))).result.provider == "b"
    normal = (await engine.complete(req())).result
    assert (normal.provider, normal.tier) == ("a", "full")


async def test_a_free_tier_user_gets_the_cheap_chain():
    r = (await Engine(CONFIG, vendors()).complete(req(metadata={"tier": "free"}))).result
    assert (r.provider, r.fallback_depth, r.tier) == ("c", 0, "full")


async def test_cost_picks_the_cheapest_member_and_that_is_full_tier():
    r = (await Engine(CONFIG, vendors()).complete(req(route="cheap"))).result
    assert (r.provider, r.fallback_depth, r.tier) == ("b", 0, "full")


async def test_weighted_shares_first_attempts_by_weight():
    engine = Engine(CONFIG, vendors())
    firsts = Counter([(await engine.complete(req(route="shared"))).result.provider for _ in range(400)])
    assert 0.65 < firsts["a"] / 400 < 0.85


async def test_a_member_whose_headers_say_no_room_is_tried_last_until_its_reset():
    low = ChatAnswer(content="a", model="m1", input_tokens=1, output_tokens=1, finish_reason="stop",
                     headroom=Headroom(fraction=0.01, limit="requests", reset_s=60))
    engine = Engine(CONFIG, vendors(a=[low]))
    assert (await engine.complete(req())).result.provider == "a"
    r = (await engine.complete(req())).result
    assert (r.provider, r.fallback_depth, r.tier) == ("b", 1, "degraded")


async def test_a_downgraded_route_runs_on_its_cheaper_chain_and_says_degraded():
    v = vendors()
    engine = Engine(CONFIG, v)
    engine.controls.apply("downgrade.chat", Downgrade(active=True).model_dump_json().encode())
    r = (await engine.complete(req())).result
    assert (r.provider, r.tier) == ("c", "degraded")
    assert v["a"].calls == [] and v["b"].calls == []
    engine.controls.apply("downgrade.chat", None)
    assert (await engine.complete(req())).result.provider == "a"


class DowngradingAdmission:
    """The cost guard's answer for a user whose `downgrade` budget is spent: admitted, cheaper."""

    def __init__(self, spent_user: str) -> None:
        self.spent_user = spent_user
        self.settled: list[float] = []

    async def admit(self, request, members):
        admission = self

        class Reserved:
            downgrade = ("the day budget of user alice is spent"
                         if request.user_id == admission.spent_user else None)

            async def settle(self, cost_usd: float) -> None:
                admission.settled.append(cost_usd)

        return Reserved()


async def test_a_spent_users_requests_alone_run_on_the_cheaper_chain():
    v = vendors()
    admission = DowngradingAdmission("alice")
    engine = Engine(CONFIG, v, admission=admission)
    alice = (await engine.complete(req(user_id="alice"))).result
    bob = (await engine.complete(req(user_id="bob"))).result
    assert (alice.provider, alice.tier) == ("c", "degraded")
    assert (bob.provider, bob.tier) == ("a", "full")
    assert len(v["a"].calls) == 1 and len(v["c"].calls) == 1


async def test_a_spent_users_request_on_a_route_without_a_cheaper_chain_is_refused_as_spent():
    v = vendors()
    admission = DowngradingAdmission("alice")
    engine = Engine(CONFIG, v, admission=admission)
    r = (await engine.complete(req(route="cheap", user_id="alice"))).result
    assert r.error.kind is ErrorKind.BUDGET_EXHAUSTED
    assert r.error.message == ("the day budget of user alice is spent, and route cheap has no "
                               "downgrade_chain to go on with")
    assert all(vendor.calls == [] for vendor in v.values())
    assert admission.settled == [0.0]  # the reservation is given back at once


async def test_route_and_key_kill_switches_answer_maintenance_with_no_vendor_call():
    v = vendors()
    engine = Engine(CONFIG, v)
    on = Killswitch(engaged=True, reason="runaway").model_dump_json().encode()
    engine.controls.apply("killswitch.key.k1", on)
    engine.controls.apply("killswitch.route.cheap", on)
    for r in (req(key_id="k1"), req(route="cheap")):
        out = (await engine.complete(r)).result
        assert (out.status, out.tier, out.content) == ("ok", "emergency", "Back soon.")
    assert all(not x.calls for x in v.values())
    assert (await engine.complete(req(key_id="k2"))).result.tier == "full"


async def test_after_its_breaker_closes_the_primary_ramps_up_over_the_slow_start_window():
    clock = Clock()
    v = vendors(a=[DOWN] * 4)
    engine = Engine(CONFIG, v, clock=clock)
    for _ in range(4):
        await engine.complete(req())
    assert engine.availability.breaker("a/m1").state == "open"
    clock.now += 0.31
    probe = (await engine.complete(req())).result  # the one half-open probe succeeds: closed
    assert probe.provider == "a" and engine.availability.breaker("a/m1").state == "closed"
    shares = []
    for at in (0.0, 0.25, 0.5, 0.75, 1.0):
        clock.now = 1000.31 + at
        got = Counter([(await engine.complete(req())).result.provider for _ in range(100)])
        shares.append(got["a"])
    assert shares == [0, 25, 50, 75, 100]
    assert [r.result.tier for r in [await engine.complete(req())]] == ["full"]
