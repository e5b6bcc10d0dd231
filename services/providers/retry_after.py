"""How long a vendor asks us to wait, read from response headers. Pure: `now` is passed in.

Sources:
- `retry-after-ms` then `retry-after` (seconds, or an HTTP-date per RFC 9110 §10.2.3): the order the
  official SDKs use (openai-python and anthropic-sdk-python `_parse_retry_after_header`).
- OpenAI `x-ratelimit-reset-requests` / `-tokens`: Go-style durations such as "1s", "6m0s", "20ms"
  (platform.openai.com/docs/guides/rate-limits, "Rate limits in headers"); Azure OpenAI sends bare
  seconds in the same headers.
- Anthropic `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset`: RFC 3339
  timestamps (docs.anthropic.com/en/api/rate-limits, "Response headers"). Choosing the reset of the
  limit whose `-remaining` is 0 follows anthropics/anthropic-sdk-typescript#357.
"""

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|h|m|s)")  # "ms" before "m": order matters
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

# (remaining header, reset header) pairs; the parser is chosen per vendor below.
_OPENAI_LIMITS = (
    ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
)
_ANTHROPIC_LIMITS = tuple(
    (f"anthropic-ratelimit-{name}-remaining", f"anthropic-ratelimit-{name}-reset")
    for name in ("requests", "tokens", "input-tokens", "output-tokens")
)


def _finite_seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return max(0.0, value) if math.isfinite(value) else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def parse_duration(text: str) -> float | None:
    """Seconds in an OpenAI reset header: "6m0s", "1.5s", "20ms", or bare seconds (Azure)."""
    text = text.strip()
    seconds = _finite_seconds(text)
    if seconds is not None:
        return seconds
    total, pos = 0.0, 0
    for part in _DURATION_PART.finditer(text):
        if part.start() != pos:
            return None
        total += float(part.group(1)) * _UNIT_SECONDS[part.group(2)]
        pos = part.end()
    return total if 0 < pos == len(text) else None


def parse_http_date(text: str, *, now: datetime) -> float | None:
    """Seconds from `now` until an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT"), never negative."""
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, (_aware(moment) - _aware(now)).total_seconds())


def parse_rfc3339(text: str, *, now: datetime) -> float | None:
    """Seconds from `now` until an RFC 3339 timestamp ("2024-06-20T18:30:00Z"), never negative."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return max(0.0, (_aware(moment) - _aware(now)).total_seconds())


def parse_retry_after(headers: Mapping[str, str], *, now: datetime) -> float | None:
    """The standard header, honoured on any status (Anthropic also sends it with 529)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    if "retry-after-ms" in lowered:
        millis = _finite_seconds(lowered["retry-after-ms"])
        if millis is not None:
            return millis / 1000.0
    value = lowered.get("retry-after")
    if value is None:
        return None
    seconds = _finite_seconds(value)
    return seconds if seconds is not None else parse_http_date(value, now=now)


def _reset_of_limits(
    lowered: Mapping[str, str],
    limits: tuple[tuple[str, str], ...],
    parse: Callable[[str], float | None],
) -> float | None:
    exhausted: list[float] = []
    every: list[float] = []
    for remaining_header, reset_header in limits:
        if reset_header not in lowered:
            continue
        seconds = parse(lowered[reset_header])
        if seconds is None:
            continue
        every.append(seconds)
        if lowered.get(remaining_header, "").strip() == "0":
            exhausted.append(seconds)
    # A 429 can come with no limit at 0 (one request bigger than the tokens left): then wait for
    # the latest reset, the only wait that is sure to be enough.
    chosen = exhausted or every
    return max(chosen) if chosen else None


def rate_limit_reset(headers: Mapping[str, str], *, now: datetime) -> float | None:
    """The vendor's own rate-limit reset, read only for a 429 (these headers ride on every answer)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    openai = _reset_of_limits(lowered, _OPENAI_LIMITS, parse_duration)
    if openai is not None:
        return openai
    return _reset_of_limits(lowered, _ANTHROPIC_LIMITS, lambda text: parse_rfc3339(text, now=now))
