"""Restore: check every artifact → tables (one transaction) → KV buckets and STATUS → files →
replay LLM_EVENTS to the recovery time → restore.completed. Also the entry point for drills:

    from services.backup_agent.restore import restore
    result = await restore("latest", to="now")        # settings and lifeline.yaml as the CLI's
    result.figures()  # {"snapshot_id", "duration_s", "rows", "replayed", "phases": {...}, ...}

Nothing is written anywhere until every artifact has passed its checks; a database that holds
rows, or a bucket that holds keys, is refused (left as it is) unless `force`.
"""

import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import nats
from nats.errors import NoServersError
from nats.js.errors import NotFoundError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from schemas import subjects
from schemas.events import RestoreCompleted
from schemas.streams import LLM_EVENTS
from services.runtime.bus import provision, publish_events
from services.runtime.config import LifelineConfig, load_config
from services.runtime.db import make_engine

from . import bus_state
from .codec import ArtifactError, KeyProblem
from .files import Placed, place
from .manifest import Artifact, Manifest
from .reader import Snapshot, SnapshotNotFound, resolve
from .replay import Replayed, replay
from .settings import BackupAgentSettings
from .sql_import import (
    NotEmpty, RestoreError, Written, create_missing, finish_schema, prepare_schema, write_tables,
)
from .targets import TARGET_ERRORS, DirectoryTarget, Target
from .wiring import key_of, make_target

log = logging.getLogger(__name__)


class RestoreFailed(Exception):
    """The restore could not start or finish (the bus is unreachable, ...)."""


# What a restore raises for a reason an operator can act on (printed without a traceback).
RESTORE_ERRORS = (ArtifactError, KeyProblem, SnapshotNotFound, NotEmpty, RestoreError,
                  RestoreFailed, SQLAlchemyError, *TARGET_ERRORS)


