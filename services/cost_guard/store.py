"""Admission in SQL: admission rows locked in key order, one consistent read, reservations.

Every cost-guard instance decides against the same rows, so limits hold across instances of the
cost guard and of the router. A batch first upserts (and so locks) the admission row of every
budget and limit it checks, in CounterKey order (two batches cannot deadlock); then it reads the
spend and the reservations in flight in ONE statement (one snapshot: the ledger moves a request
from reservations to spend in one transaction, so a single read never sees it in both or
neither); then it commits its reservations before it answers. The ledger writes spend rows and
never takes admission rows, so a reservation does not wait for the ledger's durable commit.
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger, Float, String, and_, bindparam, cast, delete, event, false, func, literal, null, or_,
    select, union_all, update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from services.runtime.db import make_engine

from . import tables
from .decide import Ask, Counter, Pending, Snapshot
from .policy import CounterKey


def insert(conn: AsyncConnection, table: Any) -> Any:
    """INSERT with ON CONFLICT for the connection's dialect (both speak the same upsert)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def admission_engine(url: str) -> AsyncEngine:
    """Connections for admission's many tiny transactions (the ledger keeps the shared engine).

    Reservations are short-lived, so these connections do not wait for the disk to commit:
    PostgreSQL sessions with synchronous_commit off, SQLite connections with synchronous NORMAL
    (WAL). A crash of the database may forget the last few milliseconds of reservations; those
    requests are still charged when their llm.completed reaches the ledger, which commits
    durably. No pre-ping (a round trip per transaction): a connection found dead fails one
    transaction, which Guard retries on a fresh one.
    """
    if make_url(url).get_backend_name() == "sqlite":
        engine = make_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_no_fsync_per_commit)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=False,
                               connect_args={"server_settings": {"synchronous_commit": "off"}})


def _sqlite_no_fsync_per_commit(dbapi_conn: Any, _record: object) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


async def snapshot(conn: AsyncConnection, keys: Sequence[CounterKey],
                   killed_keys: dict[str, str]) -> Snapshot:
    admitted = await _lock(conn, keys)  # first: the lock orders us after earlier admissions
    spent, pending = await _read(conn, keys)
    counters = {k: Counter(spent.get(k, Counter()).spent_usd, spent.get(k, Counter()).tokens,
                           admitted.get(k, 0)) for k in keys}
    return Snapshot(counters=counters, pending=pending, killed_keys=dict(killed_keys))


async def _lock(conn: AsyncConnection, keys: Sequence[CounterKey]) -> dict[CounterKey, int]:
    """Creates missing admission rows and locks every one; returns the requests admitted."""
    if not keys:
        return {}
    a = tables.admissions.c
    stmt = insert(conn, tables.admissions)
    stmt = stmt.on_conflict_do_update(
        index_elements=[a.scope, a.scope_id, a.period, a.start],
        set_={"requests": a.requests + stmt.excluded.requests},  # + 0: a write, hence a lock
    ).returning(a.scope, a.scope_id, a.period, a.start, a.requests)
    rows = await conn.execute(stmt, [{**_key(k), "requests": 0} for k in sorted(keys)])
    return {CounterKey(r.scope, r.scope_id, r.period, r.start): r.requests for r in rows}


async def _read(conn: AsyncConnection, keys: Sequence[CounterKey],
                ) -> tuple[dict[CounterKey, Counter], dict[tuple[str, str], Pending]]:
    """Spend of these rows and the reservations per payer, in one statement (one snapshot)."""
    c, r = tables.counters.c, tables.reservations.c
    text_null, int_null = cast(null(), String), cast(null(), BigInteger)
    spend = select(
        literal("spend").label("kind"), c.scope, c.scope_id, c.period, c.start,
        c.spent_usd.label("usd"), c.tokens.label("tokens"),
        text_null.label("team_id"), text_null.label("user_id"), text_null.label("key_id"),
    ).where(or_(false(), *[and_(c.scope == k.scope, c.scope_id == k.scope_id,
                                c.period == k.period, c.start == k.start) for k in keys]))
    held = select(
        literal("held").label("kind"), text_null, text_null, text_null, int_null,
        cast(func.sum(r.amount_usd), Float), cast(func.sum(r.tokens), BigInteger),
        r.team_id, r.user_id, r.key_id,
    ).group_by(r.team_id, r.user_id, r.key_id)
    spent: dict[CounterKey, Counter] = {}
    pending: dict[tuple[str, str], Pending] = defaultdict(Pending)
    for row in await conn.execute(union_all(spend, held)):
        if row.kind == "spend":
            spent[CounterKey(row.scope, row.scope_id, row.period, row.start)] = Counter(
                row.usd, row.tokens)
            continue
        for scope in [("global", "*"), ("team", row.team_id), ("user", row.user_id),
                      ("key", row.key_id)]:
            if scope[1] is not None:
                pending[scope].usd += row.usd or 0.0
                pending[scope].tokens += int(row.tokens or 0)
    return spent, pending


