"""Proving a snapshot restores: every artifact checked (size, SHA-256, key, row counts), then its
tables restored into a scratch database by the restore's own code, read back, and their row
counts and checksums compared with the manifest.

The scratch database is a SQLite file in a temp dir, or a database created for the check (and
dropped after it) on the PostgreSQL server of LIFELINE_BACKUP_VERIFY_DB_URL. Tables of another
database (sql.extra_tables with db_url_env) are checked artifact by artifact, not restored here.
"""

import logging
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from services.runtime.db import make_engine

from .codec import ArtifactError, KeyProblem
from .errors import describe
from .manifest import VERIFICATION, Manifest, Verification
from .reader import Snapshot
from .sql_export import consistent_read, table_checksums
from .sql_import import NotEmpty, RestoreError, create_missing, prepare_schema, write_tables
from .targets import DirectoryTarget, Target

log = logging.getLogger(__name__)

_MOD = 2**256
EXPECTED = (ArtifactError, KeyProblem, RestoreError, NotEmpty)  # a failed check, not a crash


@asynccontextmanager
async def scratch_database(server_url: str, *, tmp_root: Path | None = None) -> AsyncIterator[str]:
    """A database of this check's own; removed afterwards, whatever happens."""
    if not server_url:
        with tempfile.TemporaryDirectory(prefix="lifeline-verify-", dir=tmp_root) as tmp:
            yield f"sqlite+aiosqlite:///{Path(tmp) / 'scratch.db'}"
        return
    admin = make_url(server_url)
    name = f"lifeline_verify_{uuid.uuid4().hex[:12]}"
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            async with engine.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


def expected_tables(manifest: Manifest, dialect: str) -> dict[str, tuple[int, str]]:
    """Per table the scratch restore covers: (rows, checksum) the manifest promises."""
    out: dict[str, tuple[int, int]] = {}
    for a in manifest.artifacts:
        if a.kind != "sql" or a.source != "main" or not a.table:
            continue
        if "." in a.table and dialect != "postgresql":
            continue  # another schema: SQLite has none; checked artifact by artifact
        rows, total = out.get(a.table, (0, 0))
        out[a.table] = (rows + (a.rows or 0), (total + int(a.content_sha256 or "0", 16)) % _MOD)
    return {t: (rows, f"{total:064x}") for t, (rows, total) in out.items()}


async def verify_snapshot(target: Target, snapshot_id: str, *, key: bytes | None,
                          key_env: str, scratch_url: str = "", scratch_dir: Path | None = None,
                          now: datetime, record: bool = True) -> Verification:
    """Checks the snapshot; returns the verdict (a failed check is a verdict with a reason, not
    an exception) and, with `record`, stores it beside the manifest."""
    started = time.monotonic()
    dialect = "postgresql" if scratch_url else "sqlite"
    result = Verification(snapshot_id=snapshot_id, at=now, ok=False, scratch=dialect)
    try:
        with tempfile.TemporaryDirectory(prefix="lifeline-spool-", dir=scratch_dir) as spool:
            remote = not isinstance(target, DirectoryTarget)
            snap = Snapshot(target, snapshot_id, key=key, key_env=key_env,
                            spool=Path(spool) if remote else None)
            manifest = await snap.check_all()
            async with scratch_database(scratch_url, tmp_root=scratch_dir) as url:
                problems = await _round_trip(snap, manifest, url, dialect)
        result.rows = manifest.rows
        result.ok = not problems
        result.reason = "; ".join(problems) or None
    except EXPECTED as e:
        result.reason = describe(e)
    result.duration_s = round(time.monotonic() - started, 3)
    if record:
        await target.put(snapshot_id, VERIFICATION, result.model_dump_json(indent=1).encode())
    return result


async def _round_trip(snap: Snapshot, manifest: Manifest, url: str, dialect: str) -> list[str]:
    wanted = expected_tables(manifest, dialect)
    columns = {a.table: a.columns or [] for a in manifest.artifacts
               if a.kind == "sql" and a.table in wanted}
    engine = make_engine(url, pool_size=2)
    try:
        await prepare_schema(engine, manifest.schema_revisions)
        for schema in {t.rpartition(".")[0] for t in wanted if "." in t}:
            async with engine.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await create_missing(engine, columns, source_dialect=manifest.database)
        await write_tables(engine, list(wanted), lambda t: snap.rows_of(t), force=True)
        got = {}
        for schema in {t.rpartition(".")[0] or None for t in wanted}:
            names = [t.rpartition(".")[2] for t in wanted if (t.rpartition(".")[0] or None) == schema]
            async with consistent_read(engine) as conn:
                got.update(await table_checksums(conn, names, schema=schema))
    finally:
        await engine.dispose()
    problems = []
    for table, (rows, checksum) in sorted(wanted.items()):
        have_rows, have_sum = got.get(table, (0, ""))
        if have_rows != rows:
            problems.append(f"table {table}: {have_rows} rows restored, the manifest says {rows}")
        elif have_sum != checksum:
            problems.append(f"table {table}: restored rows differ from the snapshot's (checksum)")
    return problems
