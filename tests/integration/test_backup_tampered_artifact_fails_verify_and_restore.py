"""One flipped byte in any artifact (or a truncated or missing one) makes verify and restore fail
with a message naming that artifact, and the restore writes nothing to the target database: every
artifact is checked before the first row is written."""

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from services.backup_agent.agent import BackupAgent
from services.backup_agent.codec import ArtifactError
from services.backup_agent.manifest import Manifest
from services.backup_agent.restore import restore
from services.backup_agent.snapshot import Sources
from services.backup_agent.targets import DirectoryTarget
from services.backup_agent.verify import verify_snapshot
from services.runtime.db import make_engine
from services.runtime.natsd import NatsServer
from tests.fixtures.backup_agent import (
    SHIPPED_CONFIG, agent_settings, backup_config, drop_extra_database, empty_database_url,
    seed_bus, seed_database, seed_files,
)
from tests.fixtures.conversation_store import lifeline


async def _snapshot(db_url: str, js, tmp_path: Path) -> tuple[DirectoryTarget, Manifest]:  # type: ignore[no-untyped-def]
    await seed_database(db_url, turns=30)
    await seed_bus(js)
    directories = seed_files(tmp_path / "data")
    shutil.copy(SHIPPED_CONFIG, tmp_path / "lifeline.yaml")
    config = backup_config(directories={k: str(v) for k, v in directories.items()})
    target = DirectoryTarget(tmp_path / "backups")

    async def publish(subject, event):  # type: ignore[no-untyped-def]
        return None

    agent = BackupAgent(config=config.backup, target=target, key=None,
                        clock=lambda: datetime.now(UTC), publish=publish,
                        sources=lambda: Sources(db_url=db_url, js=js,
                                                config_path=tmp_path / "lifeline.yaml"))
    reply = await agent.cycle(reason="tamper", verify=False)
    assert reply.snapshot_id
    manifest = Manifest.model_validate_json(
        (tmp_path / "backups" / reply.snapshot_id / "manifest.json").read_bytes())
    return target, manifest


async def _tables(url: str) -> list[str]:
    if make_url(url).get_backend_name() == "sqlite" and not Path(make_url(url).database).exists():
        return []
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()


async def test_every_tampered_artifact_is_named(sqlite_url: str, nats_server: NatsServer,
                                                nc: nats.NATS, tmp_path: Path) -> None:
    target, manifest = await _snapshot(sqlite_url, nc.jetstream(), tmp_path)
    folder = tmp_path / "backups" / manifest.id
    fresh = f"sqlite+aiosqlite:///{tmp_path / 'target.db'}"
    settings = agent_settings(tmp_path, nats_url=nats_server.url, db_url=fresh,
                              config_path=tmp_path / "restored.yaml", backup_dir=tmp_path / "backups")
    config = backup_config(directories={"finetune": str(tmp_path / "r1"), "prompts": str(tmp_path / "r2")})
    assert len(manifest.artifacts) > 25  # every table, bucket, the stream, config, files
    cases = [(a.name, "flip") for a in manifest.artifacts] + [("manifest.json", "flip")]
    cases += [(manifest.artifacts[0].name, "truncate"), (manifest.artifacts[-1].name, "remove")]
    for name, damage in cases:
        path = folder / name
        original = path.read_bytes()
        if damage == "flip":
            middle = len(original) // 2
            path.write_bytes(original[:middle] + bytes([original[middle] ^ 0x01]) + original[middle + 1:])
        elif damage == "truncate":
            path.write_bytes(original[:-1])
        else:
            path.unlink()
        try:
            check = await verify_snapshot(target, manifest.id, key=None, key_env="K",
                                          now=datetime.now(UTC), record=False)
            assert not check.ok and name in (check.reason or ""), (damage, name, check.reason)
            with pytest.raises(ArtifactError) as refused:
                await restore(manifest.id, settings=settings, config=config, nc=nc, to="now")
            assert refused.value.artifact == name and name in str(refused.value)
            assert await _tables(fresh) == [], f"{damage} {name}: the target was written"
            assert not (tmp_path / "restored.yaml").exists() and not (tmp_path / "r1").exists()
        finally:
            path.write_bytes(original)
    untouched = await verify_snapshot(target, manifest.id, key=None, key_env="K",
                                      now=datetime.now(UTC), record=False)
    assert untouched.ok, untouched.reason


async def test_commands_name_the_artifact(pg_url: str, nats_server: NatsServer, nc: nats.NATS,
                                          tmp_path: Path) -> None:
    """`lifeline backup verify` and `lifeline restore` as an operator runs them (PostgreSQL)."""
    _, manifest = await _snapshot(pg_url, nc.jetstream(), tmp_path)
    turns = next(a for a in manifest.artifacts if a.table == "turns")
    path = tmp_path / "backups" / manifest.id / turns.name
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x40  # bit rot near the end
    path.write_bytes(bytes(data))
    fresh = await empty_database_url(pg_url, tmp_path)
    env = {"PYTHONPATH": os.getcwd(), "NATS_URL": nats_server.url, "LIFELINE_DB_URL": fresh,
           "LIFELINE_CONFIG": str(tmp_path / "lifeline.yaml"),
           "LIFELINE_BACKUP_DIR": str(tmp_path / "backups"), "LIFELINE_HOME": str(tmp_path)}
    try:
        code, out, err = await lifeline("backup", "verify", manifest.id, env=env)
        assert code == 1 and f"artifact {turns.name}" in out + err, out + err
        assert "SHA-256" in out + err
        code, out, err = await lifeline("restore", manifest.id, "--to", "now", env=env)
        assert code == 2 and f"artifact {turns.name}" in out + err, out + err
        assert "nothing was changed" in out + err
        assert await _tables(fresh) == []
        code, out, err = await lifeline("backup", "list", "--json", env=env)
        assert code == 0 and manifest.id in out and '"ok": false' in out, out + err
    finally:
        await drop_extra_database(fresh)