async def pending(conn: AsyncConnection) -> dict[tuple[str, str], Pending]:
    """Reserved (or settled, not yet recorded) spend per scope (reports, restore checks)."""
    return (await _read(conn, []))[1]


async def reserve(conn: AsyncConnection, asks: Sequence[tuple[Ask, float]],
                  counted: Sequence[CounterKey], now_s: float) -> None:
    """Stores admitted requests' reservations ((ask, hold seconds)) and counts them."""
    if counted:
        bumps: dict[CounterKey, int] = defaultdict(int)
        for key in counted:
            bumps[key] += 1
        a = tables.admissions.c
        await conn.execute(
            update(tables.admissions).where(
                a.scope == bindparam("k_scope"), a.scope_id == bindparam("k_scope_id"),
                a.period == bindparam("k_period"), a.start == bindparam("k_start"))
            .values(requests=a.requests + bindparam("n")),
            [{"k_scope": k.scope, "k_scope_id": k.scope_id, "k_period": k.period,
              "k_start": k.start, "n": n} for k, n in sorted(bumps.items())])
    if asks:
        stmt = insert(conn, tables.reservations).on_conflict_do_nothing()  # a retried request
        await conn.execute(stmt, [
            {"request_id": a.request_id, "team_id": a.payer.team_id, "user_id": a.payer.user_id,
             "key_id": a.payer.key_id, "amount_usd": a.estimate_usd, "tokens": a.estimate_tokens,
             "settled": False, "created_at": now_s, "expires_at": now_s + hold}
            for a, hold in asks])


async def settle(conn: AsyncConnection, costs: Sequence[tuple[str, float]], now_s: float,
                 hold_s: float) -> int:
    """The real cost replaces the estimate until the ledger records the request."""
    if not costs:
        return 0
    r = tables.reservations.c
    result = await conn.execute(
        update(tables.reservations).where(r.request_id == bindparam("rid"))
        .values(amount_usd=bindparam("cost"), settled=True, expires_at=now_s + hold_s),
        [{"rid": rid, "cost": cost} for rid, cost in costs])
    return result.rowcount or 0


async def expire(conn: AsyncConnection, now_s: float) -> int:
    r = tables.reservations.c
    result = await conn.execute(delete(tables.reservations).where(r.expires_at < now_s))
    return result.rowcount or 0


async def in_flight(conn: AsyncConnection) -> int:
    return (await conn.execute(select(func.count()).select_from(tables.reservations))).scalar_one()


async def add_to_counters(conn: AsyncConnection, deltas: dict[CounterKey, dict[str, float]],
                          ) -> dict[CounterKey, Counter]:
    """The ledger's side: adds spend and tokens to counter rows (created as needed), in order."""
    if not deltas:
        return {}
    c = tables.counters.c
    stmt = insert(conn, tables.counters)
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.scope, c.scope_id, c.period, c.start],
        set_={"spent_usd": c.spent_usd + stmt.excluded.spent_usd,
              "tokens": c.tokens + stmt.excluded.tokens},
    ).returning(c.scope, c.scope_id, c.period, c.start, c.spent_usd, c.tokens)
    params = [{**_key(k), "spent_usd": 0.0, "tokens": 0, **deltas[k]} for k in sorted(deltas)]
    rows = await conn.execute(stmt, params)
    return {CounterKey(r.scope, r.scope_id, r.period, r.start): Counter(r.spent_usd, r.tokens)
            for r in rows}


async def read_counters(conn: AsyncConnection, keys: Sequence[CounterKey],
                        ) -> dict[CounterKey, Counter]:
    """Values of these rows, without locking them (reports and restore checks)."""
    return (await _read(conn, keys))[0] if keys else {}


async def counters_in(conn: AsyncConnection, period: str, start: int,
                      ) -> dict[CounterKey, Counter]:
    c = tables.counters.c
    rows = await conn.execute(select(tables.counters).where(c.period == period, c.start == start))
    return {CounterKey(r.scope, r.scope_id, r.period, r.start): Counter(r.spent_usd, r.tokens)
            for r in rows}


async def rate_buckets(conn: AsyncConnection, since: int) -> dict[tuple[str, str], dict[int, float]]:
    c = tables.counters.c
    rows = await conn.execute(select(c.scope, c.scope_id, c.start, c.spent_usd)
                              .where(c.period == "rate", c.start >= since))
    found: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for scope, scope_id, start, usd in rows:
        found[(scope, scope_id)][start] = usd
    return found


async def prune(conn: AsyncConnection, *, minute_before: int, rate_before: int) -> None:
    """Minute and rate rows are read for a short while only; day and month rows are history."""
    a, c = tables.admissions.c, tables.counters.c
    await conn.execute(delete(tables.admissions).where(a.period == "minute",
                                                       a.start < minute_before))
    await conn.execute(delete(tables.counters).where(c.period == "rate", c.start < rate_before))


def _key(key: CounterKey) -> dict[str, Any]:
    return {"scope": key.scope, "scope_id": key.scope_id, "period": key.period, "start": key.start}
