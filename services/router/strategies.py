"""How a route orders its members for one request. Pure: stats and `now` are passed in, and
randomness comes from a passed-in `random.Random`.

- `priority`: the chain as written.
- `weighted`: a weighted random order (Efraimidis-Spirakis keys u^(1/w), so the first member is
  drawn by weight and so is each fallback after it); weight 0 = only as a fallback.
- `least-latency`: lowest EWMA of recent answer times first. A member with no recent sample is
  tried first (optimistic), so a member that was slow once is measured again, not shunned for ever.
- `cost`: cheapest first, priced on the request's estimated input and output tokens.
- `headroom`: most rate-limit room first (vendors' x-ratelimit-* / anthropic-ratelimit-* headers).

Whatever the strategy, a member whose last answer said it has (almost) no rate-limit room left
goes behind the members that have room, until its limit resets: a 429 avoided is a call saved
(`room_first`, applied after the strategy like slow start: the member that answers instead is a
fallback, and the answer says `degraded`).
"""

import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.providers.headroom import Headroom
from services.runtime.config.routing import Strategy

from .logic import Member

EWMA_ALPHA = 0.3  # weight of the newest sample: about the last 6 answers matter (Envoy's peak EWMA is similar)
LATENCY_STALE_S = 30.0  # an average older than this is no longer known: measure the member again
P95_WINDOW = 200  # answers kept per member for its p95 (hedging)
HEADROOM_FLOOR = 0.05  # less than 5 % of a limit left: behind the members with room
HEADROOM_TTL_S = 60.0  # trust a reading without a reset time this long (limits are per minute)


@dataclass
class MemberStats:
    """What the router has seen of one provider/model."""

    ewma_s: float | None = None
    last_at: float = -math.inf
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=P95_WINDOW))
    room: float | None = None  # fraction of the tightest rate limit left
    room_until: float = -math.inf

    def observe_latency(self, seconds: float, now: float) -> None:
        fresh = self.ewma_s is None or now - self.last_at > LATENCY_STALE_S
        self.ewma_s = seconds if fresh else EWMA_ALPHA * seconds + (1 - EWMA_ALPHA) * self.ewma_s
        self.last_at = now
        self.recent.append(seconds)

    def observe_headroom(self, headroom: Headroom, now: float) -> None:
        self.room = headroom.fraction
        ttl = headroom.reset_s if headroom.reset_s is not None else HEADROOM_TTL_S
        self.room_until = now + ttl

    def latency(self, now: float) -> float | None:
        """The EWMA, or None when there is no sample recent enough to trust."""
        if self.ewma_s is None or now - self.last_at > LATENCY_STALE_S:
            return None
        return self.ewma_s

    def p95(self, min_samples: int) -> float | None:
        if len(self.recent) < min_samples:
            return None
        ranked = sorted(self.recent)
        return ranked[min(len(ranked) - 1, math.ceil(0.95 * len(ranked)) - 1)]

    def headroom(self, now: float) -> float | None:
        return self.room if now < self.room_until else None


def estimated_cost(member: Member, input_tokens: int, output_tokens: int) -> float:
    return (input_tokens * member.prices.input_per_mtok
            + output_tokens * member.prices.output_per_mtok) / 1_000_000


def order(
    strategy: Strategy,
    members: list[Member],
    *,
    stats: Mapping[str, MemberStats],
    now: float,
    rng: random.Random,
    weights: Mapping[str, float] | None = None,
    input_tokens: int = 0,
    output_tokens: int = 0,
) -> list[Member]:
    """The members in the order this request should try them (before availability and slow start)."""
    none = MemberStats()
    seen = {m.key: stats.get(m.key, none) for m in members}
    if strategy == "weighted":
        weights = weights or {}

        def key(m: Member) -> float:
            w = weights.get(m.key, 1.0)
            return rng.random() ** (1 / w) if w > 0 else -1.0
        keys = {m.key: key(m) for m in members}  # drawn once per member, in chain order
        ranked = sorted(members, key=lambda m: -keys[m.key])
    elif strategy == "least-latency":
        def latency_key(m: Member) -> tuple[int, float]:
            latency = seen[m.key].latency(now)
            return (0, 0.0) if latency is None else (1, latency)
        ranked = sorted(members, key=latency_key)
    elif strategy == "cost":
        ranked = sorted(members, key=lambda m: estimated_cost(m, input_tokens, output_tokens))
    elif strategy == "headroom":
        ranked = sorted(members, key=lambda m: -_room(seen[m.key], now))
    else:  # priority
        ranked = list(members)
    return ranked


def room_first(members: list[Member], *, stats: Mapping[str, MemberStats], now: float) -> list[Member]:
    """Stable: members with room keep their order, the nearly exhausted follow in theirs."""
    none = MemberStats()
    return sorted(members, key=lambda m: _room(stats.get(m.key, none), now) < HEADROOM_FLOOR)


def _room(stats: MemberStats, now: float) -> float:
    """Known room, or 1.0: a vendor that reports no limits is not held against itself."""
    room = stats.headroom(now)
    return 1.0 if room is None else room
