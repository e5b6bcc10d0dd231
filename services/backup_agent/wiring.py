"""Building the backup agent's parts from lifeline.yaml, the settings and the environment: shared
by the service, the `lifeline backup|restore` verbs and `restore()` for drills."""

from collections.abc import Mapping
from pathlib import Path

from services.runtime.config.backup import BackupConfig

from .codec import parse_key
from .settings import BackupAgentSettings
from .targets import DirectoryTarget, S3Target, Target


def make_target(config: BackupConfig, settings: BackupAgentSettings,
                env: Mapping[str, str]) -> Target:
    t = config.target
    if t.kind == "s3":
        assert t.bucket is not None  # the config refuses an s3 target without one
        return S3Target(
            bucket=t.bucket, prefix=t.prefix, endpoint_url=t.endpoint_url, region=t.region,
            access_key=env.get(t.access_key_env) if t.access_key_env else None,
            secret_key=env.get(t.secret_key_env) if t.secret_key_env else None,
            addressing_style=t.addressing_style)
    return DirectoryTarget(Path(settings.backup_dir or settings.home / "backups"))


def key_of(config: BackupConfig, env: Mapping[str, str]) -> bytes | None:
    """The encryption key (also for reading an encrypted snapshot when encryption is now off)."""
    env_name = config.encryption.key_env
    return parse_key(env.get(env_name), env=env_name)
