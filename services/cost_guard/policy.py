"""Who pays, and which budgets and limits apply to them: pure, from lifeline.yaml plus the
budgets set at run time (`lifeline budget set`, KV `limits`)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.runtime.config.budgets import BudgetsConfig, RateLimit, SpendBudget

from . import periods

ScopeKind = Literal["global", "team", "user", "key"]
GLOBAL_ID = "*"


@dataclass(frozen=True, slots=True)
class Payer:
    user_id: str | None = None
    key_id: str | None = None
    team_id: str | None = None

    def scopes(self) -> list[tuple[ScopeKind, str]]:
        """Every scope this payer's spend counts in: always global, then team, user, key."""
        found: list[tuple[ScopeKind, str]] = [("global", GLOBAL_ID)]
        if self.team_id:
            found.append(("team", self.team_id))
        if self.user_id:
            found.append(("user", self.user_id))
        if self.key_id:
            found.append(("key", self.key_id))
        return found


@dataclass(frozen=True, slots=True, order=True)
class CounterKey:
    """One row of spend, tokens and requests: a scope's minute, day, month or rate bucket."""

    scope: str
    scope_id: str
    period: str  # minute | day | month | rate
    start: int  # epoch seconds, UTC


@dataclass(frozen=True, slots=True)
class Applied:
    """A budget as it applies to one scope id (a "*" budget applies to each id separately)."""

    budget: SpendBudget
    scope_id: str

    @property
    def instance(self) -> str:
        """Names the budget's state for this id: one crossing per instance and period."""
        return f"{self.budget.scope}:{self.scope_id}:{self.budget.period}"

    def counter(self, now: datetime) -> CounterKey:
        start = periods.epoch(periods.start_of(self.budget.period, now))
        return CounterKey(self.budget.scope, self.scope_id, self.budget.period, start)


class Policy:
    """The budgets and limits in force: the file's, with run-time entries laid over them."""

    def __init__(self, config: BudgetsConfig, overrides: Iterable[SpendBudget] = ()) -> None:
        self.config = config
        self.budgets: dict[str, SpendBudget] = {b.name: b for b in config.spend}
        self.budgets.update({b.name: b for b in overrides})

    def budget(self, scope: str, scope_id: str, period: str) -> SpendBudget | None:
        """A budget for this one id wins over the scope's "*" budget."""
        return (self.budgets.get(f"{scope}:{scope_id}:{period}")
                or self.budgets.get(f"{scope}:{GLOBAL_ID}:{period}"))

    def applied(self, payer: Payer) -> list[Applied]:
        found = []
        for scope, scope_id in payer.scopes():
            for period in ("day", "month"):
                budget = self.budget(scope, scope_id, period)
                if budget is not None:
                    found.append(Applied(budget, scope_id))
        return found

    def applied_by_instance(self, instance: str) -> Applied | None:
        scope, _, rest = instance.partition(":")
        scope_id, _, period = rest.rpartition(":")
        budget = self.budget(scope, scope_id, period)
        return Applied(budget, scope_id) if budget is not None else None

    def rate_limits(self, payer: Payer) -> list[tuple[Literal["user", "key"], str, RateLimit]]:
        found: list[tuple[Literal["user", "key"], str, RateLimit]] = []
        if payer.user_id:
            limit = self.config.rate_limits.for_("user", payer.user_id)
            if limit.any:
                found.append(("user", payer.user_id, limit))
        if payer.key_id:
            limit = self.config.rate_limits.for_("key", payer.key_id)
            if limit.any:
                found.append(("key", payer.key_id, limit))
        return found
