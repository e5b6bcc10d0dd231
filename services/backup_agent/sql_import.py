"""Writing a snapshot's tables into a database: one transaction, foreign-key order, batches.

The target has been migrated first (every service's tables exist); a table the snapshot holds
that the migrations do not create (an application's table, an extra table) is created from the
manifest's column list. Then, in one transaction: the tables are locked (PostgreSQL: ACCESS
EXCLUSIVE, so a service writing meanwhile waits; SQLite: BEGIN IMMEDIATE), refused if they hold
rows (unless `force`, which deletes them, children first), filled parent-first in batches, and
PostgreSQL's sequences are moved past the restored ids. A failure anywhere rolls it all back.
"""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import Column as SaColumn
from sqlalchemy import MetaData, PrimaryKeyConstraint, Table, delete, exists, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import columns
from .manifest import Column
from .sql_export import qualified, reflect

Rows = Callable[[str], AsyncIterator[list[dict[str, Any]]]]  # table -> its rows, part by part


class NotEmpty(Exception):
    """The target holds rows and `force` was not given; nothing was written."""

    def __init__(self, counts: dict[str, int]) -> None:
        listed = ", ".join(f"{t} ({n} rows)" for t, n in sorted(counts.items()))
        super().__init__(f"the database is not empty: {listed}. Restore into an empty database, "
                         "or give --force to replace what these tables hold")
        self.counts = counts


class RestoreError(Exception):
    """The snapshot's rows do not fit the target (a missing column); nothing was written."""


@dataclass
class Written:
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows inserted
    created: list[str] = field(default_factory=list)  # tables created from the manifest
    wiped: dict[str, int] = field(default_factory=dict)  # table -> rows deleted (force)


def _split(name: str) -> tuple[str | None, str]:
    schema, _, table = name.rpartition(".")
    return (schema or None), table


async def create_missing(engine: AsyncEngine, tables: dict[str, list[Column]], *,
                         source_dialect: str) -> list[str]:
    """Creates each table the target lacks, from the manifest's columns."""
    created = []
    same = engine.dialect.name == source_dialect
    async with engine.begin() as conn:
        for name, cols in tables.items():
            schema, table = _split(name)
            if await conn.run_sync(partial(_has_table, name=table, schema=schema)):
                continue
            keys = [c.name for c in cols if c.primary_key]
            await conn.run_sync(_table(table, schema, cols, same, keys).create)
            created.append(name)
    return created


def _has_table(conn: Connection, *, name: str, schema: str | None) -> bool:
    return conn.dialect.has_table(conn, name, schema=schema)


def _table(name: str, schema: str | None, cols: list[Column], same: bool, keys: list[str]) -> Table:
    return Table(name, MetaData(schema=schema),
                 *(SaColumn(c.name, columns.creatable(c, same_dialect=same),
                            nullable=c.nullable or c.name not in keys) for c in cols),
                 *([PrimaryKeyConstraint(*keys)] if keys else []))


