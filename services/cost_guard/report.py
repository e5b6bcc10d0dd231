"""`lifeline spend`, pure: spend today and this month by scope, and each budget's headroom."""

from datetime import datetime

from schemas.costs import BudgetStanding, ScopeSpend, SpendReport

from . import periods
from .decide import Counter, Pending
from .levels import LEVEL_NAMES, State, level_of
from .policy import GLOBAL_ID, Applied, CounterKey, Policy

SCOPE_ORDER = {"global": 0, "team": 1, "user": 2, "key": 3}


def build(*, policy: Policy, today: dict[CounterKey, Counter], month: dict[CounterKey, Counter],
          pending: dict[tuple[str, str], Pending], states: list[State], now: datetime,
          by_model: dict[str, float], in_flight: int, top: int) -> SpendReport:
    day_start, month_start = periods.start_of("day", now), periods.start_of("month", now)
    today_by, month_by = _by_id(today), _by_id(month)
    ids = {key for key in [*today_by, *month_by] if key[0] in SCOPE_ORDER}
    ids.add(("global", GLOBAL_ID))
    spends = []
    for scope, scope_id in ids:
        day = today_by.get((scope, scope_id), Counter())
        spends.append(ScopeSpend(
            scope=scope, scope_id=scope_id, today_usd=round(day.spent_usd, 6),
            month_usd=round(month_by.get((scope, scope_id), Counter()).spent_usd, 6),
            pending_usd=round(pending.get((scope, scope_id), Pending()).usd, 6),
            tokens_today=day.tokens))
    spends.sort(key=lambda s: (SCOPE_ORDER[s.scope], -s.today_usd, s.scope_id))
    shown: dict[str, int] = {}
    scopes = []
    for s in spends:
        shown[s.scope] = shown.get(s.scope, 0) + 1
        if shown[s.scope] <= top:
            scopes.append(s)
    by_state = {s.instance: s for s in states}
    budgets = []
    for budget in policy.budgets.values():
        scope_ids = [budget.id] if budget.id != "*" or budget.scope == "global" else [
            s.scope_id for s in scopes if s.scope == budget.scope]
        for scope_id in scope_ids:
            applied = Applied(budget, scope_id)
            if policy.budget(budget.scope, scope_id, budget.period) is not budget:
                continue  # a budget of its own overrides the "*" one for this id
            budgets.append(_standing(applied, today_by if budget.period == "day" else month_by,
                                     pending, by_state.get(applied.instance), now))
    return SpendReport(at=now, day_start=day_start, month_start=month_start, scopes=scopes,
                       budgets=budgets, by_model_today={k: round(v, 6) for k, v in by_model.items()},
                       reservations_in_flight=in_flight)


def _standing(applied: Applied, rows: dict[tuple[str, str], Counter],
              pending: dict[tuple[str, str], Pending], state: State | None,
              now: datetime) -> BudgetStanding:
    budget = applied.budget
    spent = rows.get((budget.scope, applied.scope_id), Counter()).spent_usd
    held = pending.get((budget.scope, applied.scope_id), Pending()).usd
    start = periods.start_of(budget.period, now)
    level = level_of(spent + held, applied)
    if state is not None and state.period_start == periods.epoch(start):
        level = max(level, state.level)  # an admission refused at the limit says exceeded
    return BudgetStanding(
        budget=budget.name, scope=budget.scope, scope_id=applied.scope_id, period=budget.period,
        period_start=start, resets_at=periods.next_start(budget.period, now),
        limit_usd=budget.limit_usd, spent_usd=round(spent, 6), pending_usd=round(held, 6),
        headroom_usd=round(budget.limit_usd - spent - held, 6), action=budget.action,
        level=LEVEL_NAMES[level])


def _by_id(rows: dict[CounterKey, Counter]) -> dict[tuple[str, str], Counter]:
    return {(key.scope, key.scope_id): counter for key, counter in rows.items()}
