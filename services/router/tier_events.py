"""When a route moves between tiers, pure: the route's tier is the worst tier it answered with
over the last `window` seconds, and a change of that is what tier.changed reports.

Worst-over-a-window rather than the last answer's tier: under a flaky primary a route's answers
alternate full/degraded many times a second, and an event per flip would flood the status
page; the window makes the route read `degraded` until a whole window has gone by without a
fallback. Recovery is reported with the first answer after that window.

Several routers see the same change; each publishes it with the Nats-Msg-Id
`tier.<route>.<to_tier>.<time bucket>` (bucket = window-long slices of wall-clock time), so the
STATUS stream keeps one of them within its duplicate window. Two routers whose changes fall on
either side of a bucket edge both get through: at most two events per change, never a storm.
"""

import hashlib
import math
from dataclasses import dataclass, field

from schemas.completion import Tier

SEVERITY: dict[Tier, int] = {"full": 0, "degraded": 1, "minimal": 2, "emergency": 3}


@dataclass(frozen=True)
class TierChange:
    route: str
    from_tier: Tier | None
    to_tier: Tier
    event_id: str


@dataclass
class TierTracker:
    window: float  # seconds
    last_seen: dict[str, dict[Tier, float]] = field(default_factory=dict)  # route -> tier -> t
    current: dict[str, Tier] = field(default_factory=dict)

    def observe(self, route: str, tier: Tier, now: float, wall_now: float) -> TierChange | None:
        """Record an answer's tier; the change to publish, if the route's tier moved."""
        seen = self.last_seen.setdefault(route, {})
        seen[tier] = now
        worst = max((t for t, at in seen.items() if now - at <= self.window), key=SEVERITY.__getitem__)
        before = self.current.get(route)
        if worst == before:
            return None
        self.current[route] = worst
        return TierChange(route, before, worst, event_id(route, worst, wall_now, self.window))


def event_id(route: str, tier: Tier, wall_now: float, window: float) -> str:
    bucket = math.floor(wall_now / window)
    # Route names are free text; the id must stay a plain token.
    digest = hashlib.sha256(route.encode()).hexdigest()[:16]
    return f"tier.{digest}.{tier}.{bucket}"
