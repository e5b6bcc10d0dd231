"""The notifier's edge: the STATUS listener, the status page app, and their background tasks.

Shaped like aiohttp's background_tasks example: one aiohttp application whose `cleanup_ctx`
starts the database, the live-update hub, the alert delivery worker and the timers, and cancels
them on the way out, each under a typed `web.AppKey`. The bus listener is a FastStream durable
pull consumer (so the runtime drains it on SIGTERM like every other service's), started after
that app is up and stopped before it goes down.
"""

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from faststream.middlewares import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsMessage, NatsRouter, PullSub
from nats.js.errors import KeyNotFoundError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas import events as ev
from schemas import subjects
from schemas.streams import CONTROL, STATUS
from services.runtime.bus import publish_events
from services.runtime.config import LifelineConfig, load_config
from services.runtime.db import make_engine, migrate
from services.runtime.service import Service

from . import admin, outbox, store
from . import web as pages
from .delivery import Delivery
from .hub import LiveHub
from .metrics import Metrics
from .processing import Processor, TooManyConflicts
from .public_urls import PublicOnlyResolver
from .render import Renderer
from .senders import Retry, Senders
from .settings import NotifierSettings
from .signals import SUBJECTS
from .snapshot import load

log = logging.getLogger(__name__)

DURABLE = "notifier"
POISON_AFTER = 5  # deliveries of an event that keeps failing before it is dead-lettered
delivery_key = web.AppKey("delivery", Delivery)
tasks_key = web.AppKey("tasks", list[asyncio.Task[None]])
http_key = web.AppKey("http", aiohttp.ClientSession)


class NotifierService(Service):
    """A Service that also serves the status page (its URL is known once it listens)."""

    web_app: web.Application
    status_url: str = ""


def build_app(settings: NotifierSettings, *, config: LifelineConfig | None = None,
              clock: Callable[[], datetime] | None = None,
              env: Mapping[str, str] | None = None) -> NotifierService:
    config = config or load_config(settings.config)
    clock = clock or (lambda: datetime.now(UTC))
    env = os.environ if env is None else env
    router = NatsRouter()
    service = NotifierService("notifier", settings, router)
    metrics = Metrics.on(service.metrics)

    app = web.Application()
    service.web_app = app
    app[pages.config_key] = config
    app[pages.clock_key] = clock
    app[pages.metrics_key] = metrics
    app[pages.renderer_key] = Renderer(page_name=config.notifier.page_name,
                                       days=config.notifier.history_days)
    app[pages.token_key] = admin.TokenCheck(env.get(config.notifier.admin_token_env))
    app[pages.bus_key] = _bus(service)
    app.add_routes(pages.routes() + admin.routes())
    app.on_shutdown.append(pages.close_streams)

    async def database(app: web.Application) -> AsyncIterator[None]:
        engine = make_engine(settings.db_url)
        await migrate(engine)
        app[pages.engine_key] = engine
        processor = Processor(engine, config, clock=clock, metrics=metrics, source=service.source,
                              public_url=config.notifier.public_url or _local_url(settings))
        await processor.seed()
        app[pages.processor_key] = processor
        yield
        await engine.dispose()

    async def background_tasks(app: web.Application) -> AsyncIterator[None]:
        processor, engine = app[pages.processor_key], app[pages.engine_key]
        app[http_key] = http = aiohttp.ClientSession()
        # Subscribers' URLs come from anyone: their session resolves to public addresses only.
        public_only = config.notifier.subscriber_webhooks == "public"
        subscriber_http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(
            resolver=PublicOnlyResolver())) if public_only else http
        senders = Senders(config.notifier, http=http, subscriber_http=subscriber_http, env=env,
                          publish=_bus(service).publish,
                          source=service.source, public_url=lambda: processor.public_url,
                          subscriber=lambda sub_id: _subscriber(engine, sub_id))
        delivery = Delivery(engine, config.notifier.delivery, senders, clock=clock,
                            metrics=metrics, write_lock=processor.write_lock)
        app[delivery_key] = delivery
        hub = LiveHub(
            render=lambda: _render_live(app), fingerprint=lambda: _fingerprint(engine),
            poll_s=config.notifier.live_poll_s)
        app[pages.hub_key] = hub
        processor.listeners += [delivery.wake.set, hub.poke]
        app[tasks_key] = [
            asyncio.create_task(delivery.run(), name="notifier-delivery"),
            asyncio.create_task(hub.run(), name="notifier-live"),
            asyncio.create_task(_timers(processor, config), name="notifier-timers"),
        ]
        yield
        for task in app[tasks_key]:
            task.cancel()
        for task, outcome in zip(app[tasks_key], await asyncio.gather(
                *app[tasks_key], return_exceptions=True), strict=True):
            if isinstance(outcome, Exception):  # it died before we stopped it: say so
                log.error("%s had stopped: %r", task.get_name(), outcome)
        await http.close()
        await subscriber_http.close()

    app.cleanup_ctx.extend([database, background_tasks])

    # --- the bus listener ---------------------------------------------------------------------
    for subject, model, what in ((subjects.INCIDENT_OPENED, ev.IncidentOpened, "an incident opened"),
                                 (subjects.INCIDENT_UPDATED, ev.IncidentUpdated,
                                  "an incident changed status or got an update"),
                                 (subjects.INCIDENT_RESOLVED, ev.IncidentResolved,
                                  "an incident resolved, with its measured duration")):
        router.publisher(subject, stream=JStream(STATUS.name, declare=False), schema=model,
                         description=f"{what} (sent from the outbox once committed)")

    @router.subscriber(
        stream=JStream(STATUS.name, declare=False), durable=DURABLE,
        # One message in flight across every instance: events apply in stream order
        # (a provider's down before its up), and a restart resumes where the durable left off.
        config=ConsumerConfig(filter_subjects=list(subjects.STATUS_SUBJECTS), max_ack_pending=1,
                              ack_wait=30),
        pull_sub=PullSub(batch_size=1, timeout=1.0), ack_policy=AckPolicy.MANUAL,
        description="every status subject (STATUS stream, durable consumer `notifier`): "
                    "components, incidents and alerts; idempotent on the event id",
    )
    async def on_status(msg: NatsMessage) -> None:
        subject = msg.raw_message.subject
        entry = SUBJECTS.get(subject)
        if entry is None:  # a subject added to the stream after this build: nothing to do
            await msg.ack()
            return
        model, _ = entry
        try:
            event = model.model_validate_json(msg.body)
        except ValidationError as e:
            await _deadletter(service, subject, msg.body, _reason(e))
            await msg.ack()
            return
        try:
            await app[pages.processor_key].handle(subject, event)
        except Exception as e:  # errors are values here: the event is kept, retried or set aside
            if _transient(e):  # the database is away or busy: keep the event, try again soon
                log.warning("%s %s not applied yet: %r", subject, getattr(event, "id", "?"), e)
                await msg.nack(delay=2.0)
                return
            # Anything else would fail again for ever and, with one message in flight, block
            # every later status event: after a few tries it is dead-lettered with the reason.
            tries = msg.raw_message.metadata.num_delivered or 1
            log.exception("%s %s failed (try %d)", subject, getattr(event, "id", "?"), tries)
            if tries < POISON_AFTER:
                await msg.nack(delay=0.2)
                return
            await _deadletter(service, subject, msg.body, f"failed {tries} times: {e!r}"[:500])
        await msg.ack()

    runner: list[web.AppRunner] = []

    async def start_page() -> None:
        app_runner = web.AppRunner(app, shutdown_timeout=2.0)
        await app_runner.setup()
        site = web.TCPSite(app_runner, settings.status_host, settings.status_port)
        await site.start()
        runner.append(app_runner)
        host, port = app_runner.addresses[0][:2]
        service.status_url = f"http://{host}:{port}"
        app[pages.processor_key].public_url = (config.notifier.public_url or service.status_url).rstrip("/")
        log.info("status page at %s", service.status_url)

    async def stop_page() -> None:
        for app_runner in runner:
            await app_runner.cleanup()
        runner.clear()

    service.on_start(start_page)
    service.on_stop(stop_page)
    return service


