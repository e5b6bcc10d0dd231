"""The conversation store's SQL: turns in, history out, purge, retention, export. The same code
on PostgreSQL (asyncpg) and SQLite (aiosqlite); the service and `lifeline export/import` use it."""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, delete, exists, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.events import Turn
from services.runtime.db import make_engine, migrate

from . import logic
from .records import TurnRecord
from .tables import conversations, purges, turns


class RowError(Exception):
    """A value the database refuses (e.g. a NUL character in text on PostgreSQL): retrying the
    batch cannot help, storing its rows one by one can."""


def is_row_error(error: BaseException) -> bool:
    if isinstance(error, DataError | IntegrityError):
        return True
    # asyncpg's errors reach us as the generic DBAPIError; their SQLSTATE says what they are:
    # class 22 is a data exception, 23 an integrity constraint violation.
    sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None) or ""
    return isinstance(error, DBAPIError) and sqlstate[:2] in ("22", "23")


_HISTORY_COLUMNS = (turns.c.request_id, turns.c.at, turns.c.route, turns.c.messages,
                    turns.c.content, turns.c.provider, turns.c.model, turns.c.tier)
_RECORD_COLUMNS = tuple(turns.c[name] for name in TurnRecord.model_fields)


@dataclass
class Added:
    stored: set[str] = field(default_factory=set)  # request ids written now
    purged: set[str] = field(default_factory=set)  # request ids of purged users, left out


