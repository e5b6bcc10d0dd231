"""How each strategy orders a route's members (router/strategies.py), pure."""

import random
from collections import Counter

import pytest

from services.providers.headroom import Headroom
from services.router.logic import Member
from services.router.strategies import (
    EWMA_ALPHA, HEADROOM_TTL_S, LATENCY_STALE_S, MemberStats, order, room_first,
)
from services.runtime.config import ModelConfig


def member(name: str, depth: int, inp: float = 1.0, out: float = 1.0) -> Member:
    return Member(provider=name, model="m", prices=ModelConfig(input_per_mtok=inp, output_per_mtok=out),
                  region="us", depth=depth)


A, B, C = member("a", 0, 5, 15), member("b", 1, 1, 1), member("c", 2, 0.5, 8)
CHAIN = [A, B, C]


def names(members: list[Member]) -> list[str]:
    return [m.provider for m in members]


def ordered(strategy, stats=None, now=100.0, **kw) -> list[str]:
    return names(order(strategy, CHAIN, stats=stats or {}, now=now, rng=random.Random(7), **kw))


def test_priority_keeps_the_chain():
    assert ordered("priority") == ["a", "b", "c"]


def test_weighted_draws_the_first_member_in_proportion_to_its_weight():
    rng = random.Random(1)
    weights = {"a/m": 6.0, "b/m": 3.0, "c/m": 1.0}
    firsts = Counter(order("weighted", CHAIN, stats={}, now=0, rng=rng, weights=weights)[0].provider
                     for _ in range(20_000))
    assert firsts["a"] / 20_000 == pytest.approx(0.6, abs=0.015)
    assert firsts["b"] / 20_000 == pytest.approx(0.3, abs=0.015)
    assert firsts["c"] / 20_000 == pytest.approx(0.1, abs=0.015)


def test_weighted_keeps_every_member_as_a_fallback_and_weight_zero_only_as_one():
    rng = random.Random(2)
    for _ in range(500):
        got = order("weighted", CHAIN, stats={}, now=0, rng=rng, weights={"a/m": 0.0})
        assert sorted(names(got)) == ["a", "b", "c"]
        assert got[-1].provider == "a"


def test_least_latency_puts_the_fastest_first_and_an_unmeasured_member_before_all():
    stats = {"a/m": MemberStats(), "b/m": MemberStats()}
    stats["a/m"].observe_latency(0.8, now=99)
    stats["b/m"].observe_latency(0.2, now=99)
    assert ordered("least-latency", stats) == ["c", "b", "a"]  # c: never measured, tried first
    stats["c/m"] = MemberStats()
    stats["c/m"].observe_latency(0.5, now=99)
    assert ordered("least-latency", stats) == ["b", "c", "a"]


def test_the_latency_average_is_an_ewma_and_goes_stale():
    s = MemberStats()
    s.observe_latency(1.0, now=0)
    s.observe_latency(0.0, now=1)
    assert s.latency(1) == pytest.approx(1 - EWMA_ALPHA)
    assert s.latency(1 + LATENCY_STALE_S + 0.1) is None  # measure it again
    s.observe_latency(0.3, now=100)  # a fresh sample after staleness starts over
    assert s.latency(100) == pytest.approx(0.3)


def test_cost_prices_the_request_on_its_estimated_tokens():
    # 1,000 in / 100 out: a = 0.0065, b = 0.0011, c = 0.0013
    assert ordered("cost", input_tokens=1000, output_tokens=100) == ["b", "c", "a"]
    # a long answer: c's output price dominates (c = 0.0805, b = 0.011)
    assert ordered("cost", input_tokens=1000, output_tokens=10_000) == ["b", "c", "a"]
    # a huge prompt, short answer: c's cheap input wins (c = 0.0058, b = 0.0110)
    assert ordered("cost", input_tokens=10_000, output_tokens=100) == ["c", "b", "a"]


def test_headroom_puts_the_most_room_first_and_unknown_counts_as_full():
    stats = {k: MemberStats() for k in ("a/m", "b/m")}
    stats["a/m"].observe_headroom(Headroom(fraction=0.3, limit="requests", reset_s=30), now=100)
    stats["b/m"].observe_headroom(Headroom(fraction=0.6, limit="tokens", reset_s=30), now=100)
    assert ordered("headroom", stats) == ["c", "b", "a"]


@pytest.mark.parametrize("strategy", ["priority", "least-latency", "cost", "weighted"])
def test_every_strategy_puts_a_nearly_exhausted_member_last_until_its_limit_resets(strategy):
    stats = {"a/m": MemberStats()}
    stats["a/m"].observe_headroom(Headroom(fraction=0.01, limit="requests", reset_s=20), now=100)

    def preferred(now: float) -> list[Member]:
        return order(strategy, CHAIN, stats=stats, now=now, rng=random.Random(7),
                     input_tokens=1, output_tokens=1, weights={"a/m": 1000.0})
    assert names(room_first(preferred(100), stats=stats, now=100))[-1] == "a"
    later = preferred(121)  # reset passed: back in its place
    assert room_first(later, stats=stats, now=121) == later


def test_a_headroom_reading_without_a_reset_is_trusted_for_a_minute():
    s = MemberStats()
    s.observe_headroom(Headroom(fraction=0.0, limit="requests"), now=0)
    assert s.headroom(HEADROOM_TTL_S - 1) == 0.0
    assert s.headroom(HEADROOM_TTL_S + 1) is None


def test_p95_needs_enough_samples_and_ranks_the_recent_window():
    s = MemberStats()
    for i in range(1, 20):
        s.observe_latency(i / 100, now=0)
    assert s.p95(min_samples=20) is None
    s.observe_latency(0.20, now=0)
    assert s.p95(min_samples=20) == pytest.approx(0.19)
