"""Exactly once per change, across cost-guard instances: conditional state updates decide who
announces, and what is to be announced goes into the outbox in the same transaction.

The outbox is sent by every instance (announcer.py): an event with its deterministic Nats-Msg-Id
(JetStream drops a second copy within the stream's duplicate window), a control write with a
compare-and-set. Sent rows are marked and pruned a day later.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from . import tables
from .levels import Crossing, Effect, Restoration, State
from .store import insert


@dataclass(frozen=True, slots=True)
class Queued:
    seq: int
    effect: Effect


async def rise(conn: AsyncConnection, crossings: Sequence[Crossing], now_s: float) -> list[Crossing]:
    """Raises each budget instance's level; returns the crossings this transaction won.

    A row from an earlier period is left for the tick to restore first (so that its
    budget.restored is not skipped), unless it was at ok.
    """
    if not crossings:
        return []
    s = tables.budget_states.c
    stmt = insert(conn, tables.budget_states)
    stmt = stmt.on_conflict_do_update(
        index_elements=[s.instance],
        set_={"level": stmt.excluded.level, "period_start": stmt.excluded.period_start,
              "limit_usd": stmt.excluded.limit_usd, "updated_at": stmt.excluded.updated_at},
        where=or_((s.period_start == stmt.excluded.period_start) & (s.level < stmt.excluded.level),
                  (s.period_start < stmt.excluded.period_start) & (s.level == 0)),
    ).returning(s.instance, s.level)
    ordered = sorted(crossings, key=lambda c: c.applied.instance)
    won = {(r.instance, r.level) for r in await conn.execute(stmt, [
        {"instance": c.applied.instance, "period_start": c.period_start, "level": c.level,
         "limit_usd": c.limit_usd, "updated_at": now_s} for c in ordered])}
    return [c for c in ordered if (c.applied.instance, c.level) in won]


async def states(conn: AsyncConnection) -> list[State]:
    s = tables.budget_states.c
    rows = await conn.execute(select(s.instance, s.period_start, s.level, s.limit_usd)
                              .order_by(s.instance))
    return [State(r.instance, r.period_start, r.level, r.limit_usd) for r in rows]


async def fall(conn: AsyncConnection, restorations: Iterable[Restoration], now_s: float,
               ) -> list[Restoration]:
    """Brings states down; returns those this transaction changed (guarded by the old values)."""
    won = []
    s = tables.budget_states.c
    for r in sorted(restorations, key=lambda r: r.state.instance):
        limit = r.applied.budget.limit_usd if r.applied else r.state.limit_usd
        result = await conn.execute(
            update(tables.budget_states)
            .where(s.instance == r.state.instance, s.period_start == r.state.period_start,
                   s.level == r.state.level, s.limit_usd == r.state.limit_usd)
            .values(level=r.level, period_start=r.period_start, limit_usd=limit, updated_at=now_s))
        if result.rowcount:
            won.append(r)
    return won


async def add(conn: AsyncConnection, effects: Iterable[Effect], now_s: float) -> int:
    rows = [{"msg_id": e.msg_id, "kind": e.kind, "target": e.target, "payload": e.payload,
             "created_at": now_s} for e in effects]
    if not rows:
        return 0
    await conn.execute(insert(conn, tables.outbox).on_conflict_do_nothing(), rows)
    return len(rows)


async def unsent(conn: AsyncConnection, limit: int = 200) -> list[Queued]:
    o = tables.outbox.c
    rows = await conn.execute(select(o.seq, o.kind, o.target, o.payload, o.msg_id)
                              .where(o.sent_at.is_(None)).order_by(o.seq).limit(limit))
    return [Queued(r.seq, Effect(r.kind, r.target, r.payload, r.msg_id)) for r in rows]


async def mark_sent(conn: AsyncConnection, seqs: Sequence[int], now_s: float) -> None:
    if seqs:
        o = tables.outbox.c
        await conn.execute(update(tables.outbox).where(o.seq.in_(seqs)).values(sent_at=now_s))


async def prune(conn: AsyncConnection, before_s: float) -> None:
    o = tables.outbox.c
    await conn.execute(delete(tables.outbox).where(o.sent_at < before_s))


async def first_to_announce(conn: AsyncConnection, key: str, revision: int) -> bool:
    """True for the one transaction that records this control revision as announced.

    "Differs", not "greater": a control bucket created anew starts counting at 1 again.
    """
    a = tables.announced.c
    stmt = insert(conn, tables.announced)
    stmt = stmt.on_conflict_do_update(
        index_elements=[a.key], set_={"revision": stmt.excluded.revision},
        where=a.revision != stmt.excluded.revision).returning(a.key)
    return (await conn.execute(stmt, {"key": key, "revision": revision})).first() is not None


async def active_anomalies(conn: AsyncConnection) -> set[tuple[str, str]]:
    a = tables.anomalies.c
    return {(r.scope, r.scope_id) for r in await conn.execute(select(a.scope, a.scope_id))}


async def start_anomaly(conn: AsyncConnection, scope: str, scope_id: str, rate: float,
                        now_s: float) -> bool:
    """True for the one instance that opens this runaway episode."""
    a = tables.anomalies.c
    stmt = insert(conn, tables.anomalies).on_conflict_do_nothing().returning(a.scope)
    row = (await conn.execute(stmt, {"scope": scope, "scope_id": scope_id, "since": now_s,
                                     "rate_usd_per_min": rate})).first()
    return row is not None


async def end_anomalies(conn: AsyncConnection, keys: Iterable[tuple[str, str]]) -> None:
    a = tables.anomalies.c
    for scope, scope_id in keys:
        await conn.execute(delete(tables.anomalies).where(a.scope == scope,
                                                          a.scope_id == scope_id))
