"""A snapshot of everything, verified, then restored onto a new database and a new bus: every
table (also an application table with types SQLAlchemy does not know), every KV bucket (config
with its history), the STATUS history and the files come back as they were. The same test on a
directory target and on S3 (moto's server), on SQLite and on PostgreSQL."""

import shutil
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest

from schemas.streams import STATUS
from services.backup_agent.agent import BackupAgent
from services.backup_agent.manifest import MANIFEST, Manifest
from services.backup_agent.restore import restore
from services.backup_agent.snapshot import Sources
from services.conversation_store import logic
from services.conversation_store.store import TurnStore
from services.runtime.natsd import NatsServer
from tests.fixtures.backup_agent import (
    SHIPPED_CONFIG, TargetCase, agent_settings, backup_config, database_rows, drop_extra_database,
    empty_database_url, kv_history, kv_state, seed_bus, seed_database, seed_files,
)
from tests.fixtures.conversation_store import completed

BUCKETS = ["config", "control", "limits", "api-keys", "provider-health"]


async def test_round_trip(db_url: str, backup_target: TargetCase, nats_server: NatsServer,
                          nc: nats.NATS, tmp_path: Path) -> None:
    js = nc.jetstream()
    request_ids = await seed_database(db_url)
    await seed_bus(js)
    directories = seed_files(tmp_path / "data")
    config_path = tmp_path / "lifeline.yaml"
    shutil.copy(SHIPPED_CONFIG, config_path)
    config = backup_config(target=backup_target.config or {"kind": "directory"},
                           directories={k: str(v) for k, v in directories.items()})
    before = await database_rows(db_url)
    published = []

    async def publish(subject, event):  # type: ignore[no-untyped-def]
        published.append((subject, event))

    agent = BackupAgent(config=config.backup, target=backup_target.target, key=None,
                        clock=lambda: datetime.now(UTC), publish=publish,
                        sources=lambda: Sources(db_url=db_url, js=js, config_path=config_path))
    reply = await agent.cycle(reason="round trip")
    assert reply.error is None and reply.verified is True, reply
    assert [s for s, _ in published] == ["backup.completed", "backup.verified"]
    manifest = Manifest.model_validate_json(await backup_target.target.get(reply.snapshot_id, MANIFEST))
    assert manifest.table_rows()["turns"] == len(request_ids)
    assert manifest.schema_revisions and manifest.database in ("sqlite", "postgresql")
    kinds = {a.kind for a in manifest.artifacts}
    assert kinds == {"sql", "kv", "stream", "config", "file"}
    assert all(len(a.sha256) == 64 and a.bytes > 0 for a in manifest.artifacts)

    # A new database, a new bus, new places for the files: everything from the snapshot.
    new_db = await empty_database_url(db_url, tmp_path)
    new_bus = NatsServer(tmp_path / "nats-new").start()
    restored_dirs = {name: tmp_path / "restored" / name for name in directories}
    new_config = backup_config(target=backup_target.config or {"kind": "directory"},
                               directories={k: str(v) for k, v in restored_dirs.items()})
    try:
        async with await nats.connect(new_bus.url) as new_nc:
            settings = agent_settings(tmp_path, nats_url=new_bus.url, db_url=new_db,
                                      config_path=tmp_path / "restored" / "lifeline.yaml",
                                      **backup_target.settings)
            result = await restore(reply.snapshot_id, settings=settings, config=new_config,
                                   nc=new_nc)
            assert result.ok and not result.warnings, result.warnings
            assert result.total_rows == sum(len(rows) for rows in before.values())
            assert "rag_documents" in result.created_tables  # not made by any migration
            new_js = new_nc.jetstream()
            for bucket in BUCKETS:
                assert await kv_state(new_js, bucket) == await kv_state(js, bucket), bucket
            assert set(result.kv.values()) == {"restored"}
            assert (await kv_history(new_js, "config", "lifeline.yaml")
                    == await kv_history(js, "config", "lifeline.yaml"))
            status = await new_js.stream_info(STATUS.name)
            assert result.status_events == 2 and status.state.messages == 3  # + restore.completed
        after = await database_rows(new_db)
        assert after == before
        for name, root in directories.items():
            for path in root.rglob("*"):
                if path.is_file():
                    copy = restored_dirs[name] / path.relative_to(root)
                    assert copy.read_bytes() == path.read_bytes(), copy
        assert (tmp_path / "restored" / "lifeline.yaml").read_bytes() == config_path.read_bytes()
        # The restored store takes new turns (PostgreSQL: its id sequence moved past the rows).
        async with TurnStore(new_db) as store:
            added = await store.add([logic.to_turn(completed(1, session="new"),
                                                   stored_at=datetime.now(UTC))])
            assert len(added.stored) == 1
            assert await store.count() == len(request_ids) + 1
    finally:
        new_bus.stop()
        await drop_extra_database(new_db)


