"""The spend ledger: llm.completed and billed llm.attempt events, recorded once each.

A request's llm.completed cost includes its billed attempts (a hedged loser, a call that failed
after the vendor did the work). Attempts can reach us first, or alone (the router died before
llm.completed), so both are recorded and each row says what it adds to spend:

- a billed attempt counts its cost if its request has not completed yet (a placeholder request
  row keeps the sum: attempts_usd), else nothing;
- llm.completed counts its cost minus what its attempts already counted.

Upserts on the request row serialize an attempt and its completion even when two cost-guard
instances take them at the same time. Idempotent on the row id (request id, <request id>.<n>).
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, delete, update
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.events import LlmAttempt, LlmCompleted
from services.runtime.config.budgets import RunawayConfig

from . import periods, tables
from .decide import Counter
from .policy import GLOBAL_ID, CounterKey, Payer
from .store import add_to_counters, insert


@dataclass(frozen=True, slots=True)
class Charge:
    id: str
    request_id: str
    kind: str  # request | attempt
    payer: Payer
    occurred_at: datetime
    cost_usd: float
    input_tokens: int = 0
    output_tokens: int = 0
    route: str | None = None
    provider: str | None = None
    model: str | None = None
    status: str | None = None
    tier: str | None = None


def completed_charge(e: LlmCompleted) -> Charge:
    return Charge(id=e.request_id, request_id=e.request_id, kind="request",
                  payer=Payer(e.user_id, e.key_id, e.team_id), occurred_at=e.occurred_at,
                  cost_usd=e.cost_usd, input_tokens=e.usage.input_tokens,
                  output_tokens=e.usage.output_tokens, route=e.route, provider=e.provider,
                  model=e.model, status=e.status, tier=e.tier)


def attempt_charge(e: LlmAttempt) -> Charge | None:
    """Only an attempt the vendor billed is a charge."""
    if e.cost_usd <= 0:
        return None
    return Charge(id=f"{e.request_id}.{e.attempt_no}", request_id=e.request_id, kind="attempt",
                  payer=Payer(e.user_id, e.key_id, e.team_id), occurred_at=e.occurred_at,
                  cost_usd=e.cost_usd, input_tokens=e.usage.input_tokens,
                  output_tokens=e.usage.output_tokens, route=e.route, provider=e.provider,
                  model=e.model, status="ok" if e.outcome == "ok" else "error")


@dataclass
class Recorded:
    charges: int  # new rows (duplicates are not)
    counted_usd: float
    counters: dict[CounterKey, Counter]  # the counter rows touched, with their new values
    by_scope: dict[str, float]  # USD added per scope kind (metrics)


async def record(conn: AsyncConnection, charges: Sequence[Charge], now: datetime,
                 runaway: RunawayConfig) -> Recorded:
    unique = list({c.id: c for c in reversed(charges)}.values())  # a redelivered copy in the batch
    # In id order: two batches lock the same rows in the same order, so they cannot deadlock.
    attempts = sorted((c for c in unique if c.kind == "attempt"), key=lambda c: c.id)
    completions = sorted((c for c in unique if c.kind == "request"), key=lambda c: c.id)
    deltas: dict[CounterKey, dict[str, float]] = defaultdict(
        lambda: {"spent_usd": 0.0, "tokens": 0})
    counted_total, new_rows = 0.0, 0
    for charge, counted in await _record_attempts(conn, attempts, now):
        new_rows += 1
        counted_total += counted
        scopes = charge.payer.scopes()  # those its event carried; always global
        _add(deltas, scopes, charge, counted, 0, runaway)
    for charge, counted, attempts_usd, scoped in await _record_completions(conn, completions, now):
        new_rows += 1
        counted_total += counted
        tokens = charge.input_tokens + charge.output_tokens
        _add(deltas, [("global", GLOBAL_ID)], charge, counted, tokens, runaway)
        payer = charge.payer.scopes()[1:]
        # Attempts that did not carry who pays were counted globally only: the payer's scopes
        # get the whole request here.
        _add(deltas, payer, charge, counted + (0.0 if scoped else attempts_usd), tokens, runaway)
    if completions:  # recorded: its reservation has done its job
        r = tables.reservations.c
        await conn.execute(delete(tables.reservations).where(
            r.request_id.in_([c.request_id for c in completions])))
    by_scope: dict[str, float] = defaultdict(float)
    for key, delta in deltas.items():
        if key.period == "day":
            by_scope[key.scope] += delta["spent_usd"]
    touched = await add_to_counters(conn, deltas)
    return Recorded(new_rows, counted_total, touched, dict(by_scope))


async def _record_attempts(conn: AsyncConnection, attempts: list[Charge], now: datetime,
                           ) -> list[tuple[Charge, float]]:
    if not attempts:
        return []
    l = tables.ledger.c
    stmt = insert(conn, tables.ledger).on_conflict_do_nothing().returning(l.id)
    new_ids = {r.id for r in await conn.execute(stmt, [_row(a, now, counted=0.0) for a in attempts])}
    fresh = [a for a in attempts if a.id in new_ids]
    if not fresh:
        return []
    # The request's row: a placeholder until llm.completed arrives. Not returned when the
    # request has completed already: then its cost included this attempt.
    sums: dict[str, float] = defaultdict(float)
    first: dict[str, Charge] = {}
    for a in fresh:
        sums[a.request_id] += a.cost_usd
        first.setdefault(a.request_id, a)
    stmt = insert(conn, tables.ledger)
    stmt = stmt.on_conflict_do_update(
        index_elements=[l.id], set_={"attempts_usd": l.attempts_usd + stmt.excluded.attempts_usd},
        where=l.completed.is_(False)).returning(l.id)
    placeholders = [{**_row(first[rid], now, counted=0.0), "id": rid, "kind": "request",
                     "cost_usd": 0.0, "attempts_usd": usd, "status": None,
                     "attempts_scoped": _scoped(first[rid].payer)}
                    for rid, usd in sorted(sums.items())]
    open_requests = {r.id for r in await conn.execute(stmt, placeholders)}
    counting = [a for a in fresh if a.request_id in open_requests]
    if counting:
        await conn.execute(
            update(tables.ledger).where(l.id.in_([a.id for a in counting]))
            .values(counted_usd=l.cost_usd))
    return [(a, a.cost_usd if a.request_id in open_requests else 0.0) for a in fresh]


async def _record_completions(conn: AsyncConnection, completions: list[Charge], now: datetime,
                              ) -> list[tuple[Charge, float, float, bool]]:
    """(charge, counted, attempts counted before, whether those were in the payer's scopes)."""
    if not completions:
        return []
    l = tables.ledger.c
    stmt = insert(conn, tables.ledger)
    counted = stmt.excluded.cost_usd - l.attempts_usd
    payer_fields = ("route", "provider", "model", "user_id", "key_id", "team_id", "status",
                    "tier", "input_tokens", "output_tokens", "occurred_at", "recorded_at")
    stmt = stmt.on_conflict_do_update(
        index_elements=[l.id],
        set_={"completed": True, "cost_usd": stmt.excluded.cost_usd,
              # never below zero: a completion cheaper than its attempts adds nothing
              "counted_usd": case((counted > 0, counted), else_=0.0),
              **{f: getattr(stmt.excluded, f) for f in payer_fields}},
        where=l.completed.is_(False),
    ).returning(l.id, l.counted_usd, l.attempts_usd, l.attempts_scoped)
    rows = await conn.execute(stmt, [
        {**_row(c, now, counted=c.cost_usd), "completed": True} for c in completions])
    by_id = {c.id: c for c in completions}
    return [(by_id[r.id], r.counted_usd, r.attempts_usd, r.attempts_scoped) for r in rows]


def _add(deltas: dict[CounterKey, dict[str, float]], scopes: list[tuple[str, str]],
         charge: Charge, usd: float, tokens: int, runaway: RunawayConfig) -> None:
    at = charge.occurred_at
    for scope, scope_id in scopes:
        for period in ("day", "month"):
            key = CounterKey(scope, scope_id, period, periods.epoch(periods.start_of(period, at)))
            deltas[key]["spent_usd"] += usd
            deltas[key]["tokens"] += tokens
        if scope in ("global", "key"):  # runaway detection watches these rates
            start = periods.bucket_start(at.timestamp(), runaway.bucket_s)
            deltas[CounterKey(scope, scope_id, "rate", start)]["spent_usd"] += usd


def _scoped(payer: Payer) -> bool:
    return bool(payer.user_id or payer.key_id or payer.team_id)


def _row(c: Charge, now: datetime, *, counted: float) -> dict[str, object]:
    return {"id": c.id, "request_id": c.request_id, "kind": c.kind, "completed": False,
            "occurred_at": c.occurred_at.astimezone(UTC), "recorded_at": now,
            "route": c.route, "provider": c.provider, "model": c.model,
            "user_id": c.payer.user_id, "key_id": c.payer.key_id, "team_id": c.payer.team_id,
            "status": c.status, "tier": c.tier, "input_tokens": c.input_tokens,
            "output_tokens": c.output_tokens, "cost_usd": c.cost_usd, "attempts_usd": 0.0,
            "counted_usd": counted, "attempts_scoped": False}
