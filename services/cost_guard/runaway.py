"""Runaway detection, pure: a key's (or everyone's) spend rate against its own recent past.

The ledger adds every charge to fixed-size rate buckets (global and per key). The current rate is
the spend of the last `window_s`; the baseline is the average rate over the `baseline_s` before
that window, counted from the key's first spend in it, so a key seen for only a few minutes is
not judged against an hour of silence. A key with less than `min_history_s` of history has no
baseline and is never called a runaway: a new key is not an anomaly.
"""

from dataclasses import dataclass

from schemas import subjects
from schemas.control import Killswitch, killswitch_key
from schemas.events import CostAnomaly
from services.runtime.config.budgets import RunawayConfig

from .levels import Effect

# A key stopped for running away stays stopped until an operator releases it.
RUNAWAY_ACTOR = "cost-guard:runaway"


@dataclass(frozen=True, slots=True)
class Rate:
    scope: str  # "global" | "key"
    scope_id: str
    rate_usd_per_min: float
    baseline_usd_per_min: float

    @property
    def factor(self) -> float:
        return self.rate_usd_per_min / self.baseline_usd_per_min if self.baseline_usd_per_min \
            else float("inf")


def window_starts(now_s: float, cfg: RunawayConfig) -> tuple[int, int]:
    """(oldest bucket worth reading, first bucket of the current window)."""
    current_from = int((now_s - cfg.window_s) // cfg.bucket_s) * cfg.bucket_s + cfg.bucket_s
    return current_from - cfg.baseline_s, current_from


def rates(buckets: dict[tuple[str, str], dict[int, float]], now_s: float,
          cfg: RunawayConfig) -> list[Rate]:
    """Each scope's current rate and baseline; None baseline (too little history) is skipped."""
    oldest, current_from = window_starts(now_s, cfg)
    found = []
    for (scope, scope_id), spent in buckets.items():
        current = sum(usd for start, usd in spent.items() if start >= current_from)
        earlier = {start: usd for start, usd in spent.items() if oldest <= start < current_from}
        if not earlier:
            continue
        history_s = current_from - min(earlier)
        if history_s < cfg.min_history_s:
            continue
        window = max(now_s - current_from, cfg.bucket_s)  # the current bucket is partial
        found.append(Rate(scope, scope_id, current / window * 60,
                          sum(earlier.values()) / history_s * 60))
    return found


def is_spike(rate: Rate, cfg: RunawayConfig) -> bool:
    return (rate.rate_usd_per_min >= cfg.min_rate_usd_per_min
            and rate.rate_usd_per_min > cfg.factor * rate.baseline_usd_per_min)


def judge(buckets: dict[tuple[str, str], dict[int, float]], active: set[tuple[str, str]],
          now_s: float, cfg: RunawayConfig) -> tuple[list[Rate], list[tuple[str, str]]]:
    """(new spikes to announce, episodes that are over). `active`: spikes already announced."""
    measured = {(r.scope, r.scope_id): r for r in rates(buckets, now_s, cfg)}
    spikes = [r for key, r in measured.items() if is_spike(r, cfg) and key not in active]
    # An episode ends when the rate is back under the factor; a key with no rate this window
    # (stopped, e.g. by its kill switch) is over too.
    over = [key for key in active if key not in measured or not is_spike(measured[key], cfg)]
    return spikes, over


def effects(rate: Rate, cfg: RunawayConfig, source: str, since_s: float) -> list[Effect]:
    """cost.anomaly, and with auto-kill the key's kill switch (never everyone's)."""
    kill = cfg.auto_kill and rate.scope == "key"
    event = CostAnomaly(
        id=f"cost.anomaly.{rate.scope}.{rate.scope_id}.{int(since_s)}", source=source,
        scope=rate.scope, scope_id=rate.scope_id,  # type: ignore[arg-type]
        rate_usd_per_min=round(rate.rate_usd_per_min, 6),
        baseline_usd_per_min=round(rate.baseline_usd_per_min, 6),
        factor=round(min(rate.factor, 1e9), 2), action="killswitch" if kill else "none")
    found = [Effect("event", subjects.COST_ANOMALY, event.model_dump_json(), event.id)]
    if kill:
        scope = f"key:{rate.scope_id}"
        switch = Killswitch(
            engaged=True, actor=RUNAWAY_ACTOR, scope=scope, reason=(
                f"runaway spend: ${rate.rate_usd_per_min:.4f}/min, {event.factor:g}x its "
                f"baseline of ${rate.baseline_usd_per_min:.4f}/min"))
        found.append(Effect("engage", killswitch_key(scope), switch.model_dump_json(),
                            f"engage.{killswitch_key(scope)}.{event.id}"))
    return found
