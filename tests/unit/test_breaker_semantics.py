"""The circuit breaker, state by state, with a hand-driven clock."""

import pytest

from services.router.breaker import BreakerConfig, CircuitBreaker, State

CFG = BreakerConfig(window_size=10, minimum_calls=4, failure_rate_threshold=50,
                    slow_call_rate_threshold=80, slow_call_s=1.0, wait_in_open_s=30,
                    half_open_calls=2)


def run(b: CircuitBreaker, now: float, outcomes: str) -> None:
    """f = failed, o = ok, s = ok but slow; each must be allowed."""
    for o in outcomes:
        assert b.allow(now)
        b.record(now, failed=o == "f", duration_s=2.0 if o == "s" else 0.1)


def test_no_verdict_before_the_minimum_number_of_calls():
    b = CircuitBreaker(CFG)
    run(b, 0, "fff")
    assert b.state is State.CLOSED
    run(b, 0, "f")
    assert b.state is State.OPEN


def test_opens_at_the_failure_rate_threshold_not_below():
    b = CircuitBreaker(CFG)
    run(b, 0, "offo")  # 2 of 4 = 50 %: at the threshold
    assert b.state is State.OPEN
    b = CircuitBreaker(CFG)
    run(b, 0, "ofoo")  # 25 %
    assert b.state is State.CLOSED


def test_slow_calls_open_it_on_their_own_rate():
    b = CircuitBreaker(CFG)
    run(b, 0, "ssso")  # 75 % slow: under 80
    assert b.state is State.CLOSED
    run(b, 0, "s")  # 4 of 5 = 80 %
    assert b.state is State.OPEN


def test_count_window_forgets_the_oldest_calls():
    b = CircuitBreaker(CFG)
    run(b, 0, "oooff" + "o" * 10)  # the two failures slid out of the 10-call window
    assert b.rates(0) == (0.0, 0.0, 10)
    run(b, 0, "ffff")  # 4 of 10
    assert b.state is State.CLOSED
    run(b, 0, "f")  # 5 of 10
    assert b.state is State.OPEN


def test_time_window_forgets_calls_older_than_its_span():
    b = CircuitBreaker(BreakerConfig(window="time", window_size=60, minimum_calls=4,
                                     failure_rate_threshold=50))
    run(b, 0, "fff")
    run(b, 61, "o")  # the failures are over a minute old
    assert b.rates(61) == (0.0, 0.0, 1)
    run(b, 62, "ooo")
    assert b.state is State.CLOSED


def test_open_refuses_calls_until_the_wait_is_over_then_lets_only_the_probes_through():
    b = CircuitBreaker(CFG)
    run(b, 100, "ffff")
    assert (b.state, b.retry_at) == (State.OPEN, 130)
    assert not b.allow(129.9)
    assert b.allow(130) and b.state is State.HALF_OPEN
    assert b.allow(130)
    assert not b.allow(130)  # two probes out: no third call


def test_successful_probes_close_it_with_a_fresh_window():
    b = CircuitBreaker(CFG)
    run(b, 0, "ffff")
    assert b.allow(30) and b.allow(30)
    b.record(30, failed=False, duration_s=0.1)
    assert b.state is State.HALF_OPEN
    b.record(30, failed=False, duration_s=0.1)
    assert b.state is State.CLOSED
    assert b.rates(30) == (0.0, 0.0, 0)


def test_a_failed_probe_round_opens_it_again_and_the_wait_restarts():
    b = CircuitBreaker(CFG)
    run(b, 0, "ffff")
    assert b.allow(30) and b.allow(30)
    b.record(31, failed=True, duration_s=0.1)
    b.record(31, failed=False, duration_s=0.1)  # 50 %: at the threshold
    assert (b.state, b.retry_at, b.opened_count) == (State.OPEN, 61, 2)


def test_a_cancelled_probe_is_given_back():
    b = CircuitBreaker(CFG)
    run(b, 0, "ffff")
    assert b.allow(30) and b.allow(30) and not b.allow(30)
    b.cancel()
    assert b.allow(30)


def test_late_results_of_calls_from_before_the_opening_do_not_count():
    b = CircuitBreaker(CFG)
    run(b, 0, "ffff")
    b.record(1, failed=False, duration_s=0.1)
    assert b.state is State.OPEN and b.rates(1)[2] == 0


@pytest.mark.parametrize("bad", [
    {"window_size": 0}, {"minimum_calls": 0}, {"half_open_calls": 0},
    {"failure_rate_threshold": 0}, {"slow_call_rate_threshold": 101},
])
def test_nonsense_settings_are_refused(bad):
    with pytest.raises(ValueError):
        BreakerConfig(**bad)
