"""What routers and the `lifeline` command say to the cost guard (request-reply, not events).

cost.reserve  ReserveRequest -> ReserveReply   before any provider call (services/router/admission.py)
cost.settle   Settle -> {}                      after it, with the real cost
cost.spend    SpendQuery -> SpendReport          `lifeline spend`

KV bucket `limits`, key LIMITS_SPEND_KEY: {"spend": [<a budget entry of lifeline.yaml>, ...]},
budgets set at run time by `lifeline budget set`; an entry replaces the file's entry with the
same scope, id and period, or adds one for a single team, user or key.
"""

from datetime import datetime

from pydantic import BaseModel, Field

from .completion import ResultError

LIMITS_SPEND_KEY = "spend"


class ReserveRequest(BaseModel):
    request_id: str
    route: str
    user_id: str | None = None
    key_id: str | None = None
    team_id: str | None = None
    estimate_usd: float = Field(ge=0)  # first member's prices x (estimated input + max output)
    estimate_tokens: int = Field(ge=0)
    hold_s: float = Field(default=60.0, gt=0)  # released by then if never settled (router died)


class ReserveReply(BaseModel):
    admitted: bool
    reserved: bool = False  # False: no budget or limit applies; nothing to settle
    error: ResultError | None = None  # why not, when not admitted
    # Admitted on the route's cheaper downgrade_chain only: a team, user or key budget whose
    # action is `downgrade` is spent (says which). A global one switches the route for everyone
    # through the control KV instead.
    downgrade: str | None = None


class Settle(BaseModel):
    request_id: str
    cost_usd: float = Field(ge=0)


class SpendQuery(BaseModel):
    top: int = Field(default=20, gt=0)  # entities per scope, by spend today


class ScopeSpend(BaseModel):
    scope: str  # global | team | user | key
    scope_id: str  # "*" for global
    today_usd: float
    month_usd: float
    pending_usd: float = 0.0  # reserved by requests in flight (or settled, not yet in the ledger)
    tokens_today: int = 0


class BudgetStanding(BaseModel):
    budget: str  # "<scope>:<id>:<period>" as in lifeline.yaml ("*" = each)
    scope: str
    scope_id: str
    period: str
    period_start: datetime
    resets_at: datetime
    limit_usd: float
    spent_usd: float
    pending_usd: float
    headroom_usd: float  # limit - spent - pending (negative when over)
    action: str
    level: str  # ok | warning | exceeded


class SpendReport(BaseModel):
    at: datetime
    day_start: datetime
    month_start: datetime
    scopes: list[ScopeSpend] = Field(default_factory=list)
    budgets: list[BudgetStanding] = Field(default_factory=list)
    by_model_today: dict[str, float] = Field(default_factory=dict)  # "provider/model" -> USD
    reservations_in_flight: int = 0
    error: str | None = None
