"""Gradual return (router/slow_start.py): a member's share of first attempts ramps from 0 to 1."""

import pytest

from services.router.slow_start import SlowStart


def admitted(ramp: SlowStart, now: float, n: int, member: str = "a/m", provider: str = "a") -> int:
    return sum(ramp.admit(member, provider, now) for _ in range(n))


def test_no_ramp_means_everything_is_admitted():
    ramp = SlowStart(10.0)
    assert admitted(ramp, 0, 100) == 100
    off = SlowStart(0.0)
    off.begin("a/m", 0)
    assert admitted(off, 0.1, 100) == 100


@pytest.mark.parametrize("at, share", [(0.0, 0.0), (2.5, 0.25), (5.0, 0.5), (9.0, 0.9)])
def test_the_share_is_exactly_linear_in_time(at, share):
    ramp = SlowStart(10.0)
    ramp.begin("a/m", 100.0)
    assert ramp.share(("a/m", "a"), 100.0 + at) == pytest.approx(share)
    assert admitted(ramp, 100.0 + at, 1000) == pytest.approx(1000 * share, abs=1)


def test_after_the_window_the_ramp_is_forgotten():
    ramp = SlowStart(10.0)
    ramp.begin("a/m", 0)
    assert admitted(ramp, 10.0, 50) == 50
    assert ramp.started == {} and ramp.credit == {}


def test_a_provider_wide_return_ramps_each_of_its_members_and_the_slower_ramp_wins():
    ramp = SlowStart(10.0)
    ramp.begin("a", 0.0)  # the health monitor said the provider is up
    ramp.begin("a/m", 5.0)  # and this member's breaker closed later
    assert ramp.share(("a/m", "a"), 6.0) == pytest.approx(0.1)
    assert ramp.share(("a/x", "a"), 6.0) == pytest.approx(0.6)
    assert ramp.share(("b/m", "b"), 6.0) == 1.0


def test_a_new_return_restarts_the_ramp():
    ramp = SlowStart(10.0)
    ramp.begin("a/m", 0.0)
    ramp.begin("a/m", 8.0)
    assert ramp.share(("a/m", "a"), 9.0) == pytest.approx(0.1)
