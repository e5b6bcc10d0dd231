"""Alembic's environment for every service's branch (see services/runtime/db.py).

`db.migrate()` hands in an open connection; the `alembic` command line (alembic.ini at the
repository root, LIFELINE_DB_URL) gets one made here.
"""

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config


def run(connection: Connection) -> None:
    context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def run_from_url(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (conn := config.attributes.get("connection")) is not None:
    run(conn)
else:
    url = os.environ.get("LIFELINE_DB_URL") or config.get_main_option("sqlalchemy.url")
    asyncio.run(run_from_url(url))
