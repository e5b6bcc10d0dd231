"""The conversation-store's edge: llm.completed -> turns (durable, batched), history, purge and
replay after a restore (request-reply, queue group), the retention sweep; the database migrated
at start-up."""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from faststream import AckPolicy, Context
from faststream.nats import JStream, NatsMessage, NatsRouter, PullSub
from faststream.nats.message import NatsBatchMessage
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy.exc import SQLAlchemyError

from schemas import subjects
from schemas.backup import ReplayReply, ReplayRequest
from schemas.events import ConversationPurged, HistoryReply, PurgeReply
from schemas.streams import LLM_EVENTS, STATUS
from services.runtime.bus import publish_events
from services.runtime.config import ConfigError, LifelineConfig, load_config
from services.runtime.config.store import IngestConfig
from services.runtime.service import Service

from . import jobs, logic, replay
from .ingest import Ingest
from .metrics import StoreMetrics
from .settings import ConversationStoreSettings
from .store import RowError, TurnStore

log = logging.getLogger(__name__)

DURABLE = "conversation-store"  # the JetStream consumer every instance shares
QUEUE_GROUP = "conversation-store"
DB_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
REPLY_HEADROOM = 4096  # bytes of a reply's message left for headers and framing


def consumer_config(ingest: IngestConfig) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=DURABLE, name=DURABLE, filter_subject=subjects.LLM_COMPLETED,
        ack_policy=JsAckPolicy.EXPLICIT, ack_wait=ingest.ack_wait_s,
        deliver_policy=DeliverPolicy.ALL,  # a new store catches up on what the stream holds
        max_deliver=-1,  # never given up on: a turn that cannot be stored is dead-lettered by us
        max_ack_pending=max(1000, 4 * ingest.batch_size),  # a batch per instance in flight
    )


