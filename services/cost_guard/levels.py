"""Budget levels, pure: when a budget is crossed or restored, and what that sets in motion.

A budget instance (one budget for one scope id) has a level per period: ok, warning, exceeded.
It only ever rises within a period; each rise is announced once (the store's conditional update
decides which cost-guard instance announces). It falls back to ok when a new period begins or
its limit is raised above what is spent, and `budget.restored` says so.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from schemas import subjects
from schemas.control import DOWNGRADE_PREFIX, Downgrade, Killswitch, killswitch_key
from schemas.events import BudgetExceeded, BudgetRestored, BudgetWarning
from services.runtime.config import LifelineConfig

from . import periods
from .policy import Applied, Policy

OK, WARNING, EXCEEDED = 0, 1, 2
LEVEL_NAMES = {OK: "ok", WARNING: "warning", EXCEEDED: "exceeded"}
ACTOR = "cost-guard"  # the actor of every control change the cost guard makes
BUDGET_ACTOR = "cost-guard:budget"  # kill switches a budget engaged: released when it is restored


@dataclass(frozen=True, slots=True)
class Crossing:
    applied: Applied
    period_start: int  # epoch seconds
    level: int  # WARNING or EXCEEDED
    spent_usd: float
    limit_usd: float


@dataclass(frozen=True, slots=True)
class State:
    """A budget instance's stored level."""

    instance: str
    period_start: int
    level: int
    limit_usd: float


@dataclass(frozen=True, slots=True)
class Restoration:
    state: State
    applied: Applied | None  # None: the budget is gone from the configuration
    level: int  # the level it falls to (OK or WARNING)
    reason: Literal["new_period", "limit_raised", "manual"]
    period_start: int  # the period it now counts in
    spent_usd: float


@dataclass(frozen=True, slots=True)
class Effect:
    """Something to announce or to write, carried through the outbox (exactly once per crossing).

    kind "event": publish `payload` on `target` with Nats-Msg-Id `msg_id`.
    kind "engage" / "release": set the control KV key `target` to `payload` if it is not already
    so (release only what the cost guard itself engaged).
    """

    kind: Literal["event", "engage", "release"]
    target: str
    payload: str
    msg_id: str


def level_of(spent_usd: float, applied: Applied) -> int:
    budget = applied.budget
    if spent_usd >= budget.limit_usd:
        return EXCEEDED
    return WARNING if spent_usd >= budget.limit_usd * budget.warn_pct / 100 else OK


def ledger_crossings(spent: dict[str, tuple[Applied, int, float]]) -> list[Crossing]:
    """Crossings seen by the ledger: instance -> (applied, period start, spent in that period)."""
    found = []
    for applied, start, usd in spent.values():
        level = level_of(usd, applied)
        if level:
            found.append(Crossing(applied, start, level, usd, applied.budget.limit_usd))
    return found


def restorations(states: Iterable[State], policy: Policy, spent: dict[str, float],
                 now: datetime) -> list[Restoration]:
    """States to bring down: a new period began, or the limit now leaves room.

    `spent` is each instance's spend (ledger plus reservations) in its current period.
    """
    found = []
    for state in states:
        if state.level == OK:
            continue
        applied = policy.applied_by_instance(state.instance)
        if applied is None:
            found.append(Restoration(state, None, OK, "manual", state.period_start, 0.0))
            continue
        current = periods.epoch(periods.start_of(applied.budget.period, now))
        usd = spent.get(state.instance, 0.0)
        if current > state.period_start:
            found.append(Restoration(state, applied, level_of(usd, applied), "new_period",
                                     current, usd))
        elif state.level == EXCEEDED and usd < applied.budget.limit_usd \
                and applied.budget.limit_usd > state.limit_usd:
            found.append(Restoration(state, applied, level_of(usd, applied), "limit_raised",
                                     current, usd))
    return found


def crossing_effects(crossing: Crossing, config: LifelineConfig, source: str) -> list[Effect]:
    applied, budget = crossing.applied, crossing.applied.budget
    fields = dict(source=source, scope=budget.scope, scope_id=applied.scope_id,
                  period=budget.period, period_start=periods.from_epoch(crossing.period_start),
                  limit_usd=budget.limit_usd, spent_usd=round(crossing.spent_usd, 6),
                  action=budget.action)
    tag = f"{applied.instance}.{crossing.period_start}"
    if crossing.level == WARNING:
        event = BudgetWarning(id=f"budget.warning.{tag}", threshold_pct=budget.warn_pct, **fields)
        return [Effect("event", subjects.BUDGET_WARNING, event.model_dump_json(), event.id)]
    event = BudgetExceeded(id=f"budget.exceeded.{tag}", **fields)
    effects = [Effect("event", subjects.BUDGET_EXCEEDED, event.model_dump_json(), event.id)]
    reason = (f"{budget.period} budget of {budget.scope} {applied.scope_id} exceeded: "
              f"${crossing.spent_usd:.4f} of ${budget.limit_usd:.2f}")
    for key, value in _controls(applied, config, engaged=True, reason=reason):
        effects.append(Effect("engage", key, value, f"engage.{key}.{tag}"))
    return effects


def restoration_effects(r: Restoration, config: LifelineConfig, source: str,
                        still_exceeded: Iterable[Applied]) -> list[Effect]:
    """budget.restored when it was exceeded, and the controls it held released, unless another
    exceeded budget holds the same control."""
    if r.state.level != EXCEEDED:
        return []
    scope, _, rest = r.state.instance.partition(":")
    scope_id, _, period = rest.rpartition(":")
    event = BudgetRestored(
        id=f"budget.restored.{r.state.instance}.{r.state.period_start}.{r.period_start}",
        source=source, scope=scope, scope_id=scope_id, period=period,  # type: ignore[arg-type]
        period_start=periods.from_epoch(r.period_start),
        limit_usd=r.applied.budget.limit_usd if r.applied else r.state.limit_usd,
        spent_usd=round(r.spent_usd, 6), action=r.applied.budget.action if r.applied else None,
        reason=r.reason)
    effects = [Effect("event", subjects.BUDGET_RESTORED, event.model_dump_json(), event.id)]
    if r.applied is None:
        return effects
    held = {key for a in still_exceeded for key, _ in _controls(a, config, engaged=True, reason="")}
    reason = f"{period} budget of {scope} {scope_id} restored ({r.reason})"
    for key, value in _controls(r.applied, config, engaged=False, reason=reason):
        if key not in held:
            effects.append(Effect("release", key, value, f"release.{key}.{event.id}"))
    return effects


def _controls(applied: Applied, config: LifelineConfig, *, engaged: bool,
              reason: str) -> list[tuple[str, str]]:
    """The control KV keys a budget's action sets, with the value to write."""
    budget = applied.budget
    if budget.action == "downgrade" and budget.scope != "global":
        return []  # one team's, user's or key's requests: downgraded in the reserve answer
    if budget.action == "downgrade":
        routes = budget.routes if budget.routes is not None else [
            name for name, route in config.routes.items() if route.downgrade_chain]
        value = Downgrade(active=engaged, reason=reason, actor=ACTOR).model_dump_json()
        return [(DOWNGRADE_PREFIX + route, value) for route in routes]
    if budget.action == "killswitch":
        scope = "all" if budget.scope == "global" else f"key:{applied.scope_id}"
        value = Killswitch(engaged=engaged, reason=reason, actor=BUDGET_ACTOR,
                           scope=scope).model_dump_json()
        return [(killswitch_key(scope), value)]
    return []