async def test_export_reads_one_consistent_snapshot(db_url: str) -> None:
    """Rows committed while the export's read is open are not in it (ledger and counters are
    exported as of one moment)."""
    from sqlalchemy import func, select

    from services.backup_agent.sql_export import consistent_read
    from services.conversation_store.tables import turns
    from services.runtime.db import make_engine

    await seed_database(db_url, turns=10)
    engine = make_engine(db_url)
    try:
        async with consistent_read(engine) as reader:
            first = await reader.scalar(select(func.count()).select_from(turns))
            async with TurnStore(db_url) as store:
                await store.add([logic.to_turn(completed(99), stored_at=datetime.now(UTC))])
            again = await reader.scalar(select(func.count()).select_from(turns))
        assert first == again == 10
    finally:
        await engine.dispose()


@pytest.fixture(autouse=True)
def _no_leftover_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIFELINE_BACKUP_KEY", raising=False)


async def test_extra_table_in_another_schema(pg_url: str, nats_server: NatsServer, nc: nats.NATS,
                                             tmp_path: Path) -> None:
    """A table named in sql.extra_tables (a RAG application's, in its own schema, with a column
    of a type SQLAlchemy does not know) is exported, verified and restored, schema and all."""
    from sqlalchemy import text

    from services.backup_agent.targets import DirectoryTarget
    from services.runtime.db import make_engine

    await seed_database(pg_url, turns=5)
    engine = make_engine(pg_url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE SCHEMA rag"))
        await conn.execute(text("CREATE TABLE rag.embeddings (id int PRIMARY KEY, "
                                "chunk text, embedding point, dims float8[])"))
        await conn.execute(text("INSERT INTO rag.embeddings VALUES (1, 'a', '(0.5,1)', "
                                "'{0.1,0.2}'), (2, 'b', NULL, NULL)"))
    await engine.dispose()
    config = backup_config(sql={"extra_tables": [{"name": "embeddings", "schema": "rag"}]})
    target = DirectoryTarget(tmp_path / "backups")

    async def publish(subject, event):  # type: ignore[no-untyped-def]
        return None

    agent = BackupAgent(config=config.backup, target=target, key=None,
                        clock=lambda: datetime.now(UTC), publish=publish,
                        sources=lambda: Sources(db_url=pg_url, js=None))
    reply = await agent.cycle(reason="extra")
    assert reply.verified is True, reply
    new_db = await empty_database_url(pg_url, tmp_path)
    try:
        settings = agent_settings(tmp_path, nats_url=nats_server.url, db_url=new_db,
                                  config_path=tmp_path / "lifeline.yaml",
                                  backup_dir=tmp_path / "backups")
        result = await restore(reply.snapshot_id, settings=settings, config=config, nc=nc)
        assert result.rows["rag.embeddings"] == 2
        engine = make_engine(new_db)
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT id, chunk, embedding::text, dims::text FROM rag.embeddings ORDER BY id"))).all()
        await engine.dispose()
        assert [tuple(r) for r in rows] == [(1, "a", "(0.5,1)", "{0.1,0.2}"), (2, "b", None, None)]
    finally:
        await drop_extra_database(new_db)
