"""The cost guard's edge: admission (cost.reserve / cost.settle), the ledger (llm.completed and
billed llm.attempt, durable, batched; cost.replay after a restore), `lifeline spend`
(cost.spend), and its background work: the control and limits watchers, the outbox announcer,
the tick and runaway detection."""

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated

from faststream import AckPolicy, Context
from faststream.nats import JStream, NatsMessage, NatsRouter, PullSub
from faststream.nats.message import NatsBatchMessage
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import ConsumerConfig
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from schemas import subjects
from schemas.backup import ReplayReply, ReplayRequest
from schemas.completion import ErrorKind, ResultError
from schemas.costs import ReserveReply, ReserveRequest, Settle, SpendQuery, SpendReport
from schemas.events import (
    BudgetExceeded, BudgetRestored, BudgetWarning, CostAnomaly, KillswitchEngaged,
    KillswitchReleased, LlmAttempt, LlmCompleted,
)
from schemas.streams import LLM_EVENTS
from services.runtime.config import ConfigError, LifelineConfig, load_config
from services.runtime.db import make_engine, migrate
from services.runtime.service import Service
from services.runtime.validation import parse

from . import ledger, replay, store, watchers
from .announcer import Announcer
from .guard import Guard, utcnow
from .metrics import Metrics
from .settings import CostGuardSettings

log = logging.getLogger(__name__)

QUEUE_GROUP = "cost-guard"
LEDGER_DURABLE = "cost-guard-ledger"
ATTEMPTS_DURABLE = "cost-guard-attempts"
BatchMessage = Annotated[NatsBatchMessage, Context("message")]