def _transient(e: BaseException) -> bool:
    """A failure that goes away by itself: the database unreachable, restarting or contended."""
    if isinstance(e, DBAPIError) and e.connection_invalidated:
        return True
    return isinstance(e, (OSError, TimeoutError, OperationalError, InterfaceError,
                          TooManyConflicts))


def _local_url(settings: NotifierSettings) -> str:
    return f"http://{settings.status_host}:{settings.status_port}"


def _reason(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}" for err in e.errors())[:500]


async def _deadletter(service: Service, subject: str, body: bytes, reason: str) -> None:
    log.error("dead-lettering a %s message: %s", subject, reason)
    await service.broker.connection.publish(
        subjects.deadletter(subject), body, headers={subjects.DEADLETTER_REASON_HEADER: reason})


def _bus(service: Service) -> pages.Bus:
    def js():  # type: ignore[no-untyped-def]
        return service.broker.config.connection_state.stream

    async def kv_get(key: str) -> bytes | None:
        try:
            return (await (await js().key_value(CONTROL.name)).get(key)).value
        except KeyNotFoundError:
            return None

    async def kv_put(key: str, value: bytes) -> None:
        await (await js().key_value(CONTROL.name)).put(key, value)

    async def publish(subject: str, payload: bytes, msg_id: str) -> None:
        [failure] = await publish_events(js(), [(subject, payload, msg_id)])
        if failure is not None:
            raise Retry(f"publishing {subject}: {failure!r}")

    return pages.Bus(kv_get=kv_get, kv_put=kv_put, publish=publish)


async def _subscriber(engine: AsyncEngine, sub_id: str) -> outbox.Subscriber | None:
    async with engine.connect() as conn:
        return await outbox.subscriber(conn, sub_id)


async def _render_live(app: web.Application) -> str:
    snap = await load(app[pages.engine_key], app[pages.config_key], app[pages.clock_key]())
    return app[pages.renderer_key].live(snap)


async def _fingerprint(engine: AsyncEngine) -> tuple[Any, ...]:
    async with engine.connect() as conn:
        return await store.fingerprint(conn)


async def _timers(processor: Processor, config: LifelineConfig) -> None:
    """Resolves incidents whose quiet period passed; prunes what is too old to matter."""
    policy = config.notifier.incidents
    tick = min(5.0, max(0.1, policy.resolve_after_s / 4))
    ticks = 0
    while True:
        await asyncio.sleep(tick)
        ticks += 1
        try:
            await processor.settle_due()
            if ticks % max(1, int(3600 / tick)) == 0:
                await processor.prune()
        except (SQLAlchemyError, OSError, TooManyConflicts) as e:
            log.warning("notifier timers: %r", e)
