"""`lifeline export` then `lifeline import` into an empty database, from PostgreSQL to SQLite:
the same rows (count and checksum); a non-empty store is refused unless --force; a bad file is
refused with its line numbers."""

import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from services.conversation_store import logic
from services.conversation_store.portability import PortabilityError, export_turns, import_turns
from services.conversation_store.records import checksum, to_line
from services.conversation_store.store import TurnStore
from services.runtime.db import migrate
from tests.conftest import PG_URL, fresh_pg_database
from tests.fixtures.conversation_store import completed, utc

TURNS = 2000


def lifeline(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    """The real `lifeline` command, as an operator runs it."""
    env = {**os.environ, "LIFELINE_DB_URL": db, "COLUMNS": "500"}  # rich wraps at 80 otherwise
    return subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True,
                          text=True, env=env, timeout=60, check=False)


@pytest.fixture
async def source_and_target(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """Export from PostgreSQL, import into SQLite: the way across dialects a new system might
    take (SQLite to SQLite when no PostgreSQL is configured)."""
    target = f"sqlite+aiosqlite:///{tmp_path / 'imported.db'}"
    if not PG_URL:
        yield f"sqlite+aiosqlite:///{tmp_path / 'source.db'}", target
        return
    async with fresh_pg_database(PG_URL) as source:
        yield source, target


async def fill(url: str) -> str:
    """TURNS varied turns (sessions, users, none of either, unicode, metadata); their checksum."""
    start = utc(2026, 3, 1, 9)
    records = []
    for i in range(TURNS):
        event = completed(
            i, session=f"s-{i % 40}" if i % 10 else None, user=f"u-{i % 7}" if i % 13 else None,
            route="chat" if i % 3 else "support", at=start + timedelta(seconds=i, microseconds=i),
            content=f"réponse {i} ✓ \"quoted\"\nnew line", key_id=f"k-{i % 3}", team_id="t-1",
            region="eu" if i % 2 else None, metadata={"ticket": i, "tags": ["a", "b"]},
            cached=i % 5 == 0, attempts=1 + i % 2)
        records.append(logic.to_turn(event, stored_at=start + timedelta(seconds=i, milliseconds=5)))
    async with TurnStore(url) as store:
        await migrate(store.engine)
        assert len((await store.add(records)).stored) == TURNS
    return checksum(to_line(r) for r in records)


async def contents(url: str) -> tuple[int, str, list[str]]:
    async with TurnStore(url) as store:
        lines = [to_line(r) async for r in store.records()]
        return await store.count_conversations(), checksum(lines), lines


async def test_export_then_import_into_an_empty_database_gives_the_same_rows(
        source_and_target: tuple[str, str], tmp_path: Path):
    source_url, target_url = source_and_target
    expected = await fill(source_url)
    out = tmp_path / "turns.jsonl"

    exported = lifeline("export", "--out", str(out), "--json", db=source_url)
    assert exported.returncode == 0, exported.stderr
    summary = json.loads(exported.stdout)
    assert (summary["turns"], summary["sha256"]) == (TURNS, expected)
    assert len(out.read_text().splitlines()) == TURNS

    imported = lifeline("import", str(out), "--json", db=target_url)
    assert imported.returncode == 0, imported.stderr + imported.stdout
    done = json.loads(imported.stdout)
    assert (done["read"], done["stored"], done["skipped"], done["sha256"]) == (TURNS, TURNS, 0, expected)

    source, target = await contents(source_url), await contents(target_url)
    assert target[1] == source[1] == expected  # checksum over every field of every turn
    assert target[2] == source[2]  # and line for line, in the same order
    assert target[0] == source[0] == 36  # the conversations, rebuilt from the turns

    # Into a store that holds turns: refused, unless --force, which skips what is there.
    again = lifeline("import", str(out), db=target_url)
    assert again.returncode == 2 and "already holds 2000 turns" in again.stdout
    async with TurnStore(target_url) as store:
        forced = await import_turns(store, out, force=True)
    assert (forced.stored, forced.skipped) == (0, TURNS)
    assert (await contents(target_url))[1] == expected


async def test_export_filters_by_user_and_time(sqlite_url: str):
    await fill(sqlite_url)
    async with TurnStore(sqlite_url) as store:
        by_user, since = io.StringIO(), io.StringIO()
        done = await export_turns(store, by_user, user_id="u-3")
        await export_turns(store, since, since=utc(2026, 3, 1, 9, 30))
    lines = [json.loads(line) for line in by_user.getvalue().splitlines()]
    assert {t["user_id"] for t in lines} == {"u-3"}
    assert done.turns == len(lines) == sum(1 for i in range(TURNS) if i % 13 and i % 7 == 3)
    assert len(since.getvalue().splitlines()) == TURNS - 1800  # one turn a second from 09:00:00


async def test_a_bad_file_is_refused_with_its_line_numbers_and_nothing_is_written(
        sqlite_url: str, tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    good = to_line(logic.to_turn(completed(1), stored_at=utc(2026, 1, 1)))
    bad.write_text(f"{good}\n{{not json\n\n" + good.replace('"route":"chat"', '"route":7') + "\n")
    async with TurnStore(sqlite_url) as store:
        await migrate(store.engine)
        with pytest.raises(PortabilityError) as refused:
            await import_turns(store, bad)
        assert await store.count() == 0
    assert f"{bad}:2: line: Invalid JSON" in str(refused.value)
    assert f"{bad}:4: route: Input should be a valid string" in str(refused.value)
