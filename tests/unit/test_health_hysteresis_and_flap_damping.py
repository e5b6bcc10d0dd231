"""A provider's state: N failures to go down, M answers to come back, and a flapping provider
held at `degraded` instead of flooding the bus. Pure: synthetic time, no bus."""

from typing import Any

import pytest

from services.health_monitor.signals import Sample, verdict
from services.health_monitor.states import ProviderTracker, Rules
from services.runtime.config.health import HealthConfig


def tracker(**health: Any) -> ProviderTracker:
    h = HealthConfig.model_validate(health)
    return ProviderTracker("openai", Rules(hysteresis=h.hysteresis, degraded=h.degraded,
                                           canary=h.canary, latency_p95_ms=h.degraded.latency_p95_ms))


def feed(t: ProviderTracker, at: float, outcome: str, *, latency_ms: float = 100.0,
         probe: bool = False, model: str | None = "gpt-4o-mini", status_code: int | None = None,
         ) -> tuple[str, str] | None:
    """One call's outcome, then the decision, applied as the edge would: (state, reason) if changed."""
    t.observe(model, Sample(at=at, verdict=verdict(outcome, status_code), latency_ms=latency_ms,
                            probe=probe, error=None if outcome == "ok" else f"{outcome}: boom"))
    proposal = t.decide(at)
    if proposal is None:
        return None
    t.adopt(proposal.state, proposal.reason, at, t.state)
    return proposal.state, proposal.reason


def test_first_answer_gives_the_first_verdict_and_n_failures_take_it_down():
    t = tracker()
    assert feed(t, 0.0, "ok") == ("up", "answering")
    assert feed(t, 1.0, "server_error") is None
    assert feed(t, 2.0, "timeout") is None
    assert feed(t, 3.0, "server_error") == ("down", "server_error")
    assert t.decide(3.5) is None  # said once


def test_fewer_than_n_failures_in_a_row_never_take_it_down():
    t = tracker()
    feed(t, 0.0, "ok")
    changes = []
    for i in range(1, 40, 3):  # two failures, then an answer, over and over
        changes += [feed(t, i, "server_error"), feed(t, i + 1, "connection"), feed(t, i + 2, "ok")]
    # Failing two calls in three is degraded (error rate), never down.
    assert [c for c in changes if c] == [("degraded", "error_rate")]


def test_coming_back_takes_m_answers_and_the_outage_does_not_linger_as_degraded():
    t = tracker(hysteresis={"successes_to_up": 3}, degraded={"min_samples": 3})
    feed(t, 0.0, "ok")
    for i in range(1, 6):
        feed(t, float(i), "server_error")
    assert t.state == "down"
    assert feed(t, 10.0, "ok") is None
    assert feed(t, 10.5, "ok") is None
    # The window still holds five failures; they came before the recovery and do not count.
    assert feed(t, 11.0, "ok") == ("up", "answering")


@pytest.mark.parametrize("outcome", ["bad_request", "context_too_long", "content_policy"])
def test_the_callers_own_errors_say_nothing_about_the_provider(outcome: str):
    t = tracker()
    feed(t, 0.0, "ok")
    for i in range(1, 20):
        assert feed(t, float(i), outcome) is None
    assert t.state == "up"


def test_a_capped_probe_of_a_reasoning_model_is_not_a_failure():
    """An OpenAI reasoning model refuses max_tokens with a 400; one that takes it may answer
    nothing but reasoning: both are the probe's shortfall, not the provider's."""
    t = tracker()
    feed(t, 0.0, "ok", probe=True)
    for i in range(1, 10):
        assert feed(t, float(i), "bad_request", probe=True, status_code=400) is None
    assert t.state == "up"
    # A 404 is different: the vendor lacks the model (the router fails over on it too).
    for i in range(10, 13):
        feed(t, float(i), "bad_request", probe=True, status_code=404)
    assert t.state == "down"


