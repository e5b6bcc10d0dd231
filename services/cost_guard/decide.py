"""Admission, pure: may this request go out, given what is spent, reserved and counted?

The store locks the admission row of every budget and limit a batch of requests checks, reads the
spend and the reservations in flight, and hands them here as a Snapshot. Requests are decided one after another, each one's
reservation added to the snapshot before the next: a batch can no more overshoot a limit than
requests decided one by one.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from schemas.completion import ErrorKind, ResultError

from . import periods
from .levels import EXCEEDED, WARNING, Crossing
from .policy import Applied, CounterKey, Payer, Policy


@dataclass(frozen=True, slots=True)
class Ask:
    request_id: str
    payer: Payer
    estimate_usd: float
    estimate_tokens: int
    route: str | None = None


@dataclass(slots=True)
class Counter:
    spent_usd: float = 0.0  # from the ledger
    tokens: int = 0  # from the ledger
    requests: int = 0  # admitted (admission rows)


@dataclass(slots=True)
class Pending:
    usd: float = 0.0
    tokens: int = 0


@dataclass
class Snapshot:
    counters: dict[CounterKey, Counter] = field(default_factory=dict)
    pending: dict[tuple[str, str], Pending] = field(default_factory=lambda: defaultdict(Pending))
    killed_keys: dict[str, str] = field(default_factory=dict)  # key id -> reason

    def counter(self, key: CounterKey) -> Counter:
        return self.counters.setdefault(key, Counter())


@dataclass(slots=True)
class Verdict:
    admitted: bool
    reserved: bool = False
    error: ResultError | None = None
    counted: list[CounterKey] = field(default_factory=list)  # rows whose `requests` grow by one
    downgrade: str | None = None  # admitted on the downgrade chain only, because of this budget


def rows_needed(policy: Policy, payer: Payer, now: datetime) -> list[CounterKey]:
    """The counter rows a request's budgets and limits read. Empty: nothing applies to it."""
    keys = {a.counter(now) for a in policy.applied(payer)}
    for scope, ident, limit in policy.rate_limits(payer):
        if limit.requests_per_minute:
            keys.add(CounterKey(scope, ident, "minute", periods.epoch(periods.start_of("minute", now))))
        if limit.requests_per_day or limit.tokens_per_day:
            keys.add(CounterKey(scope, ident, "day", periods.epoch(periods.start_of("day", now))))
    return sorted(keys)


def decide(policy: Policy, asks: list[Ask], snap: Snapshot, now: datetime,
           ) -> tuple[list[Verdict], list[Crossing]]:
    verdicts: list[Verdict] = []
    crossings: dict[str, Crossing] = {}
    for ask in asks:
        verdict = _one(policy, ask, snap, now, crossings)
        if verdict.admitted and verdict.reserved:
            for key in verdict.counted:
                snap.counter(key).requests += 1
            for scope in ask.payer.scopes():
                pending = snap.pending[scope]
                pending.usd += ask.estimate_usd
                pending.tokens += ask.estimate_tokens
        verdicts.append(verdict)
    return verdicts, list(crossings.values())


def _one(policy: Policy, ask: Ask, snap: Snapshot, now: datetime,
         crossings: dict[str, Crossing]) -> Verdict:
    payer = ask.payer
    if payer.key_id and payer.key_id in snap.killed_keys:
        return Verdict(False, error=ResultError(
            kind=ErrorKind.LIMITED, message=(
                f"API key {payer.key_id} is stopped by its kill switch "
                f"({snap.killed_keys[payer.key_id]}); an operator releases it with "
                f"`lifeline killswitch release --scope key:{payer.key_id}`")))
    counted = []
    for scope, ident, limit in policy.rate_limits(payer):
        minute = CounterKey(scope, ident, "minute", periods.epoch(periods.start_of("minute", now)))
        day = CounterKey(scope, ident, "day", periods.epoch(periods.start_of("day", now)))
        checks = [
            (limit.requests_per_minute, minute, snap.counter(minute).requests + 1,
             "requests per minute", "minute"),
            (limit.requests_per_day, day, snap.counter(day).requests + 1, "requests per day", "day"),
            (limit.tokens_per_day, None, snap.counter(day).tokens + snap.pending[(scope, ident)].tokens
             + ask.estimate_tokens, "tokens per day", "day"),
        ]
        for allowed, row, would_be, what, period in checks:
            if allowed is None:
                continue
            if would_be > allowed:
                wait = periods.seconds_until_next(period, now)  # type: ignore[arg-type]
                return Verdict(False, error=ResultError(
                    kind=ErrorKind.LIMITED, retry_after_s=round(wait, 3), message=(
                        f"{scope} {ident} reached its limit of {allowed} {what}; it resets at "
                        f"{periods.next_start(period, now).isoformat()} "  # type: ignore[arg-type]
                        f"(in {wait:.0f}s)")))
            if row is not None:
                counted.append(row)
    downgrade = None
    for applied in policy.applied(payer):
        outcome = _check_budget(applied, ask, snap, now, crossings)
        if isinstance(outcome, ResultError):
            return Verdict(False, error=outcome)
        downgrade = downgrade or outcome
    return Verdict(True, reserved=True, counted=counted, downgrade=downgrade)


def _check_budget(applied: Applied, ask: Ask, snap: Snapshot, now: datetime,
                  crossings: dict[str, Crossing]) -> ResultError | str | None:
    """None: within the budget (or its action is not this request's to take); a ResultError:
    refused; a string: admitted on the cheaper chain, for this reason."""
    budget = applied.budget
    row = applied.counter(now)
    spent = snap.counter(row).spent_usd
    pending = snap.pending[(budget.scope, applied.scope_id)].usd
    projected = spent + pending + ask.estimate_usd
    level = EXCEEDED if projected > budget.limit_usd else (
        WARNING if projected >= budget.limit_usd * budget.warn_pct / 100 else 0)
    if level:
        crossing = Crossing(applied=applied, period_start=row.start, level=level,
                            spent_usd=spent + pending, limit_usd=budget.limit_usd)
        earlier = crossings.get(applied.instance)
        if earlier is None or earlier.level < level:
            crossings[applied.instance] = crossing
    if level != EXCEEDED:
        return None
    who = "everyone" if budget.scope == "global" else f"{budget.scope} {applied.scope_id}"
    if budget.action == "downgrade":
        if budget.scope == "global" or (budget.routes is not None and ask.route not in budget.routes):
            return None  # global: the control KV switches the route for everyone
        return (f"the {budget.period} budget of {who} is spent "
                f"(${spent + pending:.4f} of ${budget.limit_usd:.2f})")
    if budget.action in ("block", "killswitch"):
        wait = periods.seconds_until_next(budget.period, now)
        return ResultError(kind=ErrorKind.BUDGET_EXHAUSTED, retry_after_s=round(wait, 3), message=(
            f"the {budget.period} budget of {who} is spent: ${spent + pending:.4f} of "
            f"${budget.limit_usd:.2f} (this request would need ~${ask.estimate_usd:.4f}); "
            f"it resets at {periods.next_start(budget.period, now).isoformat()}"))
    return None