class TurnStore:
    """Opened with a database URL; nothing connects until `open()`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: AsyncEngine | None = None

    async def open(self, *, migrate_first: bool = False) -> "TurnStore":
        self._engine = make_engine(self.url)
        if migrate_first:
            await migrate(self._engine)
        return self

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def __aenter__(self) -> "TurnStore":
        return await self.open() if self._engine is None else self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the turn store is not open")
        return self._engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _insert(self, table):  # type: ignore[no-untyped-def]
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    async def add(self, records: Sequence[TurnRecord]) -> Added:
        """Stores the turns in one transaction; a request id already stored is skipped.
        Raises RowError when the database refuses a value (and stores none of them)."""
        try:
            return await self._add(records)
        except DBAPIError as e:
            if is_row_error(e):
                raise RowError(str(e.orig)) from e
            raise

    async def _add(self, records: Sequence[TurnRecord]) -> Added:
        added = Added()
        async with self.engine.begin() as conn:
            await self._lock_turns(conn, "ROW EXCLUSIVE")
            tombstones = await self._tombstones(conn, {r.user_id for r in records if r.user_id})
            kept = []
            for r in records:
                (added.purged.add(r.request_id) if logic.purged(r, tombstones) else kept.append(r))
            if not kept:
                return added
            if sessions := logic.conversations_of(kept):
                await conn.execute(self._upsert_conversations(), sessions)
            stmt = (self._insert(turns).on_conflict_do_nothing(index_elements=["request_id"])
                    .returning(turns.c.request_id))
            result = await conn.execute(stmt, [r.model_dump() for r in kept])
            added.stored = set(result.scalars().all())
        return added

    def _upsert_conversations(self):  # type: ignore[no-untyped-def]
        ins = self._insert(conversations)
        new, old = ins.excluded, conversations.c
        return ins.on_conflict_do_update(index_elements=["id"], set_={
            "user_id": func.coalesce(old.user_id, new.user_id),
            "started_at": case((new.started_at < old.started_at, new.started_at), else_=old.started_at),
            "last_at": case((new.last_at > old.last_at, new.last_at), else_=old.last_at),
        })

    async def _lock_turns(self, conn: AsyncConnection, mode: str) -> None:
        """Orders ingest against purge, so a purge cannot miss a turn being written beside it.

        PostgreSQL: ingest takes ROW EXCLUSIVE (as any insert does; ingests do not block each
        other), a purge SHARE ROW EXCLUSIVE, which waits for running ingests and holds new ones
        until it commits; the tombstone check after the lock then sees the purge. SQLite has one
        writer at a time: a write statement (touching no row) takes its write lock here, before
        the tombstone check reads.
        """
        if self.dialect == "postgresql":
            await conn.execute(text(f"LOCK TABLE turns IN {mode} MODE"))
        else:
            await conn.execute(update(purges).where(text("0 = 1")).values(id=purges.c.id))

    async def _tombstones(self, conn: AsyncConnection, users: set[str | None]) -> dict[str, datetime]:
        if not users:
            return {}
        rows = await conn.execute(select(purges.c.user_id, func.max(purges.c.at))
                                  .where(purges.c.user_id.in_(sorted(u for u in users if u)))
                                  .group_by(purges.c.user_id))
        return {user: at for user, at in rows}

    async def history(self, session_id: str, limit: int) -> tuple[list[Turn], bool]:
        """The session's newest `limit` turns, oldest first, and whether older ones exist."""
        query = (select(*_HISTORY_COLUMNS).where(turns.c.session_id == session_id)
                 .order_by(turns.c.at.desc(), turns.c.id.desc()).limit(limit + 1))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        found = [Turn.model_validate(dict(row)) for row in rows[:limit]]
        return found[::-1], len(rows) > limit

    async def purge_user(self, user_id: str, *, purge_id: str, at: datetime, reason: str,
                         actor: str) -> tuple[int, int]:
        """Deletes the user's turns (and the unattributed turns of sessions they own) and the
        conversations left empty; logs the purge. Returns (turns, conversations) deleted."""
        async with self.engine.begin() as conn:
            await self._lock_turns(conn, "SHARE ROW EXCLUSIVE")
            owned = select(conversations.c.id).where(conversations.c.user_id == user_id)
            touched = select(turns.c.session_id).where(turns.c.user_id == user_id,
                                                       turns.c.session_id.is_not(None))
            candidates = set((await conn.scalars(owned.union(touched))).all())
            gone = await conn.execute(delete(turns).where(or_(
                turns.c.user_id == user_id,
                and_(turns.c.user_id.is_(None), turns.c.session_id.in_(owned)))))
            emptied = 0
            ids = sorted(candidates)
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                emptied += (await conn.execute(delete(conversations).where(
                    conversations.c.id.in_(chunk),
                    ~exists().where(turns.c.session_id == conversations.c.id)))).rowcount
            # A session the user owned that still holds other users' turns stays, without the id.
            await conn.execute(update(conversations).where(conversations.c.user_id == user_id)
                               .values(user_id=None))
            await conn.execute(purges.insert().values(
                id=purge_id, user_id=user_id, at=at, reason=reason, actor=actor,
                turns=gone.rowcount, conversations=emptied))
        return gone.rowcount, emptied

    async def sweep(self, limits: logic.Cutoffs, *, chunk: int = 5000) -> int:
        """Deletes expired turns (in chunks, each its own short transaction) and the
        conversations they leave empty. Returns the turns deleted."""
        deleted = 0
        for route, cutoff in limits.routes.items():
            deleted += await self._delete_turns(and_(turns.c.route == route, turns.c.at < cutoff), chunk)
        if limits.default is not None:
            deleted += await self._delete_turns(
                and_(turns.c.route.not_in(sorted(limits.listed)), turns.c.at < limits.default), chunk)
        if deleted and (latest := limits.latest) is not None:
            async with self.engine.begin() as conn:
                await conn.execute(delete(conversations).where(
                    conversations.c.last_at < latest,
                    ~exists().where(turns.c.session_id == conversations.c.id)))
        return deleted

    async def _delete_turns(self, where, chunk: int) -> int:  # type: ignore[no-untyped-def]
        total = 0
        while True:
            async with self.engine.begin() as conn:
                ids = select(turns.c.id).where(where).limit(chunk).scalar_subquery()
                n = (await conn.execute(delete(turns).where(turns.c.id.in_(ids)))).rowcount
            total += n
            if n < chunk:
                return total

    async def count(self, *, user_id: str | None = None) -> int:
        query = select(func.count()).select_from(turns)
        if user_id is not None:
            query = query.where(turns.c.user_id == user_id)
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).scalar_one()

    async def count_conversations(self) -> int:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(conversations))).scalar_one()

    async def records(self, *, since: datetime | None = None,
                      user_id: str | None = None) -> AsyncIterator[TurnRecord]:
        """Every turn, oldest first (streamed, not loaded at once)."""
        query = select(*_RECORD_COLUMNS)
        if since is not None:
            query = query.where(turns.c.at >= since)
        if user_id is not None:
            query = query.where(turns.c.user_id == user_id)
        async with self.engine.connect() as conn:
            result = await conn.stream(query.order_by(turns.c.at, turns.c.id)
                                       .execution_options(yield_per=1000))
            async for row in result.mappings():
                yield TurnRecord.model_validate(dict(row))
