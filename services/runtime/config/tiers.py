"""Tiers 3 and 4 (DESIGN.md): what answers when no model can, and how parked work drains.

Every field is defaulted, so an older lifeline.yaml still loads. Units are in the names or the
comments (seconds, requests per second, rapidfuzz scores from 0 to 100).
"""

from pydantic import Field

from ._base import Strict

# The response-cache bucket keeps nothing longer than this (schemas/streams.py RESPONSE_CACHE).
CACHE_MAX_TTL_S = 7 * 24 * 3600.0


class CachePolicy(Strict):
    """The response cache for one route (tier `minimal`)."""

    enabled: bool = True  # off for routes whose answers must never be served stale
    ttl_s: float = Field(default=3600.0, gt=0, le=CACHE_MAX_TTL_S)
    # rapidfuzz `ratio` (0-100, punctuation ignored) a stored conversation must reach to stand
    # in for this one; 100 = exact matches only. 95 takes typos and punctuation, not a changed
    # word ("a good book" vs "a good film" scores 92). Numbers must match exactly regardless.
    similarity: float = Field(default=95.0, ge=50, le=100)


class RouteTiers(Strict):
    """Per-route overrides; a field left out takes the `tiers:` default."""

    cache: CachePolicy | None = None
    static_answers: bool = True  # the FAQ and the rules may answer on this route


class DrainPolicy(Strict):
    """The durable queue (LLM_QUEUE) and how a backlog drains when a provider comes back."""

    # The drain's pace across all router instances (each takes its share): it starts at
    # start_rate after an outage and doubles every ramp_every_s while calls succeed.
    start_rate: float = Field(default=2.0, gt=0)  # requests per second
    max_rate: float = Field(default=50.0, gt=0)  # requests per second
    ramp_every_s: float = Field(default=10.0, gt=0)
    # After a 429 the rate halves and batch work pauses this long (or the Retry-After if longer).
    batch_pause_s: float = Field(default=30.0, ge=0)
    concurrency: int = Field(default=16, ge=1)  # messages in hand per priority per router
    ack_wait_s: float = Field(default=30.0, gt=0)  # a router silent this long loses the message
    max_deliver: int = Field(default=5, ge=1)  # deliveries before a message is dead-lettered
    retry_delay_s: float = Field(default=1.0, gt=0)  # first wait after an outage failure
    retry_delay_max_s: float = Field(default=30.0, gt=0)
    # A parked request without deadline_ms expires this long after it was queued.
    default_deadline_s: float = Field(default=24 * 3600.0, gt=0)
    callback_attempts: int = Field(default=4, ge=1)  # POSTs to callback_url before giving up
    callback_backoff_s: float = Field(default=0.5, gt=0)  # doubled after each failed POST
    callback_timeout_s: float = Field(default=10.0, gt=0)
    # Where answers may be POSTed ("https://hooks.example.com/"); empty: any http(s) URL.
    callback_url_prefixes: list[str] = Field(default_factory=list)


class TiersConfig(Strict):
    maintenance_message: str = (
        "Our assistant is temporarily unavailable. Please try again in a few minutes."
    )
    # Static answers: questions and answers, plus rules (a relative path is relative to this
    # file's directory). None: no static answers.
    faq_file: str | None = "faq.yaml"
    faq_similarity: float = Field(default=85.0, ge=50, le=100)  # rapidfuzz token_set_ratio
    cache: CachePolicy = CachePolicy()
    routes: dict[str, RouteTiers] = Field(default_factory=dict)
    queue: DrainPolicy = DrainPolicy()
    # A route's tier is the worst tier it answered with over this window: tier.changed is
    # published when that changes, not per request, and a flapping route does not flood.
    tier_window_s: float = Field(default=10.0, gt=0)

    def cache_for(self, route: str) -> CachePolicy:
        override = self.routes.get(route)
        return override.cache if override is not None and override.cache is not None else self.cache

    def static_answers_for(self, route: str) -> bool:
        override = self.routes.get(route)
        return override is None or override.static_answers
