"""llm.completed -> turns: one fetched batch, one transaction, then the acks.

Back-pressure: the batch subscriber fetches the next batch only when this one is handled, and a
batch is not handled until it is committed (or the service stops). While the database fails,
the batch waits here, retrying with backoff, and nothing more is fetched: memory holds one batch,
the backlog stays in JetStream. While it waits, the server is told every ack_wait / 3 that the
batch is still being worked on (+WPI), so it is not redelivered to another instance meanwhile.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import AsyncIterator

from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from services.runtime.config.store import IngestConfig, RetentionConfig

from . import logic
from .logic import Outcome
from .metrics import StoreMetrics
from .records import TurnRecord
from .store import RowError, TurnStore

log = logging.getLogger(__name__)

Deadletter = Callable[[Msg, str], Awaitable[None]]  # publishes the message with the reason


class Ingest:
    def __init__(self, store: TurnStore, *, ingest: IngestConfig, retention: RetentionConfig,
                 metrics: StoreMetrics, deadletter: Deadletter, stopping: asyncio.Event,
                 clock: Callable[[], datetime]) -> None:
        self.store = store
        self.config = ingest
        self.retention = retention
        self.metrics = metrics
        self.deadletter = deadletter
        self.stopping = stopping
        self.clock = clock
        self.failing: str | None = None  # the last database error while writes fail
        self.holding = 0  # messages of the batch being handled (the heartbeat's in_flight)

    async def handle(self, msgs: list[Msg]) -> None:
        self.metrics.batch_size.observe(len(msgs))
        self.holding = len(msgs)
        try:
            await self._handle(msgs)
        finally:
            self.holding = 0

    async def _handle(self, msgs: list[Msg]) -> None:
        now = self.clock()
        limits = logic.cutoffs(self.retention, now)
        done: list[Msg] = []  # handled without a write: ack with the batch
        pending: dict[str, tuple[Msg, TurnRecord]] = {}
        for msg in msgs:
            event = logic.parse_completed(msg.data)
            if isinstance(event, str):
                await self._deadletter(msg, event)
                continue
            record = logic.to_turn(event, stored_at=now)
            if record is None:
                self._count(Outcome.NOT_A_TURN)
            elif logic.expired(record, limits):
                self._count(Outcome.EXPIRED)
            elif record.request_id in pending:  # the same turn twice in one batch
                self._count(Outcome.DUPLICATE)
            else:
                pending[record.request_id] = (msg, record)
                continue
            done.append(msg)
        if pending and not await self._write(pending):
            return  # stopping: nothing acked, the server redelivers the batch
        for msg in done + [m for m, _ in pending.values()]:
            await msg.ack()

    async def _write(self, pending: dict[str, tuple[Msg, TurnRecord]]) -> bool:
        """Writes every pending turn (dead-lettering the rows the database refuses), retrying
        with backoff while the database fails. False if the service stopped first."""
        attempt = 0
        async with self._keep_alive([m for m, _ in pending.values()]):
            while True:
                try:
                    await self._store([r for _, r in pending.values()])
                    self._recovered()
                    return True
                except RowError:
                    self.metrics.db_errors.labels("row").inc()
                    if await self._one_by_one(pending):
                        self._recovered()
                        return True
                # Everything else is retried: nothing may be lost, and an error we did not
                # foresee is counted, logged with its traceback and retried, never dropped.
                except Exception as e:  # noqa: BLE001
                    self._failed(e, attempt)
                delay = logic.backoff_s(attempt, initial_ms=self.config.retry_initial_ms,
                                        max_ms=self.config.retry_max_ms)
                attempt += 1
                try:
                    await asyncio.wait_for(self.stopping.wait(), delay)
                    return False
                except TimeoutError:
                    pass

    async def _one_by_one(self, pending: dict[str, tuple[Msg, TurnRecord]]) -> bool:
        """A row the database refuses goes to the dead letters; the others are stored. False
        when a transient error interrupts (the caller retries what is still pending)."""
        for request_id, (msg, record) in list(pending.items()):
            try:
                await self._store([record])
            except RowError as e:
                await self._deadletter(msg, f"the database refused the turn: {e}"[:500])
            except Exception as e:  # noqa: BLE001  # as in _write: retried, never dropped
                self._failed(e, 0)
                return False
            else:
                await msg.ack()
            del pending[request_id]
        return True

    async def _store(self, records: list[TurnRecord]) -> None:
        added = await self.store.add(records)
        stored = len(added.stored)
        self.metrics.turns_ingested.inc(stored)
        self._count(Outcome.STORED, stored)
        self._count(Outcome.PURGED, len(added.purged))
        self._count(Outcome.DUPLICATE, len(records) - stored - len(added.purged))
        oldest = min(r.at for r in records)
        self.metrics.lag_seconds.set(max(0.0, (self.clock() - oldest).total_seconds()))

    async def _deadletter(self, msg: Msg, reason: str) -> None:
        await self.deadletter(msg, reason)
        self._count(Outcome.DEADLETTERED)
        log.warning("llm.completed seq %s dead-lettered: %s", _seq(msg), reason)
        await msg.ack()

    def _count(self, outcome: Outcome, n: int = 1) -> None:
        if n:
            self.metrics.events.labels(outcome.value).inc(n)

    def _failed(self, error: Exception, attempt: int) -> None:
        self.metrics.db_errors.labels("transient").inc()
        self.metrics.db_failing.set(1)
        first = self.failing is None
        self.failing = f"{type(error).__name__}: {error}"[:300]
        if first:
            log.error("writing turns failed; retrying with backoff, fetching nothing meanwhile",
                      exc_info=error)
        else:
            log.warning("writing turns failed again (attempt %d): %s", attempt + 1, self.failing)

    def _recovered(self) -> None:
        if self.failing is not None:
            log.warning("writing turns works again")
        self.failing = None
        self.metrics.db_failing.set(0)

    @asynccontextmanager
    async def _keep_alive(self, msgs: list[Msg]) -> AsyncIterator[None]:
        async def tick() -> None:
            while True:
                await asyncio.sleep(self.config.ack_wait_s / 3)
                try:
                    for msg in msgs:
                        if not msg._ackd:  # nats-py's own flag: acked or dead-lettered already
                            await msg.in_progress()
                except NatsError as e:  # the bus is away: the server redelivers; nothing lost
                    log.warning("could not extend the ack deadline: %r", e)

        task = asyncio.create_task(tick(), name="store-ingest-keepalive")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _seq(msg: Msg) -> int | None:
    try:
        return msg.metadata.sequence.stream
    except NatsError:  # not a JetStream message: no sequence to name
        return None
