"""How much room a vendor's rate limits leave, read from the headers on every answer. Pure.

Header names:
- OpenAI (and Azure, Groq, Together): `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`,
  resets as Go-style durations (platform.openai.com/docs/guides/rate-limits, "Rate limits in
  headers").
- Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,
  reset}`, resets as RFC 3339 timestamps (docs.anthropic.com/en/api/rate-limits).

The router prefers members with room (router/strategies.py); a vendor that sends none of these
headers has no Headroom, and is neither preferred nor avoided for it.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from services.providers.retry_after import parse_duration, parse_rfc3339

_OPENAI = ("requests", "tokens")
_ANTHROPIC = ("requests", "tokens", "input-tokens", "output-tokens")


@dataclass(frozen=True, kw_only=True)
class Headroom:
    fraction: float  # remaining / limit of the tightest limit the vendor reported, 0..1
    limit: str  # which one: "requests", "tokens", ...
    reset_s: float | None = None  # seconds until that limit refills, if the vendor said


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def read_headroom(headers: Mapping[str, str], *, now: datetime) -> Headroom | None:
    """The tightest of the vendor's rate limits, or None when it reports none."""
    lowered = {key.lower(): value for key, value in headers.items()}
    found: list[Headroom] = []
    for name in _OPENAI:
        limit = _number(lowered.get(f"x-ratelimit-limit-{name}"))
        remaining = _number(lowered.get(f"x-ratelimit-remaining-{name}"))
        if limit and remaining is not None:
            reset = lowered.get(f"x-ratelimit-reset-{name}")
            found.append(Headroom(fraction=min(max(remaining / limit, 0.0), 1.0), limit=name,
                                  reset_s=parse_duration(reset) if reset else None))
    for name in _ANTHROPIC:
        limit = _number(lowered.get(f"anthropic-ratelimit-{name}-limit"))
        remaining = _number(lowered.get(f"anthropic-ratelimit-{name}-remaining"))
        if limit and remaining is not None:
            reset = lowered.get(f"anthropic-ratelimit-{name}-reset")
            found.append(Headroom(fraction=min(max(remaining / limit, 0.0), 1.0), limit=name,
                                  reset_s=parse_rfc3339(reset, now=now) if reset else None))
    return min(found, key=lambda h: h.fraction) if found else None
