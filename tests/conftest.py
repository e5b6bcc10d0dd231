"""Real parts for tests: each test gets its own nats-server (free port, temp store dir) and, when
it needs SQL, its own database (a SQLite file, or a fresh PostgreSQL database when
LIFELINE_TEST_PG_URL points at a server, as in CI)."""

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from pathlib import Path

import nats
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from schemas.streams import STATUS
from services.runtime.bus import provision
from services.runtime.natsd import NatsServer

PG_URL = os.environ.get("LIFELINE_TEST_PG_URL")

# Each service's own fixtures live in tests/fixtures/<service>.py.
pytest_plugins = [
    "tests.fixtures.router",
    "tests.fixtures.health_monitor",
    "tests.fixtures.cost_guard",
    "tests.fixtures.conversation_store",
    "tests.fixtures.backup_agent",
    "tests.fixtures.notifier",
    "tests.fixtures.gateway",
]


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[nats.NATS]:
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()


class StatusEvents:
    """Every event the STATUS stream stores, in its order (an ordered consumer from the start, so
    none is missed and a duplicate publish, deduped by the stream, is seen once)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, dict[str, Any]]] = []  # (monotonic, subject, body)
        self._changed = asyncio.Condition()

    async def on_msg(self, msg: Any) -> None:
        async with self._changed:
            self.events.append((time.monotonic(), msg.subject, json.loads(msg.data)))
            self._changed.notify_all()

    def of(self, subject: str | None = None, **fields: object) -> list[dict[str, Any]]:
        return [body for _, s, body in self.events
                if (subject is None or s == subject) and all(body.get(k) == v for k, v in fields.items())]

    async def wait_for(self, subject: str, within: float, after: int = 0,
                       **fields: object) -> tuple[float, dict[str, Any]]:
        """The first matching event stored after the first `after` events: (monotonic time, body)."""
        def found() -> tuple[float, dict[str, Any]] | None:
            for at, s, body in self.events[after:]:
                if s == subject and all(body.get(k) == v for k, v in fields.items()):
                    return at, body
            return None
        await self._until(found, within, f"no {subject} {fields}", after)
        result = found()
        assert result is not None
        return result

    async def wait(self, subject: str, count: int = 1, *, within: float = 10.0,
                   where: Callable[[dict[str, Any]], bool] = lambda e: True) -> list[dict[str, Any]]:
        """At least `count` events of `subject` that satisfy `where`."""
        def matching() -> list[dict[str, Any]]:
            return [e for e in self.of(subject) if where(e)]
        await self._until(lambda: len(matching()) >= count, within, f"{count} x {subject}", 0)
        return matching()

    async def _until(self, predicate: Callable[[], object], within: float, what: str, after: int) -> None:
        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(predicate), within)
        except TimeoutError:
            got = [(s, b.get("provider") or b.get("instance") or b.get("scope_id"), b.get("state"))
                   for _, s, b in self.events[after:]]
            raise AssertionError(f"{what} within {within:g}s; got {got}") from None


@pytest.fixture
async def status_events(nc: nats.NATS) -> AsyncIterator[StatusEvents]:
    """Follows the STATUS stream from its start."""
    js = nc.jetstream()
    await provision(js)  # the stream exists before any service has started
    events = StatusEvents()
    sub = await js.subscribe(">", stream=STATUS.name, cb=events.on_msg, ordered_consumer=True)
    yield events
    await sub.unsubscribe()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'lifeline.db'}"


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A PostgreSQL database of this test's own, dropped afterwards."""
    if not PG_URL:
        pytest.skip("LIFELINE_TEST_PG_URL is not set (CI sets it; see .ci/run)")
    async with fresh_pg_database(PG_URL) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The test runs on both stores: SQLite (the embedded default) and PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'lifeline.db'}"
        return
    if not PG_URL:
        pytest.skip("LIFELINE_TEST_PG_URL is not set (CI sets it; see .ci/run)")
    async with fresh_pg_database(PG_URL) as url:
        yield url


class fresh_pg_database:
    """CREATE DATABASE lifeline_test_<random> on the server of `server_url`; DROP it on exit."""

    def __init__(self, server_url: str) -> None:
        self.admin = make_url(server_url)
        self.name = f"lifeline_test_{uuid.uuid4().hex[:12]}"

    async def __aenter__(self) -> str:
        await self._admin(f'CREATE DATABASE "{self.name}"')
        return self.admin.set(database=self.name).render_as_string(hide_password=False)

    async def __aexit__(self, *exc: object) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    async def _admin(self, sql: str) -> None:
        engine = create_async_engine(self.admin, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()