@dataclass
class RestoreResult:
    snapshot_id: str
    snapshot_at: datetime
    to_time: datetime | None = None
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows restored
    created_tables: list[str] = field(default_factory=list)
    wiped: dict[str, int] = field(default_factory=dict)  # force: rows deleted first
    kv: dict[str, str] = field(default_factory=dict)  # bucket -> restored | kept | replaced
    status_events: int = 0  # STATUS events republished (into an empty stream)
    files: Placed = field(default_factory=Placed)
    events_seq: int = 0  # replay started after this LLM_EVENTS sequence
    replay: list[Replayed] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds: check, tables, bus, files, replay
    duration_s: float = 0.0
    event_id: str | None = None  # restore.completed
    warnings: list[str] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def replayed(self) -> int:
        return sum(r.replayed for r in self.replay)

    @property
    def ok(self) -> bool:
        return not any(r.error for r in self.replay)

    def figures(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(total_rows=self.total_rows, replayed_total=self.replayed, ok=self.ok)
        return out


Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def restore(snapshot: str = "latest", *, to: datetime | Literal["now"] | None = None,
                  force: bool = False, settings: BackupAgentSettings | None = None,
                  config: LifelineConfig | None = None, nc: nats.NATS | None = None,
                  target: Target | None = None, db_url: str | None = None,
                  env: Mapping[str, str] | None = None, clock: Clock = _utcnow,
                  source: str = "lifeline restore") -> RestoreResult:
    """Restores `snapshot` ("latest" or an id) into the database of `db_url` (default
    LIFELINE_DB_URL) and the bus; with `to`, replays LLM_EVENTS up to that time ("now": the
    moment the restore began). Raises on a snapshot that fails its checks, a non-empty target
    without `force`, an unreachable bus; a replay a service did not finish is reported in
    `warnings` and `replay[].error` (`ok` is False), the restored state stays."""
    settings = settings or BackupAgentSettings()
    lifeline = config or load_config(settings.config)
    env = os.environ if env is None else env
    to_time = clock() if to == "now" else to
    own_nc = nc is None
    if nc is None:
        nc = await _connect(settings.nats_url)
    try:
        async with (target or make_target(lifeline.backup, settings, env)) as opened:
            return await _restore(opened, snapshot, to_time, force, settings, lifeline, nc,
                                  db_url or settings.db_url, env, source)
    finally:
        if own_nc:
            await nc.drain()


async def _connect(url: str) -> nats.NATS:
    try:
        return await nats.connect(url, connect_timeout=2, max_reconnect_attempts=2,
                                  allow_reconnect=True, reconnect_time_wait=0.5)
    except (NoServersError, OSError):
        raise RestoreFailed(f"cannot reach NATS at {url}: a restore puts back KV state and "
                            "replays events, so the bus must be up") from None


async def _restore(target: Target, snapshot_id: str, to_time: datetime | None, force: bool,
                   settings: BackupAgentSettings, lifeline: LifelineConfig, nc: nats.NATS,
                   db_url: str, env: Mapping[str, str], source: str) -> RestoreResult:
    cfg = lifeline.backup
    started = time.monotonic()
    mark = started
    snapshot_id = await resolve(target, snapshot_id)

    def phase(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        result.phases[name] = round(now - mark, 3)
        mark = now

    with tempfile.TemporaryDirectory(prefix="lifeline-restore-", dir=settings.scratch_dir) as spool:
        snap = Snapshot(target, snapshot_id, key=key_of(cfg, env), key_env=cfg.encryption.key_env,
                        spool=None if isinstance(target, DirectoryTarget) else Path(spool))
        manifest = await snap.check_all()  # before anything is written
        result = RestoreResult(snapshot_id=snapshot_id, snapshot_at=manifest.created_at,
                               to_time=to_time, events_seq=manifest.events_seq)
        phase("check")
        await _tables(snap, manifest, db_url, env, force, result)
        phase("tables")
        js = nc.jetstream()
        await provision(js)  # a new bus gets its streams and buckets first
        for artifact in _of(manifest, "kv"):
            rows = await snap.records(artifact)
            result.kv[artifact.source or ""] = await bus_state.restore_kv(
                js, artifact.source or "", rows, force=force)
        for artifact in _of(manifest, "stream"):
            result.status_events = await bus_state.restore_status(js, await snap.records(artifact))
        phase("bus")
        for artifact in _of(manifest, "config", "file"):
            where = _file_path(artifact, settings, lifeline)
            place(where, await snap.plain(artifact), snapshot_id, force=force,
                        placed=result.files)
        phase("files")
    if to_time is not None:
        await _replay(nc, cfg, manifest, to_time, result)
        phase("replay")
    result.duration_s = round(time.monotonic() - started, 3)
    event = RestoreCompleted(source=source, snapshot_id=snapshot_id, to_time=to_time,
                             rows=result.total_rows, replayed=result.replayed,
                             duration_s=result.duration_s)
    [failure] = await publish_events(nc.jetstream(), [(subjects.RESTORE_COMPLETED,
                                                       event.model_dump_json().encode(), event.id)])
    if failure:
        result.warnings.append(f"restore.completed was not published: {failure!r}")
    else:
        result.event_id = event.id
    return result


def _of(manifest: Manifest, *kinds: str) -> list[Artifact]:
    return [a for a in manifest.artifacts if a.kind in kinds]


async def _tables(snap: Snapshot, manifest: Manifest, db_url: str, env: Mapping[str, str],
                  force: bool, result: RestoreResult) -> None:
    by_source: dict[str, dict[str, Any]] = {}
    for a in _of(manifest, "sql"):
        by_source.setdefault(a.source or "main", {})[a.table] = a.columns or []
    for source, tables in by_source.items():
        url = db_url if source == "main" else env.get(source, "")
        if not url:
            raise RestoreFailed(f"the snapshot holds tables of the database in {source}, "
                                "which is not set")
        engine = make_engine(url, pool_size=2)
        try:
            if source == "main":
                await prepare_schema(engine, manifest.schema_revisions)
            for schema in {t.rpartition(".")[0] for t in tables if "." in t}:
                async with engine.begin() as conn:
                    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            created = await create_missing(engine, tables, source_dialect=manifest.database)
            written: Written = await write_tables(
                engine, list(tables), lambda t, s=source: snap.rows_of(t, s), force=force)
            if source == "main":
                await finish_schema(engine)
        finally:
            await engine.dispose()
        result.created_tables += created
        result.rows.update(written.rows)
        result.wiped.update(written.wiped)


def _file_path(artifact: Artifact, settings: BackupAgentSettings, lifeline: LifelineConfig) -> Path:
    if artifact.kind == "config":
        return Path(settings.config)
    root = lifeline.backup.directories.get(artifact.source or "") or Path(artifact.root or ".")
    return Path(root) / (artifact.path or "")


async def _replay(nc: nats.NATS, cfg: Any, manifest: Manifest, to_time: datetime,
                  result: RestoreResult) -> None:
    js = nc.jetstream()
    try:
        state = (await js.stream_info(LLM_EVENTS.name)).state
    except NotFoundError:
        result.warnings.append("no LLM_EVENTS stream: nothing to replay; the recovery point is "
                               "the snapshot")
        return
    start = manifest.events_seq + 1
    if state.last_seq < manifest.events_seq:
        result.warnings.append(
            f"LLM_EVENTS ends at {state.last_seq}, before the snapshot's {manifest.events_seq}: "
            "the stream was replaced (a new bus); nothing to replay")
        return
    if state.messages and state.first_seq > start:
        result.warnings.append(
            f"{state.first_seq - start} events after the snapshot are gone from LLM_EVENTS "
            "(older than its max age): their recovery point is the snapshot")
    for subject in cfg.replay.subjects:
        done = await replay(nc, subject, from_seq=start, to_time=to_time, batch=cfg.replay.batch,
                            wait_s=cfg.replay.wait_s, timeout_s=cfg.replay.request_timeout_s)
        result.replay.append(done)
        if done.error:
            result.warnings.append(done.error)
