"""The SQL store every stateful service shares: one engine per process, Alembic migrations.

SQLite (aiosqlite) is the embedded default, PostgreSQL (asyncpg) the production one; both through
SQLAlchemy 2 async. Each service owns its tables and their migrations
(`services/<service>/migrations/`, an Alembic branch labelled with the service's name); one
`migrate()` brings every branch to its head, under a lock, because every stateful service runs it
at start-up and several may start at once.
"""

import asyncio
import fcntl
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_HERE = Path(__file__).parent
_SERVICES = _HERE.parent
_MIGRATE_LOCK = 0x4C494645  # pg_advisory_lock key: "LIFE"


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine for `url`. SQLite gets its directory, WAL and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size,
                               pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    # WAL: readers do not block the writer; busy_timeout: a second writer waits, not fails.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def version_locations() -> list[str]:
    """Every service's migrations folder."""
    return sorted(str(p) for p in _SERVICES.glob("*/migrations") if p.is_dir() and p != _HERE / "migrations")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE / "migrations"))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(version_locations()))
    # ConfigParser interpolates "%": a password percent-encoded in the URL (any "@", ":", "/"
    # or space in it) would otherwise fail every migration with "invalid interpolation syntax".
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def migrate(engine: AsyncEngine, revision: str = "heads") -> None:
    """Upgrade every service's branch to `revision` (default: all heads). Safe to race."""
    url = engine.url.render_as_string(hide_password=False)
    cfg = alembic_config(url)
    if engine.dialect.name == "sqlite":
        async with _file_lock(engine.url.database):
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade, cfg, revision)
        return
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATE_LOCK})"))
        await conn.run_sync(_upgrade, cfg, revision)


def _upgrade(conn: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


async def current_revisions(engine: AsyncEngine) -> set[str]:
    """The revisions the database is at (one per service branch)."""
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_heads()))


class _file_lock:
    """An exclusive lock on `<db>.migrate.lock`, so two processes do not migrate one SQLite file."""

    def __init__(self, database: str | None) -> None:
        self.path = None if not database or database == ":memory:" else Path(database + ".migrate.lock")
        self.fd: int | None = None

    async def __aenter__(self) -> None:
        if self.path is None:
            return
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        await asyncio.to_thread(fcntl.flock, self.fd, fcntl.LOCK_EX)

    async def __aexit__(self, *exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