def test_rate_limiting_latency_and_error_rate_degrade_an_answering_provider():
    t = tracker(degraded={"min_samples": 5, "latency_p95_ms": 1000, "window_s": 30})
    feed(t, 0.0, "ok")
    changes = [feed(t, 1 + i * 0.1, "ok", latency_ms=2500) for i in range(5)]
    assert ("degraded", "latency") in changes
    t = tracker(degraded={"min_samples": 5, "window_s": 30})
    feed(t, 0.0, "ok")
    changes = [feed(t, 1 + i * 0.1, "rate_limited") for i in range(5)]
    assert ("degraded", "rate_limited") in changes and t.state == "degraded"
    t = tracker(degraded={"min_samples": 8, "error_rate": 0.25, "window_s": 30})
    feed(t, 0.0, "ok")
    changes = [feed(t, 1 + i * 0.1, "server_error" if i % 3 == 0 else "ok") for i in range(9)]
    assert ("degraded", "error_rate") in changes
    # ... and it clears once the window has moved past the bad calls.
    assert [feed(t, 40 + i, "ok") for i in range(10)].count(("up", "answering")) == 1


def test_wrong_answers_from_the_canary_degrade_it_with_reason_quality():
    t = tracker()
    feed(t, 0.0, "ok")
    t.observe_canary(passed=0, checked=3, failures=["exact: expected 'x'"])
    proposal = t.decide(1.0)
    assert proposal is not None and (proposal.state, proposal.reason) == ("degraded", "quality")
    assert proposal.evidence["canary_pass_rate"] == 0.0
    t.adopt("degraded", "quality", 1.0, "up")
    t.observe_canary(passed=3, checked=3, failures=[])
    assert t.decide(2.0) is None  # 3 of 6: still below the threshold
    t.observe_canary(passed=3, checked=3, failures=[])
    assert (t.decide(3.0).state, t.decide(3.0).reason) == ("up", "answering")


def flap(t: ProviderTracker, *, start: float, seconds: float, period_s: float, every_s: float,
         ) -> list[tuple[str, str]]:
    """The provider fails for period_s, answers for period_s, ...; a call every every_s."""
    changes = []
    steps = int(seconds / every_s)
    for i in range(steps):
        at = start + i * every_s
        failing = int((at - start) / period_s) % 2 == 0
        if (change := feed(t, at, "server_error" if failing else "ok")) is not None:
            changes.append(change)
    return changes


def test_a_provider_flapping_every_2s_for_a_minute_makes_a_handful_of_transitions():
    t = tracker()  # the shipped defaults: N 3, M 3, a fall within 120 s of a recovery, 60 s stable
    feed(t, 0.0, "ok")
    # Ten calls a second: each 2-second phase is long enough to pass N or M on its own.
    changes = flap(t, start=1.0, seconds=60, period_s=2.0, every_s=0.1)
    print(f"\nflapping every 2 s for 60 s, 10 calls/s: {len(changes)} transitions: {changes}")
    assert len(changes) <= 5
    assert changes[:2] == [("down", "server_error"), ("up", "answering")]
    assert t.state == "degraded" and t.reason == "flapping"
    # Steady again: it stays held for stable_s, then says so once.
    settled = [c for i in range(700) if (c := feed(t, 61.0 + i * 0.1, "ok"))]
    assert settled == [("up", "answering")]


def test_an_outage_that_passes_through_degraded_is_not_a_flap():
    t = tracker(degraded={"min_samples": 3})
    feed(t, 0.0, "ok")
    changes = [feed(t, float(i), "server_error") for i in range(1, 4)]
    assert [c for c in changes if c] == [("degraded", "error_rate"), ("down", "server_error")]
    changes = [feed(t, 10 + i * 0.5, "ok") for i in range(3)]
    assert [c for c in changes if c] == [("up", "answering")]
    # Falling again within the flap window of that recovery is the flap.
    changes = [feed(t, 20.0 + i, "timeout") for i in range(3)]
    assert [c for c in changes if c] == [("degraded", "flapping")]


def test_a_flapping_provider_that_then_stays_down_is_called_down_after_stable_s():
    t = tracker()
    feed(t, 0.0, "ok")
    flap(t, start=1.0, seconds=20, period_s=2.0, every_s=0.1)
    assert t.flapping
    changes = [c for i in range(700) if (c := feed(t, 21.0 + i * 0.1, "timeout"))]
    assert changes == [("down", "timeout")]
