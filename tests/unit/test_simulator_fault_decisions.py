"""Fault decisions: the mode picks the outcome, flaky is a seeded fraction, timed modes expire."""

import pytest

from services.simulator.logic import Decision, FaultSettings, Vendor, decide


def _vendor(mode: str = "ok", *, seed: int = 0, name: str = "openai", now: float = 0.0, **fields: object) -> Vendor:
    vendor = Vendor(name, "openai", seed=seed)
    vendor.configure(FaultSettings(mode=mode, **fields), now)  # type: ignore[arg-type]
    return vendor


@pytest.mark.parametrize(
    ("mode", "outcome"),
    [("ok", "answer"), ("down", "down"), ("refuse", "refuse"), ("ratelimit", "ratelimit"),
     ("garbage", "garbage"), ("cut", "cut")],
)
def test_each_mode_decides_its_outcome_without_delay(mode: str, outcome: str) -> None:
    assert decide(_vendor(mode, latency_ms=500), now=1.0) == Decision(outcome, 0.0)  # type: ignore[arg-type]


def test_slow_answers_after_its_latency() -> None:
    assert decide(_vendor("slow", latency_ms=250), now=1.0) == Decision("answer", 0.25)


def _flaky_outcomes(vendor: Vendor, n: int) -> list[str]:
    return [decide(vendor, now=0.0).outcome for _ in range(n)]


def test_flaky_fails_the_configured_fraction_within_a_tight_bound() -> None:
    outcomes = _flaky_outcomes(_vendor("flaky", error_rate=0.3), 1000)
    errors = outcomes.count("error")
    # Binomial(1000, 0.3): sd ~ 14.5; +-3 sd. With the fixed seed the count is one fixed number.
    assert 256 <= errors <= 344
    assert set(outcomes) == {"error", "answer"}


def test_flaky_draws_repeat_with_the_same_seed_and_differ_with_another() -> None:
    first = _flaky_outcomes(_vendor("flaky", seed=7), 200)
    assert _flaky_outcomes(_vendor("flaky", seed=7), 200) == first
    assert _flaky_outcomes(_vendor("flaky", seed=8), 200) != first
    assert _flaky_outcomes(_vendor("flaky", seed=7, name="local"), 200) != first  # vendors draw apart


@pytest.mark.parametrize(("rate", "errors"), [(0.0, 0), (1.0, 100)])
def test_flaky_extremes(rate: float, errors: int) -> None:
    assert _flaky_outcomes(_vendor("flaky", error_rate=rate), 100).count("error") == errors


def test_reset_restarts_the_random_sequence_and_clears_mode_and_counters() -> None:
    vendor = _vendor("flaky")
    first = _flaky_outcomes(vendor, 50)
    vendor.counters.record("500", "m")
    vendor.reset()
    assert vendor.settings == FaultSettings()
    assert vendor.counters.total == 0
    vendor.configure(FaultSettings(mode="flaky"), 0.0)
    assert _flaky_outcomes(vendor, 50) == first


def test_a_timed_mode_reverts_to_ok_when_its_time_is_up() -> None:
    vendor = _vendor("down", now=100.0, for_s=5.0, context_window=50)
    assert decide(vendor, now=104.999).outcome == "down"
    assert vendor.describe(102.5)["remaining_s"] == 2.5
    assert decide(vendor, now=105.0).outcome == "answer"
    state = vendor.describe(105.0)
    assert (state["mode"], state["for_s"], state["remaining_s"]) == ("ok", None, None)
    # The context window is a property of the model, not a fault: it stays.
    assert vendor.context_window() == 50


def test_a_mode_without_for_s_never_expires() -> None:
    vendor = _vendor("down", now=0.0)
    assert decide(vendor, now=1e9).outcome == "down"
    assert vendor.describe(1e9)["remaining_s"] is None


def test_counters_count_by_status_and_model() -> None:
    vendor = _vendor()
    vendor.counters.record("200", "a")
    vendor.counters.record("503", "a")
    vendor.counters.record("reset", None)
    requests = vendor.describe(0.0)["requests"]
    assert requests == {"total": 3, "by_status": {"200": 1, "503": 1, "reset": 1}, "by_model": {"a": 2}}
    vendor.reset_counters()
    assert vendor.describe(0.0)["requests"] == {"total": 0, "by_status": {}, "by_model": {}}


def test_default_context_windows_by_format() -> None:
    assert Vendor("x", "openai").context_window() == 128_000
    assert Vendor("y", "anthropic").context_window() == 200_000
