"""Backup agent: schedule, target, retention, encryption, extra sources, replay.

Where snapshots go on disk (LIFELINE_BACKUP_DIR), the key's value, and the scratch database for
verification are deployment settings (services/backup_agent/settings.py), not policy.
"""

from pathlib import Path
from typing import Annotated, Literal

from croniter import croniter
from pydantic import Field, field_validator, model_validator

from ._base import Strict

Count = Annotated[int, Field(ge=0)]


class ScheduleConfig(Strict):
    """When snapshots are taken: every `every_s` seconds (aligned to the epoch, so that every
    agent instance names the same run), or at a cron expression's times (UTC). Not both."""

    enabled: bool = True
    every_s: float | None = Field(default=None, gt=0)
    cron: str | None = None  # e.g. "0 3 * * *": every day at 03:00 UTC

    @field_validator("cron")
    @classmethod
    def _cron_is_valid(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise ValueError(f"not a valid cron expression: {value!r} (e.g. '0 3 * * *')")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> "ScheduleConfig":
        if self.every_s is not None and self.cron is not None:
            raise ValueError("give every_s or cron, not both")
        return self

    @property
    def effective_every_s(self) -> float | None:
        """Every 6 hours when neither is given."""
        return self.every_s if self.every_s is not None or self.cron else 6 * 3600.0


class RetentionConfig(Strict):
    """Which snapshots are kept (the union of these): the newest `keep_last`, and the newest of
    each of the last `daily` days, `weekly` ISO weeks and `monthly` months that have one (UTC).
    Everything else is deleted after each scheduled snapshot."""

    keep_last: Count = 7
    daily: Count = 7
    weekly: Count = 4
    monthly: Count = 12


class TargetConfig(Strict):
    """Where snapshots are written. `directory`: LIFELINE_BACKUP_DIR (default
    <LIFELINE_HOME>/backups). `s3`: any S3-compatible store; credentials from the environment
    (the variables named here, else the AWS SDK's usual chain)."""

    kind: Literal["directory", "s3"] = "directory"
    bucket: str | None = None
    prefix: str = "lifeline/"  # object keys: <prefix><snapshot id>/<artifact>
    endpoint_url: str | None = None  # e.g. http://minio:9000; none: AWS
    region: str | None = None
    access_key_env: str | None = None  # name of the variable holding the access key id
    secret_key_env: str | None = None
    addressing_style: Literal["auto", "path", "virtual"] = "auto"

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> "TargetConfig":
        if self.kind == "s3" and not self.bucket:
            raise ValueError("an s3 target needs a bucket")
        return self


class EncryptionConfig(Strict):
    """AES-256-GCM at rest. The key is base64 of 32 random bytes (`openssl rand -base64 32`) in
    the variable named by key_env; restoring an encrypted snapshot needs the same key."""

    enabled: bool = False
    key_env: str = "LIFELINE_BACKUP_KEY"


class ExtraTable(Strict):
    """A SQL table outside Lifeline's database schema, e.g. a RAG application's pgvector table.
    Tables of the default schema of LIFELINE_DB_URL are backed up anyway (all of them)."""

    name: str = Field(min_length=1)
    db_schema: str | None = Field(default=None, alias="schema")  # e.g. "rag"
    db_url_env: str | None = None  # another database: the variable holding its URL


class SqlConfig(Strict):
    exclude: list[str] = Field(default_factory=list)  # tables of the default schema left out
    extra_tables: list[ExtraTable] = Field(default_factory=list)


class ReplayConfig(Strict):
    """Point-in-time recovery: after restoring a snapshot, each ingesting service replays
    LLM_EVENTS from the snapshot's sequence (its request-reply subject)."""

    subjects: list[str] = Field(default_factory=lambda: ["conversation.replay", "cost.replay"])
    batch: int = Field(default=1000, ge=1, le=10_000)  # events per replay request
    wait_s: float = Field(default=30.0, ge=0)  # how long to wait for a service to answer at all
    request_timeout_s: float = Field(default=60.0, gt=0)
    # The durable consumers whose ack floor bounds what the database holds: a snapshot records
    # the lowest, so a replay from it can repeat events (ingest is idempotent), never miss one.
    consumers: list[str] = Field(default_factory=lambda: [
        "conversation-store", "cost-guard-ledger", "cost-guard-attempts"])


class BackupConfig(Strict):
    """The `backup` section of lifeline.yaml (optional; every field has a default)."""

    schedule: ScheduleConfig = ScheduleConfig()
    retention: RetentionConfig = RetentionConfig()
    target: TargetConfig = TargetConfig()
    encryption: EncryptionConfig = EncryptionConfig()
    verify: bool = True  # restore each new snapshot into a scratch database and compare
    sql: SqlConfig = SqlConfig()
    kv_buckets: list[str] = Field(default_factory=lambda: [
        "config", "control", "limits", "api-keys", "provider-health"])
    kv_history: list[str] = Field(default_factory=lambda: ["config"])  # every revision kept
    status_history_days: float = Field(default=30.0, ge=0)  # of the STATUS stream
    directories: dict[str, Path] = Field(default_factory=dict)  # name -> path (relative: to cwd)
    rows_per_part: int = Field(default=50_000, ge=100)  # rows per artifact of a big table
    compression_level: int = Field(default=6, ge=1, le=9)  # gzip
    replay: ReplayConfig = ReplayConfig()

    @field_validator("directories")
    @classmethod
    def _names_are_plain(cls, value: dict[str, Path]) -> dict[str, Path]:
        for name in value:
            if not name or "/" in name or name.startswith("."):
                raise ValueError(f"directory name {name!r}: use a plain name (no '/', no leading '.')")
        return value
