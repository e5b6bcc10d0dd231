"""Every stateful service migrates the shared database at start-up; several start at once."""

import asyncio

from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from services.runtime.db import alembic_config, current_revisions, make_engine, migrate


async def test_concurrent_migrations_bring_every_branch_to_its_head_once(db_url: str):
    heads = set(ScriptDirectory.from_config(alembic_config(db_url)).get_heads())
    engines = [make_engine(db_url) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(e) for e in engines))
        assert await current_revisions(engines[0]) == heads
        await migrate(engines[0])  # again: nothing to do, nothing fails
        assert await current_revisions(engines[0]) == heads
        async with engines[0].connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "alembic_version" in tables
    finally:
        for e in engines:
            await e.dispose()
