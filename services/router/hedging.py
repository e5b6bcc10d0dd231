"""When a route sends a hedged attempt (Dean & Barroso, "The Tail at Scale", 2013: a second
request after the first has waited its p95 adds ~5 % load and cuts the tail). Pure."""

from services.runtime.config.routing import HedgeConfig

from .strategies import MemberStats


def hedge_after_s(hedge: HedgeConfig | None, stats: MemberStats | None) -> float | None:
    """Seconds to wait for the first attempt before starting the next member; None = never."""
    if hedge is None:
        return None
    if hedge.after == "p95" and stats is not None:
        p95 = stats.p95(hedge.min_samples)
        if p95 is not None:
            return p95
    return hedge.after_ms / 1000
