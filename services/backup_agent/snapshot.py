"""Taking a snapshot: the events sequence first, then the SQL store in one consistent read, the
KV buckets, the STATUS stream's recent history, lifeline.yaml and the configured directories;
each artifact compressed, sealed, hashed and stored as it is made; the manifest last."""

import importlib.metadata
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext

from services.runtime.config.backup import BackupConfig
from services.runtime.db import current_revisions, make_engine

from . import bus_state, files
from .codec import Compressor, Sealer, compress, fingerprint, sha256
from .errors import describe
from .manifest import MANIFEST, SEAL, Artifact, Encryption, Manifest, RowsChecksum, new_id, seal_of
from .sql_export import TablePart, consistent_read, export_tables
from .targets import Target

log = logging.getLogger(__name__)


def lifeline_version() -> str:
    try:
        return importlib.metadata.version("lifeline")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass(kw_only=True)
class Sources:
    """Where a snapshot reads from."""

    db_url: str
    js: JetStreamContext | None  # None: the bus is not part of it (no KV, STATUS, sequence)
    config_path: Path | None = None  # the active lifeline.yaml
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)  # extra databases' URLs


class SnapshotError(Exception):
    """A source could not be read; the partial snapshot was deleted."""


class _Writer:
    def __init__(self, target: Target, manifest: Manifest, sealer: Sealer, level: int) -> None:
        self.target, self.manifest, self.sealer, self.level = target, manifest, sealer, level

    def _name(self, name: str) -> str:
        return name + ".enc" if self.sealer.encrypted else name

    async def put(self, name: str, compressed: bytes, **fields: Any) -> None:
        name = self._name(name)
        stored = self.sealer.seal(name, compressed)
        await self.target.put(self.manifest.id, name, stored)
        self.manifest.artifacts.append(
            Artifact(name=name, bytes=len(stored), sha256=sha256(stored), **fields))

    async def lines(self, name: str, kind: str, rows: list[dict[str, Any]], **fields: Any) -> None:
        c, checksum = Compressor(self.level), RowsChecksum()
        for row in rows:
            line = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
            checksum.add(line)
            c.add(line + b"\n")
        await self.put(name, c.finish(), kind=kind, rows=checksum.rows,
                       content_sha256=checksum.hexdigest(), **fields)

    async def file(self, name: str, kind: str, data: bytes, **fields: Any) -> None:
        await self.put(name, compress(data, self.level), kind=kind, content_sha256=sha256(data),
                       **fields)

    def table_emitter(self, source: str, folder: str) -> Callable[[TablePart], Any]:
        async def emit(part: TablePart) -> None:
            await self.put(f"{folder}/{part.table}.{part.part:04d}.jsonl.gz", part.data,
                           kind="sql", rows=part.rows, content_sha256=part.checksum,
                           table=part.table, part=part.part, columns=part.columns, source=source)
        return emit


