"""Rate-limit room read from vendors' headers (services/providers/headroom.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from services.providers.headroom import read_headroom

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def test_openai_headers_give_the_tightest_limit_and_its_reset():
    h = read_headroom({"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "450",
                       "x-ratelimit-reset-requests": "120ms", "X-RateLimit-Limit-Tokens": "30000",
                       "X-RateLimit-Remaining-Tokens": "3000", "X-RateLimit-Reset-Tokens": "6m0s"}, now=NOW)
    assert (h.limit, h.fraction, h.reset_s) == ("tokens", pytest.approx(0.1), pytest.approx(360))


def test_anthropic_headers_with_rfc3339_resets():
    reset = (NOW + timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    h = read_headroom({"anthropic-ratelimit-requests-limit": "50",
                       "anthropic-ratelimit-requests-remaining": "5",
                       "anthropic-ratelimit-requests-reset": reset,
                       "anthropic-ratelimit-input-tokens-limit": "40000",
                       "anthropic-ratelimit-input-tokens-remaining": "39000"}, now=NOW)
    assert (h.limit, h.fraction, h.reset_s) == ("requests", pytest.approx(0.1), pytest.approx(20))


@pytest.mark.parametrize("headers", [
    {},
    {"x-ratelimit-remaining-requests": "5"},  # no limit: no fraction
    {"x-ratelimit-limit-requests": "0", "x-ratelimit-remaining-requests": "0"},
    {"x-ratelimit-limit-requests": "many", "x-ratelimit-remaining-requests": "5"},
])
def test_no_usable_headers_means_no_headroom(headers):
    assert read_headroom(headers, now=NOW) is None


def test_a_fraction_is_clamped_to_zero_and_one():
    h = read_headroom({"x-ratelimit-limit-requests": "10", "x-ratelimit-remaining-requests": "-3"}, now=NOW)
    assert h.fraction == 0.0
