"""infra/postgres/init.sh, run as the postgres image runs it (psql as the superuser, the password
from the environment), on a PostgreSQL cluster of the test's own: the lifeline role logs in with
that password over TCP with SCRAM, even one full of quotes and spaces, and can create every
service's tables in its database."""

import os
import subprocess
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import URL, text
from sqlalchemy.exc import DBAPIError

from services.runtime.db import alembic_config, current_revisions, make_engine, migrate
from tests.fixtures.conversation_store import PrivatePostgres

INIT = Path(__file__).parents[2] / "infra/postgres/init.sh"
PASSWORD = "it's a \"long\" pass:word @ 5432/x"


async def test_init_script_creates_roles_that_log_in_and_migrate(private_postgres: PrivatePostgres):
    pg = private_postgres
    env = {**os.environ, "POSTGRES_USER": "postgres", "PGHOST": "127.0.0.1",
           "PGPORT": str(pg.port), "LIFELINE_DB_PASSWORD": PASSWORD}
    done = subprocess.run(["sh", str(INIT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

    # From now on our roles must prove their password (SCRAM), as in the compose network.
    hba = pg.data / "pg_hba.conf"
    hba.write_text("host all lifeline,lifeline_verify 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-c",
                    "SELECT pg_reload_conf()"], check=True, capture_output=True, timeout=30)

    url = URL.create("postgresql+asyncpg", username="lifeline", password=PASSWORD,
                     host="127.0.0.1", port=pg.port, database="lifeline")
    url_text = url.render_as_string(hide_password=False)  # percent-encoded, as a URL must be
    engine = make_engine(url_text)
    try:
        await migrate(engine)
        heads = set(ScriptDirectory.from_config(alembic_config(url_text)).get_heads())
        assert await current_revisions(engine) == heads
    finally:
        await engine.dispose()

    verify = make_engine(url.set(username="lifeline_verify", database="lifeline_verify")
                         .render_as_string(hide_password=False))
    try:
        async with verify.connect() as conn:
            can_create = await conn.scalar(
                text("SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user"))
        assert can_create is True
    finally:
        await verify.dispose()

    wrong = make_engine(url.set(password="not it").render_as_string(hide_password=False))
    try:
        with pytest.raises(DBAPIError, match="password authentication failed"):
            async with wrong.connect():
                pass
    finally:
        await wrong.dispose()
