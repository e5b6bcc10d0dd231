"""Encrypted snapshots (AES-256-GCM): nothing stored is readable without the key, a missing key
or a wrong key is a clear error (naming the artifact for a wrong key) that writes nothing, and
with the key the snapshot verifies and restores."""

import base64
import gzip
import os
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest

from services.backup_agent.agent import BackupAgent
from services.backup_agent.codec import ArtifactError, KeyProblem
from services.backup_agent.manifest import Manifest
from services.backup_agent.restore import restore
from services.backup_agent.snapshot import Sources
from services.backup_agent.targets import DirectoryTarget
from services.backup_agent.verify import verify_snapshot
from services.conversation_store.store import TurnStore
from services.runtime.natsd import NatsServer
from tests.fixtures.backup_agent import agent_settings, backup_config, seed_bus, seed_database

KEY = os.urandom(32)
OTHER = os.urandom(32)
ENV = "TEST_BACKUP_KEY"


async def test_encrypted_snapshot(sqlite_url: str, nats_server: NatsServer, nc: nats.NATS,
                                  tmp_path: Path) -> None:
    await seed_database(sqlite_url, turns=50)
    await seed_bus(nc.jetstream())
    config = backup_config(encryption={"enabled": True, "key_env": ENV})
    target = DirectoryTarget(tmp_path / "backups")

    async def publish(subject, event):  # type: ignore[no-untyped-def]
        return None

    agent = BackupAgent(config=config.backup, target=target, key=KEY,
                        clock=lambda: datetime.now(UTC), publish=publish,
                        sources=lambda: Sources(db_url=sqlite_url, js=nc.jetstream()))
    reply = await agent.cycle(reason="encrypted")
    assert reply.verified is True, reply  # verified with the key it was made with
    folder = tmp_path / "backups" / reply.snapshot_id
    manifest = Manifest.model_validate_json((folder / "manifest.json").read_bytes())
    assert manifest.encryption and manifest.encryption.key_env == ENV
    for artifact in manifest.artifacts:
        stored = (folder / artifact.name).read_bytes()
        assert artifact.name.endswith(".enc")
        with pytest.raises(OSError):  # not even the compression is visible
            gzip.decompress(stored)
        assert b"question" not in stored and b"killswitch" not in stored

    no_key = await verify_snapshot(target, reply.snapshot_id, key=None, key_env=ENV,
                                   now=datetime.now(UTC), record=False)
    assert not no_key.ok and f"set {ENV}" in (no_key.reason or ""), no_key.reason
    wrong = await verify_snapshot(target, reply.snapshot_id, key=OTHER, key_env=ENV,
                                  now=datetime.now(UTC), record=False)
    assert not wrong.ok and "wrong key" in (wrong.reason or "")
    assert f"artifact {manifest.artifacts[0].name}" in (wrong.reason or ""), wrong.reason

    fresh = f"sqlite+aiosqlite:///{tmp_path / 'restored.db'}"
    settings = agent_settings(tmp_path, nats_url=nats_server.url, db_url=fresh,
                              config_path=tmp_path / "lifeline.yaml", backup_dir=tmp_path / "backups")
    with pytest.raises(KeyProblem, match=ENV):
        await restore(reply.snapshot_id, settings=settings, config=config, nc=nc, env={})
    with pytest.raises(ArtifactError, match="wrong key") as refused:
        await restore(reply.snapshot_id, settings=settings, config=config, nc=nc,
                      env={ENV: base64.b64encode(OTHER).decode()})
    assert refused.value.artifact == manifest.artifacts[0].name
    assert not Path(tmp_path / "restored.db").exists()  # nothing written, not even a file
    result = await restore(reply.snapshot_id, settings=settings, config=config, nc=nc,
                           env={ENV: base64.b64encode(KEY).decode()}, force=True)
    assert result.rows["turns"] == 50
    async with TurnStore(fresh) as store:
        assert await store.count() == 50
