"""How long to wait, read from Retry-After and the vendors' rate-limit headers (pure: `now` given)."""

from datetime import datetime, timezone

import pytest

from services.providers.retry_after import (
    parse_duration,
    parse_http_date,
    parse_retry_after,
    parse_rfc3339,
    rate_limit_reset,
)

NOW = datetime(2015, 10, 21, 7, 27, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "120"}, 120.0),
        ({"retry-after": "1.5"}, 1.5),  # non-standard floats: the SDKs accept them
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 60.0),  # RFC 9110 HTTP-date
        ({"Retry-After": "Wed, 21 Oct 2015 07:00:00 GMT"}, 0.0),  # already past: no negative wait
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # ms first, as the SDKs do
        ({"retry-after-ms": "junk", "retry-after": "9"}, 9.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0s", 0.0),
        ("17", 17.0),  # Azure OpenAI sends bare seconds in the same header
        ("", None),
        ("6 m", None),
        ("5x", None),
        ("1s junk", None),
    ],
)
def test_openai_durations(text: str, seconds: float | None) -> None:
    result = parse_duration(text)
    if seconds is None:
        assert result is None
    else:
        assert result == pytest.approx(seconds)


def test_http_date_uses_the_injected_now() -> None:
    later = datetime(2015, 10, 21, 7, 27, 30, tzinfo=timezone.utc)
    assert parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT", now=later) == 30.0
    assert parse_http_date("not a date", now=later) is None


def test_rfc3339() -> None:
    assert parse_rfc3339("2015-10-21T07:27:42Z", now=NOW) == 42.0
    assert parse_rfc3339("2015-10-21T09:27:42+02:00", now=NOW) == 42.0
    assert parse_rfc3339("2015-10-21T07:27:42.500000Z", now=NOW) == 42.5
    assert parse_rfc3339("tomorrow", now=NOW) is None


def test_openai_reset_of_the_exhausted_limit_wins() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-remaining-tokens": "159976",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    assert rate_limit_reset(headers, now=NOW) == 1.0


def test_openai_reset_with_no_limit_at_zero_waits_for_the_latest() -> None:
    # One request larger than the tokens left: nothing reads 0, yet the token reset is the wait.
    headers = {"x-ratelimit-reset-requests": "12ms", "x-ratelimit-reset-tokens": "2s"}
    assert rate_limit_reset(headers, now=NOW) == 2.0


def test_anthropic_resets_are_rfc3339() -> None:
    headers = {
        "anthropic-ratelimit-requests-remaining": "12",
        "anthropic-ratelimit-requests-reset": "2015-10-21T07:27:05Z",
        "anthropic-ratelimit-input-tokens-remaining": "0",
        "anthropic-ratelimit-input-tokens-reset": "2015-10-21T07:27:40Z",
        "anthropic-ratelimit-output-tokens-remaining": "8000",
        "anthropic-ratelimit-output-tokens-reset": "2015-10-21T07:27:59Z",
    }
    assert rate_limit_reset(headers, now=NOW) == 40.0


def test_no_reset_headers() -> None:
    assert rate_limit_reset({"content-type": "application/json"}, now=NOW) is None
    assert rate_limit_reset({"x-ratelimit-reset-tokens": "garbage"}, now=NOW) is None
