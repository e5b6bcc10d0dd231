"""What a snapshot is: `manifest.json` beside its artifacts (one directory or object prefix).

The manifest is written last, so a snapshot without one is incomplete (a crash mid-way) and is
neither listed nor restored. It is plain JSON even when the artifacts are encrypted: it says what
is there and how to check it (sizes, row counts, SHA-256), never what the rows hold, except the
names of tables, buckets and files.

Each artifact is JSON Lines (or a file's own bytes), gzip-compressed, then optionally encrypted;
`sha256` and `bytes` are of what is stored, so bit rot and tampering are found without the key;
`content_sha256` is of the rows (see `rows_checksum`), so a restore can be compared with them.
"""

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

FORMAT = 1
MANIFEST = "manifest.json"
# The manifest's own check, written just before it: SHA-256 of its bytes (finds damage), or with
# encryption an HMAC-SHA256 under the key (finds tampering too: only the key holder can make it).
SEAL = "manifest.seal"
VERIFICATION = "verification.json"  # the last check's result, beside the manifest
_MOD = 2**256

ArtifactKind = Literal["sql", "kv", "stream", "config", "file"]


class Column(BaseModel):
    name: str
    type: str  # as the source database declares it ("TIMESTAMP WITH TIME ZONE", "point")
    generic: str  # integer | float | numeric | string | boolean | datetime | date | time | json |
    #               binary | uuid | text (anything else: exported as its text form)
    nullable: bool = True
    primary_key: bool = False


class Artifact(BaseModel):
    name: str  # path within the snapshot, e.g. "sql/turns.0000.jsonl.gz"
    kind: ArtifactKind
    bytes: int  # as stored
    sha256: str  # of the stored bytes
    rows: int | None = None  # lines of JSON; None for a file
    content_sha256: str | None = None  # rows_checksum of the lines, or SHA-256 of a file
    # sql: which table (schema.table for another schema), which part, its columns
    table: str | None = None
    part: int | None = None
    columns: list[Column] | None = None
    source: str | None = None  # sql: "main" or the env var of another database; kv: bucket;
    #                            file: the directory's name; config: the path read
    path: str | None = None  # file: relative to its directory
    root: str | None = None  # file: the directory as configured when the snapshot was taken


class Encryption(BaseModel):
    algorithm: Literal["AES-256-GCM"] = "AES-256-GCM"
    key_env: str
    key_fingerprint: str  # first 16 hex digits of SHA-256(key): which key, not the key


class Manifest(BaseModel):
    format: int = FORMAT
    id: str
    created_at: datetime
    finished_at: datetime | None = None
    lifeline_version: str
    reason: str = ""
    source: str = ""  # the agent instance (or CLI) that took it
    database: str = ""  # dialect of the main database
    schema_revisions: list[str] = Field(default_factory=list)  # Alembic heads of the database
    events_seq: int = 0  # LLM_EVENTS: every event up to here is in the database
    events_stream_last_seq: int = 0  # the stream's last sequence when the snapshot began
    consumer_floors: dict[str, int] = Field(default_factory=dict)  # what events_seq came from
    encryption: Encryption | None = None
    compression: Literal["gzip"] = "gzip"
    artifacts: list[Artifact] = Field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(a.rows or 0 for a in self.artifacts)

    @property
    def bytes(self) -> int:
        return sum(a.bytes for a in self.artifacts)

    def table_rows(self) -> dict[str, int]:
        rows: dict[str, int] = {}
        for a in self.artifacts:
            if a.kind == "sql" and a.table:
                rows[a.table] = rows.get(a.table, 0) + (a.rows or 0)
        return rows


class Verification(BaseModel):
    snapshot_id: str
    at: datetime
    ok: bool
    reason: str | None = None
    duration_s: float = 0.0
    rows: int = 0
    scratch: str = ""  # sqlite | postgresql


def seal_of(raw: bytes, key: bytes | None) -> str:
    if key is None:
        return "sha256:" + hashlib.sha256(raw).hexdigest()
    return "hmac-sha256:" + hmac.new(key, raw, hashlib.sha256).hexdigest()


def new_id(at: datetime) -> str:
    """Sortable by time: 20260131T030000Z-1a2b3c."""
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def time_of(snapshot_id: str) -> datetime | None:
    try:
        return datetime.strptime(snapshot_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


class RowsChecksum:
    """The sum mod 2^256 of each line's SHA-256: independent of the order rows come back in
    (which differs between databases and between a restore and its source)."""

    def __init__(self) -> None:
        self.total = 0
        self.rows = 0

    def add(self, line: bytes) -> None:
        self.total = (self.total + int.from_bytes(hashlib.sha256(line).digest(), "big")) % _MOD
        self.rows += 1

    def hexdigest(self) -> str:
        return f"{self.total:064x}"