async def take_snapshot(target: Target, sources: Sources, config: BackupConfig, *,
                        key: bytes | None, now: datetime, reason: str = "",
                        source: str = "") -> Manifest:
    """Writes one complete snapshot to `target` and returns its manifest. On any failure the
    partial snapshot is deleted and SnapshotError raised (naming what failed)."""
    enc = config.encryption
    if enc.enabled and key is None:
        raise SnapshotError(f"encryption is enabled but {enc.key_env} is not set")
    manifest = Manifest(
        id=new_id(now), created_at=now, lifeline_version=lifeline_version(), reason=reason,
        source=source,
        encryption=Encryption(key_env=enc.key_env, key_fingerprint=fingerprint(key))
        if enc.enabled and key else None)
    writer = _Writer(target, manifest, Sealer(key if manifest.encryption else None, manifest.id),
                     config.compression_level)
    stage = "events sequence"
    started = time.monotonic()
    try:
        if sources.js is not None:
            coverage = await bus_state.covered_seq(sources.js, config.replay.consumers)
            manifest.events_seq, manifest.events_stream_last_seq = coverage.seq, coverage.last_seq
            manifest.consumer_floors = coverage.floors
        stage = "the SQL store"
        await _sql(writer, sources.db_url, config, manifest)
        for extra in config.sql.extra_tables:
            stage = f"extra table {extra.name}"
            if extra.db_schema is None and extra.db_url_env is None:
                # In the main database's default schema: exported with every other table.
                if not any(a.table == extra.name for a in manifest.artifacts):
                    raise SnapshotError(f"extra table {extra.name} does not exist (or is in "
                                        "sql.exclude)")
                continue
            url = sources.env.get(extra.db_url_env, "") if extra.db_url_env else sources.db_url
            if not url:
                raise SnapshotError(f"{extra.db_url_env} (extra table {extra.name}) is not set")
            await _extra(writer, url, extra.db_schema, extra.name, extra.db_url_env or "main",
                         config)
        if sources.js is not None:
            stage = "the KV buckets"
            for bucket in config.kv_buckets:
                rows = await bus_state.export_kv(sources.js, bucket,
                                                 history=bucket in config.kv_history)
                await writer.lines(f"kv/{bucket}.jsonl.gz", "kv", rows, source=bucket)
            stage = "the STATUS stream"
            since = now - timedelta(days=config.status_history_days)
            rows = await bus_state.export_status(sources.js, since)
            await writer.lines("stream/STATUS.jsonl.gz", "stream", rows, source="STATUS")
        if sources.config_path is not None:
            stage = f"{sources.config_path}"
            await writer.file("config/lifeline.yaml.gz", "config",
                              sources.config_path.read_bytes(), source=str(sources.config_path))
        for name, root in config.directories.items():
            stage = f"directory {name} ({root})"
            await _directory(writer, name, root)
        manifest.finished_at = now + timedelta(seconds=time.monotonic() - started)
        raw = manifest.model_dump_json(indent=1).encode()
        await target.put(manifest.id, SEAL, seal_of(raw, key if manifest.encryption else None).encode())
        await target.put(manifest.id, MANIFEST, raw)  # last: now the snapshot is complete
        await target.commit(manifest.id)
    except Exception as e:
        # Any failure leaves no half snapshot behind; the cause is re-raised to the caller,
        # which publishes backup.failed with it.
        await _discard(target, manifest.id)
        if isinstance(e, SnapshotError):
            raise
        raise SnapshotError(f"reading {stage} failed: {describe(e)}") from e
    return manifest


async def _discard(target: Target, snapshot_id: str) -> None:
    try:
        await target.delete(snapshot_id)
    except OSError as e:
        log.warning("could not delete the partial snapshot %s: %r", snapshot_id, e)


async def _sql(writer: _Writer, db_url: str, config: BackupConfig, manifest: Manifest) -> None:
    engine = make_engine(db_url, pool_size=1)
    try:
        manifest.database = engine.dialect.name
        manifest.schema_revisions = sorted(await current_revisions(engine))
        async with consistent_read(engine) as conn:
            await export_tables(conn, writer.table_emitter("main", "sql"),
                                exclude=config.sql.exclude, part_rows=config.rows_per_part,
                                level=config.compression_level)
    finally:
        await engine.dispose()


async def _extra(writer: _Writer, url: str, schema: str | None, name: str, source: str,
                 config: BackupConfig) -> None:
    engine = make_engine(url, pool_size=1)
    try:
        async with consistent_read(engine) as conn:
            has = await conn.run_sync(lambda c: c.dialect.has_table(c, name, schema=schema))
            if not has:
                where = f"{schema}.{name}" if schema else name
                raise SnapshotError(f"extra table {where} does not exist in its database")
            folder = "sql" if source == "main" else f"sql-{source}"
            await export_tables(conn, writer.table_emitter(source, folder), schema=schema,
                                only=[name], part_rows=config.rows_per_part,
                                level=config.compression_level)
    finally:
        await engine.dispose()


async def _directory(writer: _Writer, name: str, root: Path) -> None:
    if not root.is_dir():
        raise SnapshotError(f"directory {name}: {root} does not exist")
    for rel, path in files.walk(root):
        await writer.file(f"files/{name}/{rel}.gz", "file", path.read_bytes(), source=name,
                          path=rel, root=str(root))