def build_app(settings: CostGuardSettings, *, config: LifelineConfig | None = None,
              clock: Callable[[], datetime] = utcnow) -> Service:
    reload_from = None if config is not None else Path(settings.config)
    config = config or load_config(settings.config)
    router = NatsRouter()
    service = Service("cost-guard", settings, router)
    engine = make_engine(settings.db_url)
    fast = store.admission_engine(settings.db_url)
    guard = Guard(config, engine, source=service.source, metrics=Metrics.on(service.metrics),
                  clock=clock, admission_engine=fast)
    events = JStream(LLM_EVENTS.name, declare=False)  # runtime.bus.provision owns the stream
    # A batch per handler call, one transaction per batch: 5-10x the throughput of one message
    # per call (FastStream's per-message path cost ~3 ms a message here under load). Its batch
    # loop used to lose a gathered batch to a bare asyncio.TimeoutError from nats-py's fetch;
    # services/runtime/natsfix.py turns that into the nats TimeoutError the loop handles.
    ledger_pull = PullSub(batch_size=settings.ledger_batch, timeout=settings.ledger_wait_s,
                          batch=True)
    # AckWait: how long the batch a crashed instance held waits before another one gets it. A
    # batch commits in well under a second; one slower than this is delivered twice, and the
    # ledger is idempotent.
    ledger_consumer = ConsumerConfig(ack_wait=10, max_ack_pending=4 * settings.ledger_batch)

    for subject, schema, what in [
        (subjects.BUDGET_WARNING, BudgetWarning, "a budget passed its soft threshold"),
        (subjects.BUDGET_EXCEEDED, BudgetExceeded, "a budget reached its hard limit"),
        (subjects.BUDGET_RESTORED, BudgetRestored, "a new period, or a limit raised"),
        (subjects.COST_ANOMALY, CostAnomaly, "spend rate far above its own baseline"),
        (subjects.KILLSWITCH_ENGAGED, KillswitchEngaged, "a kill switch was engaged"),
        (subjects.KILLSWITCH_RELEASED, KillswitchReleased, "a kill switch was released"),
    ]:  # declared for the AsyncAPI document; sent by the announcer (outbox, message ids)
        router.publisher(subject, schema=schema, description=what)

    @router.subscriber(subjects.COST_RESERVE, queue=QUEUE_GROUP, max_workers=settings.max_in_flight,
                       description="request-reply: reserve a request's estimated cost and a slot "
                                   "in its limits before any provider call",
                       include_in_schema=False)  # raw bytes in: schemas/asyncapi.py documents it
    async def reserve(msg: NatsMessage) -> bytes:
        request = parse(ReserveRequest, msg.body)
        if isinstance(request, str):
            return ReserveReply(admitted=False, error=ResultError(
                kind=ErrorKind.INVALID_REQUEST, message=request)).model_dump_json().encode()
        return (await guard.reserve(request)).model_dump_json().encode()

    @router.subscriber(subjects.COST_SETTLE, queue=QUEUE_GROUP, max_workers=settings.max_in_flight,
                       description="request-reply: a reserved request's real cost (0 when "
                                   "nothing was billed); answered once it counts")
    async def settle(body: Settle) -> bytes:
        await guard.settle(body)
        return b"{}"

    @router.subscriber(subjects.COST_SPEND, queue=QUEUE_GROUP,
                       description="request-reply: spend today and this month by scope, budgets "
                                   "with their headroom", include_in_schema=False)
    async def spend(msg: NatsMessage) -> bytes:
        query = parse(SpendQuery, msg.body or b"{}")
        if isinstance(query, str):
            return SpendReport(at=utcnow(), day_start=utcnow(), month_start=utcnow(),
                               error=query).model_dump_json().encode()
        return (await guard.spend_report(query)).model_dump_json().encode()

    @router.subscriber(subjects.COST_REPLAY, queue=QUEUE_GROUP,
                       description="request-reply: record a range of LLM_EVENTS in the ledger "
                                   "again after a restore (point-in-time recovery); idempotent",
                       include_in_schema=False)  # raw bytes in: schemas/asyncapi.py documents it
    async def replay_events(msg: NatsMessage) -> bytes:
        request = parse(ReplayRequest, msg.body)
        if isinstance(request, str):
            return ReplayReply(error=request).model_dump_json().encode()
        try:
            reply = await replay.replay(service.broker.config.connection_state.stream, guard,
                                        request)
        except (SQLAlchemyError, OSError, NatsError) as e:
            # The error's type and first line only: SQLAlchemy appends the rows it tried to write.
            cause = getattr(e, "orig", None) or e
            what = f"{type(cause).__name__}: {(str(cause).splitlines() or [''])[0]}"[:300]
            log.error("replay from sequence %d failed: %s", request.from_seq, what)
            reply = ReplayReply(last_seq=request.from_seq - 1, error=f"replay failed: {what}")
        return reply.model_dump_json().encode()

    @router.subscriber(subjects.LLM_COMPLETED, stream=events, durable=LEDGER_DURABLE,
                       pull_sub=ledger_pull, ack_policy=AckPolicy.MANUAL, config=ledger_consumer,
                       description="every finished request into the spend ledger (batched; "
                                   "acked after commit; idempotent on request_id)",
                       include_in_schema=False)  # raw batches: schemas/asyncapi.py documents it
    async def on_completed(msg: BatchMessage) -> None:
        await _ingest(msg.raw_message, subjects.LLM_COMPLETED,
                      lambda raw: ledger.completed_charge(LlmCompleted.model_validate_json(raw)))

    @router.subscriber(subjects.LLM_ATTEMPT, stream=events, durable=ATTEMPTS_DURABLE,
                       pull_sub=ledger_pull, ack_policy=AckPolicy.MANUAL, config=ledger_consumer,
                       description="billed attempts (cost_usd > 0, e.g. hedged losers) into the "
                                   "ledger, idempotent on <request_id>.<attempt_no>",
                       include_in_schema=False)
    async def on_attempt(msg: BatchMessage) -> None:
        await _ingest(msg.raw_message, subjects.LLM_ATTEMPT,
                      lambda raw: ledger.attempt_charge(LlmAttempt.model_validate_json(raw)))

    async def _ingest(messages: list[Msg], subject: str,
                      charge_of: Callable[[bytes], ledger.Charge | None]) -> None:
        """Parse each, record the batch in one transaction, ack only after the commit."""
        charges, good = [], []
        for raw in messages:
            try:
                charge = charge_of(raw.data)
            except ValidationError as e:
                await _deadletter(raw, subject, f"not a valid {subject} event: {e}")
                continue
            good.append(raw)
            if charge is not None:
                charges.append(charge)
        try:
            await guard.record(charges)
        except (SQLAlchemyError, OSError) as e:  # handed back: redelivered after the delay
            log.error("ledger: %d %s events not recorded, redelivering: %r", len(good), subject, e)
            for raw in good:
                await raw.nak(delay=2.0)
            return
        for raw in good:
            await raw.ack()

    async def _deadletter(raw: Msg, subject: str, reason: str) -> None:
        log.error("dead-lettering a %s message: %s", subject, reason[:300])
        await service.broker.connection.publish(
            subjects.deadletter(subject), raw.data,
            headers={subjects.DEADLETTER_REASON_HEADER: reason[:1000]})
        await raw.term()  # it will never parse; the dead letter keeps it

    tasks: list[asyncio.Task[None]] = []

    async def start() -> None:
        await migrate(engine)
        js = service.broker.config.connection_state.stream
        loaded = []
        for bucket, handler in [(watchers.BUCKETS[0], watchers.on_control(guard)),
                                (watchers.BUCKETS[1], watchers.on_limits(guard))]:
            ready = asyncio.Event()
            loaded.append(ready)
            tasks.append(asyncio.create_task(watchers.watch(js, bucket, handler, ready)))
        # Killed keys and run-time budgets are known before the first reservation is decided.
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in loaded)), 10)
        except TimeoutError:
            log.warning("control and limits buckets not loaded within 10 s; going on")
        tasks.append(asyncio.create_task(Announcer(guard, js).run()))
        tasks.append(asyncio.create_task(_every(config.budgets.tick_s, tick)))
        tasks.append(asyncio.create_task(_every(config.budgets.runaway.check_every_s,
                                                guard.check_runaway)))

    last_config = [reload_from.stat().st_mtime if reload_from else 0.0]

    async def tick() -> None:
        await guard.tick()
        if reload_from is not None:
            _reload(reload_from, guard, last_config)
        js = service.broker.config.connection_state.stream
        backlog = 0
        for durable in (LEDGER_DURABLE, ATTEMPTS_DURABLE):
            info = await js.consumer_info(LLM_EVENTS.name, durable)
            backlog += (info.num_pending or 0) + (info.num_ack_pending or 0)
        guard.metrics.ledger_pending.set(backlog)

    async def stop() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await guard.close()
        await engine.dispose()
        await fast.dispose()

    service.on_start(start)
    service.on_stop(stop)
    return service


async def _every(seconds: float, work: Callable[[], object]) -> None:
    """Runs `work` every `seconds` for ever; a failed round is logged and the next one tries."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await work()  # type: ignore[misc]
        except asyncio.CancelledError:
            raise
        except (SQLAlchemyError, NatsError, OSError, TimeoutError) as e:
            log.warning("%s failed this round: %r", getattr(work, "__name__", work), e)


def _reload(path: Path, guard: Guard, last: list[float]) -> None:
    """A changed lifeline.yaml is taken up (budgets, limits); a broken one is refused, loudly."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return
    if mtime == last[0]:
        return
    last[0] = mtime
    try:
        guard.use(config=load_config(path))
        log.info("reloaded %s", path)
    except ConfigError as e:
        log.error("keeping the previous configuration: %s", e)