def build_app(settings: ConversationStoreSettings, *, config: LifelineConfig | None = None,
              clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Service:
    config = config or load_config(settings.config)
    _check_retention_routes(config, settings)
    cfg = config.store
    router = NatsRouter()
    service = Service("conversation-store", settings, router)
    metrics = StoreMetrics(service.metrics)
    store = TurnStore(settings.db_url)

    deadletters = router.publisher(
        subjects.deadletter(subjects.LLM_COMPLETED),
        description="an llm.completed event that is not a valid LlmCompleted, or a turn the "
                    f"database refused; the reason is in the {subjects.DEADLETTER_REASON_HEADER} header")
    router.publisher(subjects.CONVERSATION_PURGED, stream=STATUS.name, schema=ConversationPurged,
                     description="a user's conversations were deleted (counts, reason, actor)")

    async def deadletter(msg: Msg, reason: str) -> None:
        seq = msg.metadata.sequence.stream if msg.reply else None
        # A header is one line: a database's multi-line error would break the protocol.
        one_line = " ".join(reason.split())[:1000]
        await deadletters.publish(msg.data, headers={
            subjects.DEADLETTER_REASON_HEADER: one_line, "Lifeline-Stream-Seq": str(seq)})

    ingest = Ingest(store, ingest=cfg.ingest, retention=cfg.retention, metrics=metrics,
                    deadletter=deadletter, stopping=service.intake_closed, clock=clock)
    service.health.add_check(lambda: ingest.failing and f"database failing: {ingest.failing}")
    service.in_flight = lambda: ingest.holding

    @router.subscriber(
        subjects.LLM_COMPLETED, stream=JStream(LLM_EVENTS.name, declare=False), durable=DURABLE,
        pull_sub=PullSub(batch_size=cfg.ingest.batch_size, timeout=cfg.ingest.max_wait_ms / 1000,
                         batch=True),
        config=consumer_config(cfg.ingest), ack_policy=AckPolicy.MANUAL, decoder=_bodies,
        description="every finished request; status ok becomes a turn (durable consumer "
                    f"{DURABLE!r}, batched, acked after commit)",
        include_in_schema=False)  # raw bytes in: schemas/asyncapi.py documents it
    async def completed(_: list[bytes], batch: Annotated[NatsBatchMessage, Context("message")]) -> None:
        await ingest.handle(batch.raw_message)

    @router.subscriber(subjects.CONVERSATION_HISTORY_GET, queue=QUEUE_GROUP,
                       max_workers=settings.history_workers,
                       description="request-reply: a session's turns, oldest first",
                       include_in_schema=False)
    async def history(msg: NatsMessage) -> bytes:
        request = logic.parse_history_request(msg.body)
        if isinstance(request, str):
            metrics.history_requests.labels("bad_request").inc()
            return _reply(HistoryReply(session_id=logic.field_of(msg.body, "session_id"),
                                       error=request))
        limit = min(request.limit or cfg.history.max_turns, cfg.history.max_turns)
        try:
            turns, older = await store.history(request.session_id, limit)
        except DB_ERRORS as e:
            metrics.history_requests.labels("error").inc()
            log.warning("history of %s not read: %r", request.session_id, e)
            return _reply(HistoryReply(session_id=request.session_id,
                                       error=f"history unavailable: the database failed ({type(e).__name__})"))
        metrics.history_requests.labels("ok").inc()
        max_bytes = service.broker.config.connection_state.connection.max_payload - REPLY_HEADROOM
        return _reply(logic.fit(HistoryReply(session_id=request.session_id, turns=turns,
                                             truncated=older), max_bytes))

    @router.subscriber(subjects.CONVERSATION_PURGE, queue=QUEUE_GROUP,
                       description="request-reply: delete every turn and conversation of a user; "
                                   "announced on conversation.purged",
                       include_in_schema=False)
    async def purge(msg: NatsMessage) -> bytes:
        request = logic.parse_purge_request(msg.body)
        if isinstance(request, str):
            return _reply(PurgeReply(user_id=logic.field_of(msg.body, "user_id"), error=request))
        event = ConversationPurged(source=service.source, user_id=request.user_id, turns=0,
                                   conversations=0, reason=request.reason, actor=request.actor)
        try:
            n_turns, n_conversations = await store.purge_user(
                request.user_id, purge_id=event.id, at=event.occurred_at, reason=request.reason,
                actor=request.actor)
        except DB_ERRORS as e:
            log.error("purge of user %s failed: %r", request.user_id, e)
            return _reply(PurgeReply(user_id=request.user_id, error=(
                f"purge failed, nothing was deleted: the database failed ({type(e).__name__})")))
        metrics.purged_turns.inc(n_turns)
        event = event.model_copy(update={"turns": n_turns, "conversations": n_conversations})
        log.warning("purged user %s: %d turns, %d conversations (%s, by %s)", request.user_id,
                    n_turns, n_conversations, request.reason, request.actor or "unnamed")
        js = service.broker.config.connection_state.stream
        [failure] = await publish_events(js, [(subjects.CONVERSATION_PURGED,
                                               event.model_dump_json().encode(), event.id)])
        return _reply(PurgeReply(
            user_id=request.user_id, turns=n_turns, conversations=n_conversations,
            event_id=event.id,
            error=f"purged, but conversation.purged was not published: {failure!r}" if failure else None))

    @router.subscriber(subjects.CONVERSATION_REPLAY, queue=QUEUE_GROUP,
                       description="request-reply: re-ingest a range of LLM_EVENTS after a "
                                   "restore (point-in-time recovery); idempotent",
                       include_in_schema=False)
    async def replay_events(msg: NatsMessage) -> bytes:
        request = logic.parse(ReplayRequest, msg.body)
        if isinstance(request, str):
            return ReplayReply(error=request).model_dump_json().encode()
        try:
            reply = await replay.replay(service.broker.config.connection_state.stream, store,
                                        request, retention=cfg.retention, clock=clock)
        except (*DB_ERRORS, RowError, NatsError) as e:
            # The error's type and first line only: SQLAlchemy appends the rows it tried to write.
            cause = getattr(e, "orig", None) or e
            what = f"{type(cause).__name__}: {(str(cause).splitlines() or [''])[0]}"[:300]
            log.error("replay from sequence %d failed: %s", request.from_seq, what)
            reply = ReplayReply(last_seq=request.from_seq - 1, error=f"replay failed: {what}")
        return reply.model_dump_json().encode()

    tasks: list[asyncio.Task[None]] = []

    async def start() -> None:
        await _open_with_retry(store, settings.db_start_timeout)
        js = service.broker.config.connection_state.stream
        await js.add_consumer(LLM_EVENTS.name, consumer_config(cfg.ingest))  # create or update
        tasks.append(asyncio.create_task(jobs.read_lag_forever(
            js, LLM_EVENTS.name, DURABLE, metrics, settings.lag_interval)))
        if cfg.retention.default_days or any(cfg.retention.routes.values()):
            tasks.append(asyncio.create_task(jobs.sweep_forever(store, cfg.retention, metrics, clock)))

    async def stop() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()

    service.on_start(start)
    service.on_stop(stop)
    return service


async def _bodies(msg: NatsBatchMessage) -> list[bytes]:
    """The batch's raw bodies: each is parsed (or dead-lettered) by the handler itself."""
    return msg.body  # type: ignore[return-value]


def _reply(model: HistoryReply | PurgeReply) -> bytes:
    return model.model_dump_json().encode()


async def _open_with_retry(store: TurnStore, timeout: float) -> None:
    """Opens and migrates the database, waiting for it (up to `timeout`) if it is not up yet."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.2
    while True:
        try:
            await store.open(migrate_first=True)
            return
        except DB_ERRORS as e:
            await store.close()
            if loop.time() + delay > deadline:
                raise RuntimeError(f"conversation-store: the database is unreachable: {e!r}") from e
            log.warning("database not ready (%r); trying again in %.1fs", e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def _check_retention_routes(config: LifelineConfig, settings: ConversationStoreSettings) -> None:
    # A misspelt route would keep its turns for ever without a word: refuse it at start-up.
    unknown = sorted(set(config.store.retention.routes) - set(config.routes))
    if unknown:
        raise ConfigError(f"{settings.config}: store.retention.routes: unknown route(s) "
                          f"{', '.join(unknown)} (known: {', '.join(config.routes)})")
