"""Cost guard: spend budgets, per-user and per-key rate limits, runaway detection, admission.

Periods are calendar periods in UTC (a day starts at 00:00 UTC, a month on the 1st).
"""

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ._base import Strict

Scope = Literal["global", "team", "user", "key"]
Period = Literal["day", "month"]
Action = Literal["downgrade", "block", "killswitch"]


class SpendBudget(Strict):
    """One budget. `id: "*"` gives every team, user or key of the scope a budget of its own."""

    scope: Scope
    id: str = Field(default="*", min_length=1)
    period: Period = "day"
    limit_usd: float = Field(gt=0)
    warn_pct: float = Field(default=80.0, gt=0, lt=100)  # budget.warning at this share of the limit
    # What happens at the hard limit: `block` refuses the scope's requests (budget_exhausted);
    # `downgrade` moves them to their route's downgrade_chain (global: the whole route, through
    # the control KV; team, user, key: that scope's requests only, told in the cost guard's
    # answer, and refused like `block` on a route without a downgrade_chain); `killswitch` stops
    # every call (global) or the key's calls (key scope).
    action: Action = "block"
    routes: list[str] | None = None  # downgrade: these routes; None = each with a downgrade_chain

    @property
    def name(self) -> str:
        return f"{self.scope}:{self.id}:{self.period}"

    @model_validator(mode="after")
    def _action_fits_scope(self) -> "SpendBudget":
        if self.scope == "global" and self.id != "*":
            raise ValueError("a global budget has no id (leave it out)")
        if self.action == "killswitch" and self.scope not in ("global", "key"):
            raise ValueError("action `killswitch` needs scope global or key (there is no "
                             "kill switch for one team or user: use `block`)")
        return self


class RateLimit(Strict):
    requests_per_minute: int | None = Field(default=None, gt=0)
    requests_per_day: int | None = Field(default=None, gt=0)
    tokens_per_day: int | None = Field(default=None, gt=0)  # input + output

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.requests_per_minute, self.requests_per_day,
                                          self.tokens_per_day))


class RateLimits(Strict):
    user: RateLimit = RateLimit()  # each user's own
    key: RateLimit = RateLimit()  # each API key's own
    overrides: dict[str, RateLimit] = {}  # "user:<id>" or "key:<id>": replaces the default

    @field_validator("overrides")
    @classmethod
    def _override_names(cls, value: dict[str, RateLimit]) -> dict[str, RateLimit]:
        for name in value:
            kind, _, ident = name.partition(":")
            if kind not in ("user", "key") or not ident:
                raise ValueError(f"override {name!r} must be named user:<id> or key:<id>")
        return value

    def for_(self, scope: Literal["user", "key"], ident: str) -> RateLimit:
        return self.overrides.get(f"{scope}:{ident}") or getattr(self, scope)

    @property
    def any(self) -> bool:
        return self.user.any or self.key.any or any(r.any for r in self.overrides.values())


class RunawayConfig(Strict):
    """A key's (or everyone's) spend rate against its own recent baseline."""

    enabled: bool = True
    factor: float = Field(default=10.0, gt=1)  # a spike: rate > factor x baseline
    window_s: int = Field(default=60, gt=0)  # the current rate is measured over this
    baseline_s: int = Field(default=3600, gt=0)  # against the average over this long before it
    min_history_s: int = Field(default=300, gt=0)  # a key seen for less has no baseline yet
    bucket_s: int = Field(default=10, gt=0)  # resolution of the rate counters
    min_rate_usd_per_min: float = Field(default=0.01, ge=0)  # quieter than this is never a spike
    auto_kill: bool = False  # engage the key's kill switch (control KV killswitch.key.<key_id>)
    check_every_s: float = Field(default=5.0, gt=0)


class AdmissionConfig(Strict):
    """How routers ask the cost guard before a call (services/router/admission.py)."""

    on_unreachable: Literal["open", "closed"] = "open"  # cost guard down: admit, or refuse
    timeout_ms: int = Field(default=1000, gt=0)  # slower than this counts as unreachable
    default_output_tokens: int = Field(default=512, gt=0)  # estimate when max_tokens is unset
    chars_per_token: float = Field(default=4.0, gt=0)  # input estimate (OpenAI's rule of thumb)
    settled_hold_s: float = Field(default=600.0, gt=0)  # a settled reservation awaits the ledger


class BudgetsConfig(Strict):
    """The `budgets` section of lifeline.yaml (optional; every field has a default)."""

    spend: list[SpendBudget] = []
    rate_limits: RateLimits = RateLimits()
    runaway: RunawayConfig = RunawayConfig()
    admission: AdmissionConfig = AdmissionConfig()
    tick_s: float = Field(default=1.0, gt=0)  # new periods, expired reservations, announcements

    @field_validator("spend")
    @classmethod
    def _unique(cls, value: list[SpendBudget]) -> list[SpendBudget]:
        seen: set[str] = set()
        for budget in value:
            if budget.name in seen:
                raise ValueError(f"two budgets for {budget.name}")
            seen.add(budget.name)
        return value

    @property
    def enforced(self) -> bool:
        """Routers ask the cost guard before each call only when something could refuse it."""
        return bool(self.spend) or self.rate_limits.any or (self.runaway.enabled
                                                            and self.runaway.auto_kill)


class RunTimeBudgets(Strict):
    """KV bucket `limits`, key `spend` (schemas/costs.py): budgets set by `lifeline budget set`.

    Each entry replaces the file's entry with the same scope, id and period, or adds one for a
    single team, user or key.
    """

    spend: list[SpendBudget] = []
