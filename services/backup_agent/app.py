"""The backup-agent's edge: the schedule, backup.request and restore.request (request-reply,
queue group), events, metrics; the target opened for the service's lifetime."""

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime

from faststream.nats import NatsMessage, NatsRouter
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError

from schemas import subjects
from schemas.backup import BackupReply, BackupRequest, RestoreReply, RestoreRequest
from schemas.events import BackupCompleted, BackupFailed, BackupVerified, Event, RestoreCompleted
from schemas.streams import BACKUP_RUNS
from services.runtime.bus import publish_events
from services.runtime.config import LifelineConfig, load_config
from services.runtime.config.backup import ScheduleConfig
from services.runtime.service import Service
from services.runtime.validation import parse

from . import schedule
from .agent import BackupAgent
from .errors import describe
from .metrics import Metrics
from .restore import RESTORE_ERRORS, restore
from .settings import BackupAgentSettings
from .snapshot import Sources
from .targets import Target
from .wiring import key_of, make_target

log = logging.getLogger(__name__)

QUEUE_GROUP = "backup-agent"


def build_app(settings: BackupAgentSettings, *, config: LifelineConfig | None = None,
              target: Target | None = None,
              clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Service:
    config = config or load_config(settings.config)
    cfg = config.backup
    router = NatsRouter()
    service = Service("backup-agent", settings, router)
    metrics = Metrics.on(service.metrics)
    target = target or make_target(cfg, settings, os.environ)
    key = key_of(cfg, os.environ)
    if cfg.encryption.enabled and key is None:
        raise RuntimeError(f"backup.encryption is enabled but {cfg.encryption.key_env} is not set")

    for subject, schema, what in [
        (subjects.BACKUP_COMPLETED, BackupCompleted, "a snapshot was written (not yet verified)"),
        (subjects.BACKUP_VERIFIED, BackupVerified,
         "a snapshot was restored into a scratch database and matched its manifest"),
        (subjects.BACKUP_FAILED, BackupFailed, "a snapshot, its verification or retention failed"),
        (subjects.RESTORE_COMPLETED, RestoreCompleted, "a restore finished (duration, rows)"),
    ]:  # declared for the AsyncAPI document; published with publish_events (message ids)
        router.publisher(subject, schema=schema, description=what)

    def js() -> JetStreamContext:
        return service.broker.config.connection_state.stream

    async def publish(subject: str, event: Event) -> None:
        [failure] = await publish_events(js(), [(subject, event.model_dump_json().encode(), event.id)])
        if failure:
            log.error("%s %s not published: %r", subject, event.id, failure)

    agent = BackupAgent(
        config=cfg, target=target, key=key, clock=clock, publish=publish, metrics=metrics,
        source=service.source, scratch_url=settings.backup_verify_db_url,
        scratch_dir=settings.scratch_dir,
        sources=lambda: Sources(db_url=settings.db_url, js=js(), config_path=settings.config))
    busy = [0]
    service.in_flight = lambda: busy[0]

    @router.subscriber(subjects.BACKUP_REQUEST, queue=QUEUE_GROUP,
                       description="request-reply: take a snapshot now (and verify it)",
                       include_in_schema=False)  # raw bytes in: schemas/asyncapi.py documents it
    async def backup_now(msg: NatsMessage) -> bytes:
        request = parse(BackupRequest, msg.body or b"{}")
        if isinstance(request, str):
            return BackupReply(error=request).model_dump_json().encode()
        busy[0] += 1
        try:
            reply = await agent.cycle(reason=request.reason or "backup.request",
                                      verify=request.verify)
        finally:
            busy[0] -= 1
        return reply.model_dump_json().encode()

    @router.subscriber(subjects.RESTORE_REQUEST, queue=QUEUE_GROUP,
                       description="request-reply: restore a snapshot (optionally replaying "
                                   "LLM_EVENTS to a time); announced on restore.completed",
                       include_in_schema=False)
    async def restore_now(msg: NatsMessage) -> bytes:
        request = parse(RestoreRequest, msg.body)
        if isinstance(request, str):
            return RestoreReply(error=request).model_dump_json().encode()
        to = request.to_time or ("now" if request.replay else None)
        busy[0] += 1
        try:
            result = await restore(request.snapshot_id, to=to, force=request.force,
                                   settings=settings, config=config, nc=service.broker.connection,
                                   target=_Borrowed(target), source=service.source)
        except RESTORE_ERRORS as e:
            return RestoreReply(snapshot_id=request.snapshot_id, error=describe(e)).model_dump_json().encode()
        finally:
            busy[0] -= 1
        return RestoreReply(snapshot_id=result.snapshot_id, rows=result.total_rows,
                            replayed=result.replayed, duration_s=result.duration_s,
                            figures=result.figures(), error="; ".join(result.warnings) or None,
                            ).model_dump_json().encode()

    tasks: list[asyncio.Task[None]] = []

    async def start() -> None:
        await target.__aenter__()
        if (last := await agent.last_snapshot_at()) is not None:
            metrics.last_snapshot.set(last.timestamp())
        await agent.record_config(agent.sources())
        tasks.append(asyncio.create_task(_scheduled(agent, cfg.schedule, js, clock, service,
                                                    busy)))

    async def stop() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await target.__aexit__(None, None, None)

    service.on_start(start)
    service.on_stop(stop)
    return service


class _Borrowed:
    """The service's open target, lent to restore() without it closing it."""

    def __init__(self, target: Target) -> None:
        self._target = target

    async def __aenter__(self) -> Target:
        return self._target

    async def __aexit__(self, *exc: object) -> None:
        return None


async def _scheduled(agent: BackupAgent, sched: ScheduleConfig, js: Callable[[], JetStreamContext],
                     clock: Callable[[], datetime], service: Service, busy: list[int]) -> None:
    while (at := schedule.next_run(sched, clock())) is not None:
        await asyncio.sleep(max(0.0, (at - clock()).total_seconds()))
        if service.intake_closed.is_set():
            return  # stopping: no new snapshot (a running one is waited for, see `busy`)
        busy[0] += 1  # from the claim on: a stop waits for this run (up to graceful_timeout)
        try:
            if await _claim(js(), at, service.source):  # else another instance takes it
                await agent.cycle(reason="scheduled")
        except Exception:
            log.exception("scheduled backup at %s failed unexpectedly", at.isoformat())
        finally:
            busy[0] -= 1


async def _claim(js: JetStreamContext, at: datetime, source: str) -> bool:
    """Only one instance can create the run's key. If the bus cannot say, take the run: two
    snapshots are better than none."""
    try:
        kv = await js.key_value(BACKUP_RUNS.name)
        await kv.create(schedule.slot_key(at), source.encode())
        return True
    except KeyWrongLastSequenceError:
        return False
    except NatsError as e:
        log.warning("could not claim the %s run (%r); taking it anyway", at.isoformat(), e)
        return True

