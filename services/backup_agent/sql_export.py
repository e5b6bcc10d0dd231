"""Logical export of a SQL database: every table (reflected), in one consistent read, as JSON
Lines parts.

One transaction for all tables, so that tables written together are exported together: the cost
guard's ledger and the counters it updates in the same transaction, turns and their
conversations. PostgreSQL: REPEATABLE READ, READ ONLY (a snapshot; writers are not blocked).
SQLite: an explicit BEGIN (Python's sqlite3 would not start a transaction for reads), which in WAL
mode reads one snapshot while writers go on.
"""

import json
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import MetaData, Table, select
from sqlalchemy.exc import SAWarning
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import columns
from .codec import Compressor
from .manifest import Column, RowsChecksum

SKIPPED = frozenset({"alembic_version"})  # schema revisions are recorded in the manifest


@dataclass
class TablePart:
    table: str  # "turns", or "rag.embeddings" for another schema
    part: int
    columns: list[Column]
    rows: int
    data: bytes  # gzip of the JSON lines
    checksum: str  # RowsChecksum of the lines


Emit = Callable[[TablePart], Awaitable[None]]


@asynccontextmanager
async def consistent_read(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = await conn.execution_options(isolation_level="REPEATABLE READ",
                                                postgresql_readonly=True)
            async with conn.begin():
                yield conn
            return
        if engine.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        finally:
            await conn.rollback()


async def reflect(conn: AsyncConnection, *, schema: str | None = None,
                  only: Iterable[str] | None = None) -> MetaData:
    metadata = MetaData(schema=schema)

    def run(sync_conn) -> None:  # type: ignore[no-untyped-def]
        with warnings.catch_warnings():
            # "Did not recognize type 'vector'": expected; such columns travel as text.
            warnings.simplefilter("ignore", SAWarning)
            metadata.reflect(sync_conn, only=list(only) if only is not None else None)

    await conn.run_sync(run)
    return metadata


def qualified(table: Table) -> str:
    return f"{table.schema}.{table.name}" if table.schema else table.name


async def export_tables(conn: AsyncConnection, emit: Emit, *, schema: str | None = None,
                        only: Iterable[str] | None = None, exclude: Iterable[str] = (),
                        part_rows: int = 50_000, level: int = 6) -> list[str]:
    """Exports each table (foreign-key order) as parts of at most `part_rows` rows, handing each
    to `emit` as it is ready (so a big table is never in memory at once). Returns the tables."""
    metadata = await reflect(conn, schema=schema, only=only)
    left_out = SKIPPED | set(exclude)
    done = []
    for table in metadata.sorted_tables:
        if table.name in left_out:
            continue
        await _export_table(conn, table, emit, part_rows, level)
        done.append(qualified(table))
    return done


async def _export_table(conn: AsyncConnection, table: Table, emit: Emit, part_rows: int,
                        level: int) -> None:
    declared = await columns.declared_types(conn, table.name, table.schema)
    described = columns.prepare(table, declared, conn.dialect.name)
    plan = columns.encoders(table)
    query = select(table).order_by(*columns.key_column(table)).execution_options(yield_per=2000)
    part = _Part(qualified(table), 0, described, level)
    result = await conn.stream(query)
    async for rows in result.partitions():
        for row in rows:
            part.add(_line(columns.encode_row(row, plan)))
            if part.rows >= part_rows:
                await emit(part.finish())
                part = _Part(part.table, part.part + 1, described, level)
    if part.rows or part.part == 0:  # an empty table is still recorded (it existed)
        await emit(part.finish())


def _line(row: dict[str, object]) -> bytes:
    # Keys in column order and JSON values' own key order, not sorted: a restore writes a JSON
    # column's text back as it was (a `json` column keeps its text), and reads back the same.
    return json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode()


class _Part:
    def __init__(self, table: str, part: int, described: list[Column], level: int) -> None:
        self.table, self.part, self.columns = table, part, described
        self.compressor = Compressor(level)
        self.checksum = RowsChecksum()

    @property
    def rows(self) -> int:
        return self.checksum.rows

    def add(self, line: bytes) -> None:
        self.checksum.add(line)
        self.compressor.add(line + b"\n")

    def finish(self) -> TablePart:
        return TablePart(self.table, self.part, self.columns, self.rows, self.compressor.finish(),
                         self.checksum.hexdigest())


async def table_checksums(conn: AsyncConnection, tables: Iterable[str],
                          schema: str | None = None) -> dict[str, tuple[int, str]]:
    """(rows, RowsChecksum) of each table as it is now, encoded exactly as an export would: what
    a verification compares with the manifest."""
    names = list(tables)
    metadata = await reflect(conn, schema=schema, only=names)
    out = {}
    for table in metadata.sorted_tables:
        declared = await columns.declared_types(conn, table.name, table.schema)
        columns.prepare(table, declared, conn.dialect.name)
        plan = columns.encoders(table)
        checksum = RowsChecksum()
        result = await conn.stream(select(table).execution_options(yield_per=2000))
        async for rows in result.partitions():
            for row in rows:
                checksum.add(_line(columns.encode_row(row, plan)))
        out[qualified(table)] = (checksum.rows, checksum.hexdigest())
    return out
