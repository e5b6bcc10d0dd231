"""What the `lifeline` command and the backup agent say to each other, and what the backup agent
asks of the ingesting services during point-in-time recovery (request-reply, not events).

backup.request        BackupRequest -> BackupReply     take a snapshot now (queue group backup-agent)
restore.request       RestoreRequest -> RestoreReply   restore one (queue group backup-agent)
conversation.replay   ReplayRequest -> ReplayReply     conversation store: re-ingest LLM_EVENTS
cost.replay           ReplayRequest -> ReplayReply     cost guard: the same into the spend ledger

A replay request names a range of the LLM_EVENTS stream: from `from_seq` (a stream sequence,
inclusive) up to the first event the stream stored after `to_time` (exclusive; none: the end of
the stream), at most `batch` events per request. The service reads the range itself and answers
with what it did; the caller asks again from `last_seq + 1` until `done`. Ingest is idempotent,
so a range replayed twice changes nothing the second time.

KV bucket `config`, key CONFIG_KEY: the active lifeline.yaml (bytes as read), written by the
backup agent when it changes: the configuration's history, restorable with the rest.
"""

from datetime import datetime

from pydantic import BaseModel, Field

CONFIG_KEY = "lifeline.yaml"


class ReplayRequest(BaseModel):
    from_seq: int = Field(ge=1)  # LLM_EVENTS stream sequence, inclusive
    to_time: datetime | None = None  # events the stream stored after this are left out
    batch: int = Field(default=1000, ge=1, le=10_000)  # events read per request, at most


class ReplayReply(BaseModel):
    read: int = 0  # events read from the stream in this request
    replayed: int = 0  # rows the service wrote that it did not hold (duplicates not counted)
    last_seq: int = 0  # the last stream sequence read (ask again from last_seq + 1)
    done: bool = False  # the range is finished: to_time or the end of the stream reached
    error: str | None = None


class BackupRequest(BaseModel):
    reason: str = ""  # kept in the manifest ("scheduled", "lifeline backup now", a drill id)
    # Restore it into a scratch database and compare before answering; None: as `backup.verify`.
    verify: bool | None = None


class BackupReply(BaseModel):
    snapshot_id: str | None = None
    target: str = ""
    artifacts: int = 0
    rows: int = 0
    bytes: int = 0
    duration_s: float = 0.0
    events_seq: int = 0
    verified: bool | None = None  # None: not verified (asked not to)
    verify_s: float | None = None
    error: str | None = None


class RestoreRequest(BaseModel):
    snapshot_id: str = Field(min_length=1)  # or "latest"
    to_time: datetime | None = None  # replay LLM_EVENTS up to this time (point-in-time recovery)
    replay: bool = False  # replay up to now when to_time is not given
    force: bool = False  # replace what a non-empty database or bucket holds


class RestoreReply(BaseModel):
    snapshot_id: str | None = None
    rows: int = 0
    replayed: int = 0
    duration_s: float = 0.0
    figures: dict[str, object] = Field(default_factory=dict)  # what restore() measured
    error: str | None = None
