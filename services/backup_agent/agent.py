"""One backup cycle: snapshot → backup.completed → verify → backup.verified | backup.failed →
retention. Shared by the schedule, backup.request and `lifeline backup now --here`; time comes
from the injected clock (a simulated month of daily runs takes seconds)."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from nats.errors import Error as NatsError
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from schemas import subjects
from schemas.backup import BackupReply
from schemas.events import BackupCompleted, BackupFailed, BackupVerified, Event
from services.runtime.config.backup import BackupConfig

from . import retention
from .bus_state import publish_config
from .codec import ArtifactError
from .errors import describe
from .manifest import VERIFICATION, Verification, time_of
from .metrics import Metrics
from .snapshot import SnapshotError, Sources, take_snapshot
from .targets import TARGET_ERRORS, Target
from .verify import verify_snapshot

log = logging.getLogger(__name__)

Publish = Callable[[str, Event], Awaitable[None]]  # (subject, event): stored in JetStream
ORPHAN_AGE = timedelta(days=1)  # an incomplete snapshot older than this is a crash's leftover


@dataclass(kw_only=True)
class BackupAgent:
    config: BackupConfig
    target: Target  # opened
    sources: Callable[[], Sources]  # read at each cycle (the bus connection may be new)
    key: bytes | None
    clock: Callable[[], datetime]
    publish: Publish
    metrics: Metrics | None = None
    source: str = ""
    scratch_url: str = ""
    scratch_dir: Path | None = None

    def __post_init__(self) -> None:
        self._lock = asyncio.Lock()  # one cycle at a time per instance

    async def cycle(self, *, reason: str, verify: bool | None = None) -> BackupReply:
        async with self._lock:
            return await self._cycle(reason, self.config.verify if verify is None else verify)

    async def _cycle(self, reason: str, verify: bool) -> BackupReply:
        started = time.monotonic()
        sources = self.sources()
        await self.record_config(sources)
        try:
            manifest = await take_snapshot(self.target, sources, self.config,
                                           key=self.key, now=self.clock(), reason=reason,
                                           source=self.source)
        except SnapshotError as e:
            log.error("snapshot failed: %s", e)
            self._count("failed")
            await self.publish(subjects.BACKUP_FAILED, BackupFailed(
                source=self.source, snapshot_id=None, stage="snapshot", reason=str(e)))
            return BackupReply(target=self.target.description, error=str(e))
        took = time.monotonic() - started
        reply = BackupReply(snapshot_id=manifest.id, target=self.target.description,
                            artifacts=len(manifest.artifacts), rows=manifest.rows,
                            bytes=manifest.bytes, duration_s=round(took, 3),
                            events_seq=manifest.events_seq)
        self._count("completed")
        if self.metrics:
            self.metrics.last_snapshot.set(manifest.created_at.timestamp())
            self.metrics.duration.set(took)
            self.metrics.bytes.set(manifest.bytes)
            self.metrics.rows.set(manifest.rows)
        log.info("snapshot %s: %d rows, %d bytes in %.1fs", manifest.id, manifest.rows,
                 manifest.bytes, took)
        await self.publish(subjects.BACKUP_COMPLETED, BackupCompleted(
            source=self.source, snapshot_id=manifest.id, target=self.target.description,
            artifacts=reply.artifacts, rows=reply.rows, bytes=reply.bytes,
            duration_s=reply.duration_s, events_seq=manifest.events_seq))
        if verify:
            result = await self.verify(manifest.id)
            reply.verified, reply.verify_s = result.ok, result.duration_s
            if not result.ok:
                reply.error = result.reason
        try:
            await self.apply_retention()
        except TARGET_ERRORS as e:
            log.error("retention failed: %r", e)
            await self.publish(subjects.BACKUP_FAILED, BackupFailed(
                source=self.source, snapshot_id=manifest.id, stage="retention",
                reason=describe(e)))
        return reply

    async def record_config(self, sources: Sources) -> None:
        """The active lifeline.yaml into the config bucket when it changed (its history)."""
        if sources.js is None or sources.config_path is None or not sources.config_path.is_file():
            return
        try:
            if await publish_config(sources.js, sources.config_path.read_bytes()):
                log.info("%s changed: a new revision in the config bucket", sources.config_path)
        except NatsError as e:  # the snapshot still takes the file itself
            log.warning("could not record %s in the config bucket: %r", sources.config_path, e)

    async def verify(self, snapshot_id: str) -> Verification:
        """Verifies one snapshot (also an old one) and announces the verdict."""
        try:
            result = await verify_snapshot(
                self.target, snapshot_id, key=self.key, key_env=self.config.encryption.key_env,
                scratch_url=self.scratch_url, scratch_dir=self.scratch_dir, now=self.clock())
        except (*TARGET_ERRORS, SQLAlchemyError) as e:
            # The check could not run (scratch database or target unreachable): that is no
            # verdict on the snapshot, so nothing is recorded beside it; it is still announced.
            result = Verification(snapshot_id=snapshot_id, at=self.clock(), ok=False,
                                  reason=f"verification could not run: {describe(e)}")
        if self.metrics:
            self.metrics.verify_duration.set(result.duration_s)
        if result.ok:
            await self.publish(subjects.BACKUP_VERIFIED, BackupVerified(
                source=self.source, snapshot_id=snapshot_id, duration_s=result.duration_s,
                rows=result.rows))
        else:
            if self.metrics:
                self.metrics.verify_failures.inc()
            log.error("snapshot %s failed verification: %s", snapshot_id, result.reason)
            await self.publish(subjects.BACKUP_FAILED, BackupFailed(
                source=self.source, snapshot_id=snapshot_id, stage="verify",
                reason=result.reason or "verification failed"))
        return result

    async def apply_retention(self) -> list[str]:
        ids = await self.target.snapshots()
        candidates = [retention.Candidate(i, at, failed=await self._failed(i))
                      for i in ids if (at := time_of(i)) is not None]
        doomed = retention.to_delete(candidates, self.config.retention)
        now = self.clock()
        orphans = [i for i in await self.target.incomplete()
                   if (at := time_of(i)) is not None and now - at > ORPHAN_AGE]
        for snapshot_id in doomed + orphans:
            await self.target.delete(snapshot_id)
        if self.metrics:
            self.metrics.kept.set(len(ids) - len(doomed))
            self.metrics.deleted.inc(len(doomed))
        if doomed:
            log.info("retention deleted %d snapshots: %s", len(doomed), ", ".join(doomed))
        return doomed

    async def _failed(self, snapshot_id: str) -> bool:
        try:
            raw = await self.target.get(snapshot_id, VERIFICATION)
            return not Verification.model_validate_json(raw).ok
        except ArtifactError:
            return False  # not verified (yet): not known to be bad
        except ValidationError:
            return True  # a verdict we cannot read is no proof the snapshot is good

    async def last_snapshot_at(self) -> datetime | None:
        ids = await self.target.snapshots()
        return time_of(ids[-1]) if ids else None

    def _count(self, outcome: str) -> None:
        if self.metrics:
            self.metrics.snapshots.labels(outcome).inc()
