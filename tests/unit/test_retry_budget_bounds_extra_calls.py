"""The retry budget (router/retry.py): retries add at most a fraction of the load; full jitter."""

import random

import pytest

from services.router.retry import RetryBudget, backoff_s


def test_retries_are_capped_at_the_ratio_of_requests_in_the_window():
    budget = RetryBudget(ratio=0.2, window_s=10.0)
    for i in range(100):
        budget.request(i * 0.01)
    granted = sum(budget.try_spend(1.0) for _ in range(50))
    assert granted == 20


def test_the_window_slides_so_old_requests_earn_nothing():
    budget = RetryBudget(ratio=0.5, window_s=10.0)
    for _ in range(10):
        budget.request(0.0)
    assert sum(budget.try_spend(1.0) for _ in range(10)) == 5
    assert not budget.try_spend(10.5)  # the requests that earned them are gone
    for _ in range(4):
        budget.request(10.6)
    assert not budget.try_spend(10.7)  # 2 earned, but the 5 spent at 1.0 still count
    assert sum(budget.try_spend(11.5) for _ in range(10)) == 2  # now they have expired


def test_the_floor_lets_a_quiet_route_retry():
    budget = RetryBudget(ratio=0.2, window_s=10.0, min_per_s=0.1)
    budget.request(0.0)
    assert budget.try_spend(0.0)  # 0.1/s x 10 s + 0.2 = 1.2 retries
    assert not budget.try_spend(0.0)


def test_a_steady_load_with_every_call_retried_adds_at_most_the_ratio():
    budget = RetryBudget(ratio=0.2, window_s=5.0)
    calls = retries = 0
    for tick in range(10_000):  # 100 requests/s for 100 s, each wanting a retry
        now = tick / 100
        budget.request(now)
        calls += 1
        retries += budget.try_spend(now)
    assert retries / calls == pytest.approx(0.2, abs=0.01)


def test_full_jitter_stays_under_the_exponential_cap_and_the_maximum():
    rng = random.Random(3)
    for retry in range(8):
        cap = min(1.0, 0.05 * 2 ** retry)
        draws = [backoff_s(retry, base_s=0.05, cap_s=1.0, rng=rng) for _ in range(2000)]
        assert 0 <= min(draws) and max(draws) <= cap
        assert sum(draws) / len(draws) == pytest.approx(cap / 2, rel=0.1)  # uniform, not fixed