async def write_tables(engine: AsyncEngine, tables: list[str], rows_of: Rows, *,
                       force: bool = False, batch: int = 5000) -> Written:
    """Fills `tables` (qualified names, all existing) from `rows_of`, in one transaction."""
    written = Written()
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock before we look
        ordered = await _in_fk_order(conn, tables)
        if engine.dialect.name == "postgresql":
            names = ", ".join(_quoted(t) for t in ordered)
            await conn.execute(text(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE"))
        holding = {qualified(t): await conn.scalar(select(func.count()).select_from(t))
                   for t in ordered if await conn.scalar(select(exists().select_from(t)))}
        if holding and not force:
            await conn.rollback()
            raise NotEmpty(holding)
        for table in reversed(ordered):  # children first
            if qualified(table) in holding:
                written.wiped[qualified(table)] = (await conn.execute(delete(table))).rowcount
        for table in ordered:
            written.rows[qualified(table)] = await _fill(conn, table, rows_of, batch)
        if engine.dialect.name == "postgresql":
            for table in ordered:
                await _reset_sequences(conn, table)
        await conn.commit()
    return written


def _quoted(table: Table) -> str:
    return (f'"{table.schema}".' if table.schema else "") + f'"{table.name}"'


async def _in_fk_order(conn: AsyncConnection, tables: list[str]) -> list[Table]:
    by_schema: dict[str | None, list[str]] = {}
    for name in tables:
        schema, table = _split(name)
        by_schema.setdefault(schema, []).append(table)
    ordered: list[Table] = []
    for schema, names in by_schema.items():
        metadata = await reflect(conn, schema=schema, only=names)
        for table in metadata.sorted_tables:
            declared = await columns.declared_types(conn, table.name, table.schema)
            columns.prepare(table, declared, conn.dialect.name)
            ordered.append(table)
    return ordered


async def _fill(conn: AsyncConnection, table: Table, rows_of: Rows, batch: int) -> int:
    plan = columns.decoders(table, conn.dialect.name)
    known = set(plan)
    copy = conn.dialect.name == "postgresql" and not any(
        isinstance(c.type, columns.AsText) for c in table.columns)
    count = 0
    async for rows in rows_of(qualified(table)):
        if rows and (unknown := set(rows[0]) - known):
            raise RestoreError(f"table {qualified(table)}: the snapshot has column(s) "
                               f"{', '.join(sorted(unknown))} that the database does not")
        for i in range(0, len(rows), batch):
            chunk = [columns.decode_row(r, plan) for r in rows[i:i + batch]]
            await (_copy(conn, table, chunk) if copy else conn.execute(table.insert(), chunk))
            count += len(chunk)
    return count


async def _copy(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's COPY (asyncpg's binary copy_records_to_table), several times faster than
    INSERT for a restore. Values go through each column type's own bind processing first, as an
    INSERT would send them; columns a row lacks are left out (so they get their defaults)."""
    if not rows:
        return
    names = list(rows[0])
    processors = [table.c[n].type._cached_bind_processor(conn.dialect) for n in names]
    records = [tuple(v if p is None or v is None else p(v)
                     for p, v in zip(processors, (r.get(n) for n in names))) for r in rows]
    raw = await conn.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(
        table.name, records=records, columns=names, schema_name=table.schema)


async def _reset_sequences(conn: AsyncConnection, table: Table) -> None:
    """Restored ids were given explicitly, so a serial/identity sequence is still at 1: move it
    past the largest id, or the next row a service inserts collides with a restored one."""
    for col in table.columns:
        if columns.generic(col.type) != "integer":
            continue
        seq = await conn.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                {"t": _quoted(table), "c": col.name})
        if seq:
            await conn.execute(text(
                f'SELECT setval(:s, COALESCE(MAX("{col.name}"), 1), MAX("{col.name}") IS NOT NULL) '
                f"FROM {_quoted(table)}"), {"s": seq})


async def prepare_schema(engine: AsyncEngine, revisions: list[str]) -> None:
    """An empty database is migrated to the snapshot's own schema revisions (its rows fit them
    exactly; `finish_schema` brings it to the current heads afterwards, data migrations and
    all). A database that is migrated already (services started on it) is left as it is: the
    rows must then fit the current schema, and a column that no longer exists is refused."""
    from alembic.script import ScriptDirectory

    from services.runtime.db import alembic_config, current_revisions, migrate

    script = ScriptDirectory.from_config(alembic_config(engine.url.render_as_string(False)))
    unknown = [r for r in revisions if _revision(script, r) is None]
    if unknown:
        raise RestoreError(f"the snapshot's schema revision(s) {', '.join(unknown)} are unknown "
                           "to this Lifeline (a newer version made it): restore with that version")
    if await current_revisions(engine):
        return
    for revision in revisions:
        await migrate(engine, revision)


def _revision(script: Any, revision: str) -> Any:
    from alembic.script.revision import RevisionError
    from alembic.util.exc import CommandError

    try:
        return script.get_revision(revision)
    except (CommandError, RevisionError):  # "no such revision"
        return None


async def finish_schema(engine: AsyncEngine) -> None:
    from services.runtime.db import migrate

    await migrate(engine)
