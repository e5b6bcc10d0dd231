"""The durable queue's consumer: parked requests wait while their route cannot be called, then
drain at a controlled pace, interactive first, each answered exactly once.

Two durable pull consumers on LLM_QUEUE (a work queue, so their filters must not overlap):
`router-interactive` and `router-batch`, shared by every router instance. Per priority a fetch
loop takes a message only when (1) a slot is free, (2) some route can be called (no member
open, cooling, down or revoked; the kill switch released), (3) for batch: no interactive work is
queued or in hand anywhere (the interactive consumer's pending and ack-pending counts) and batch
is not paused after a 429, and (4) the pace (drain.py) gives a token. So while every provider is
down nothing is fetched: no busy loop, no delivery attempts spent.

A message in hand whose call fails because the vendors are down is held, not nak'ed: a nak is
a redelivery and counts against max_deliver, and a long outage would dead-letter healthy work.
It is kept alive with in_progress() (AckWait restarts) and tried again when the route can be
called, after a backoff. Deliveries are counted only by crashes and stalls (AckWait expired) and
by errors of our own; past max_deliver such a message goes to deadletter.llm.queue.<priority>.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from schemas import subjects
from schemas.completion import CompletionRequest, CompletionResult, ErrorKind, ResultError
from schemas.streams import LLM_QUEUE
from services.runtime.config import LifelineConfig

from . import drain, logic
from .drain import Priority, Verdict
from .engine import Engine, Outcome
from .gate import Gate
from .results import Results, is_bus_error

log = logging.getLogger(__name__)

PRIORITIES: tuple[Priority, ...] = ("interactive", "batch")
FETCH_WAIT_S = 2.0  # a fetch long-polls this long on an empty queue
BACKLOG_CHECK_S = 0.2  # how often batch looks whether interactive work is still queued

# (request, outcome, attempt id prefix, final): app.py publishes llm.attempt / llm.completed.
OnOutcome = Callable[[CompletionRequest, Outcome, str, bool], Awaitable[None]]


def durable(priority: Priority) -> str:
    return f"router-{priority}"


class QueueWorker:
    def __init__(self, config: LifelineConfig, engine: Engine, results: Results,
                 js: Callable[[], JetStreamContext], on_outcome: OnOutcome,
                 observe: Callable[[str, CompletionResult], Awaitable[None]],
                 draining: set[str], *, heartbeat_interval: float,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.config, self.policy = config, config.tiers.queue
        self.engine, self.results, self.js = engine, results, js
        self.on_outcome, self.observe, self.draining = on_outcome, observe, draining
        self.clock, self.wall = clock, wall
        self.gate = Gate(config, engine, heartbeat_interval=heartbeat_interval, clock=clock, wall=wall)
        self.in_hand = {p: 0 for p in PRIORITIES}
        self._slots = {p: asyncio.Semaphore(self.policy.concurrency) for p in PRIORITIES}
        self._loops: list[asyncio.Task[None]] = []
        self._subs: list[JetStreamContext.PullSubscription] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._backlog_checked = (float("-inf"), True)  # (when, interactive work queued?)

    # --- the world tells us ------------------------------------------------------------------

    def availability_changed(self) -> None:
        """A provider's health, the kill switch, or a drained call's success: look again."""
        self.gate.changed()

    @property
    def busy(self) -> int:
        return sum(self.in_hand.values())

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        js = self.js()
        for priority in PRIORITIES:
            # Created or updated with the current policy; every router sends the same config.
            await js.add_consumer(LLM_QUEUE.name, ConsumerConfig(
                durable_name=durable(priority), name=durable(priority),
                filter_subject=subjects.llm_queue(priority), ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL, ack_wait=self.policy.ack_wait_s,
                max_deliver=self.policy.max_deliver,
                max_ack_pending=max(1000, 4 * self.policy.concurrency)))
            sub = await js.pull_subscribe_bind(durable=durable(priority), stream=LLM_QUEUE.name)
            self._subs.append(sub)
            self._loops.append(asyncio.create_task(self._fetch_loop(priority, sub),
                                                   name=f"queue-{priority}"))

    async def close_intake(self) -> None:
        """Graceful stop: fetch nothing more; held messages are handed back at once (nak)."""
        self.gate.stop()
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        # Before the connection drains: nats-py would wait its whole drain timeout (30 s) on a
        # pull subscription's inbox, whose messages fetch() takes without marking them done.
        subs, self._subs = self._subs, []
        for sub in subs:
            try:
                await sub.unsubscribe()
            except Exception as e:
                if not is_bus_error(e):
                    raise

    async def stop(self) -> None:
        await self.close_intake()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    # --- fetching ----------------------------------------------------------------------------

    async def _fetch_loop(self, priority: Priority, sub: JetStreamContext.PullSubscription) -> None:
        slots = self._slots[priority]
        while not self.gate.stopping:
            await slots.acquire()
            msg = None
            try:
                msg = await self._next(priority, sub)
            finally:
                if msg is None:
                    slots.release()
            if msg is not None:
                task = asyncio.create_task(self._handle(msg, priority))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)

    async def _next(self, priority: Priority, sub: JetStreamContext.PullSubscription) -> Msg | None:
        if not await self.gate.until(lambda: self.gate.any_route_wait()):
            return None
        if priority == "batch" and not await self._batch_may_go():
            return None
        await self.gate.take_token(priority)
        try:
            return (await sub.fetch(1, timeout=FETCH_WAIT_S))[0]
        except NatsTimeout:  # the queue is empty: the long poll ended with nothing
            self.gate.bucket.give_back()
        except Exception as e:  # the bus is restarting; the consumer outlives it
            if not is_bus_error(e):
                raise
            self.gate.bucket.give_back()
            log.warning("fetching %s: %r; again in 0.5 s", priority, e)
            await asyncio.sleep(0.5)
        return None

    async def _batch_may_go(self) -> bool:
        now = self.clock()
        if self.gate.rate.batch_paused(now):
            await self.gate.wait_change(self.gate.rate.batch_paused_until - now)
            return False
        if self.in_hand["interactive"] or await self._interactive_queued():
            await self.gate.wait_change(BACKLOG_CHECK_S)
            return False
        return True

    async def _batch_turn(self, expiry: float) -> bool:
        """A batch message in hand also yields to interactive work queued after it."""
        while not self.gate.stopping and self.wall() < expiry:
            if await self._batch_may_go():
                return True
        return False

    async def _interactive_queued(self) -> bool:
        """Interactive work waiting or in hand at any router (the server's counts)."""
        when, queued = self._backlog_checked
        if self.clock() - when < BACKLOG_CHECK_S:
            return queued
        try:
            info = await self.js().consumer_info(LLM_QUEUE.name, durable("interactive"))
            queued = bool((info.num_pending or 0) + (info.num_ack_pending or 0))
        except Exception as e:
            if not is_bus_error(e):
                raise
            queued = True
        self._backlog_checked = (self.clock(), queued)
        return queued

    # --- one message -------------------------------------------------------------------------

    async def _handle(self, msg: Msg, priority: Priority) -> None:
        self.in_hand[priority] += 1
        alive = asyncio.create_task(self._keep_alive(msg))
        try:
            await self._process(msg, priority)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the consumer's boundary: log it, hand it back, keep consuming
            await self._failed(msg, e)
        finally:
            alive.cancel()
            self.in_hand[priority] -= 1
            self._slots[priority].release()

    async def _keep_alive(self, msg: Msg) -> None:
        """While we hold it, the server must not hand it to another router (AckWait restarts)."""
        while True:
            await asyncio.sleep(self.policy.ack_wait_s / 3)
            try:
                await msg.in_progress()
            except Exception as e:
                if not is_bus_error(e):
                    raise
                log.debug("in_progress for seq %d: %r", msg.metadata.sequence.stream, e)

    async def _process(self, msg: Msg, priority: Priority) -> None:
        meta = msg.metadata
        parsed = logic.parse_request(msg.data)
        if not isinstance(parsed, CompletionRequest):
            await self._malformed(msg, parsed)
            return
        request = parsed
        earlier = await self.results.existing(request.request_id)
        if earlier is not None:
            log.info("request %s already answered: redelivery acked", request.request_id)
            if request.callback_url:  # the holder may have died before its POST: at least once
                await self.results.post_callback(request.callback_url, earlier)
            await msg.ack()
            return
        expiry = drain.expires_at(meta.timestamp.timestamp(), request.deadline_ms, self.policy)
        result = await self._answer(request, priority, expiry, meta.num_delivered)
        if result is None:  # stopping: hand it back to another router
            await msg.nak()
            return
        await self.results.publish(result)
        if request.callback_url:
            await self.results.post_callback(request.callback_url, result)
        await msg.ack()

    async def _answer(self, request: CompletionRequest, priority: Priority, expiry: float,
                      delivery: int) -> CompletionResult | None:
        """Tries until a model answers, the request's own error, expiry, or stopping (None)."""
        failures, tries, first, not_before = 0, 0, True, 0.0
        self.draining.add(request.request_id)
        try:
            while True:
                ready = await self.gate.until(lambda: self.gate.route_wait(request.route, request.region),
                                          not_before=not_before, until_wall=expiry)
                if self.gate.stopping:
                    return None
                if not ready:
                    return await self._expired(request, expiry)
                if priority == "batch" and not await self._batch_turn(expiry):
                    continue  # stopping or expired: the loop's top says which
                if not first:
                    await self.gate.take_token(priority)
                first, tries = False, tries + 1
                outcome = await self.engine.complete(self._within(request, expiry), may_wait=False)
                result = outcome.result
                now = self.clock()
                if drain.saw_rate_limit(result):
                    self.gate.rate.throttled(now)
                v = drain.verdict(result)
                if v is Verdict.WAIT:
                    if outcome.attempts:  # the vendors failed it (not merely skipped)
                        failures += 1
                        self.gate.rate.failed()
                        await self.on_outcome(request, outcome, f"{request.request_id}.d{delivery}t{tries}", False)
                        pause = drain.retry_delay(failures, self.policy)
                    else:  # nothing was called (probes all out, a limit): do not spin on it
                        pause = (result.error.retry_after_s if result.error else None) or self.policy.retry_delay_s
                    not_before = self.clock() + pause
                    continue
                if v is Verdict.ANSWERED:
                    self.gate.rate.succeeded(now)
                    self.availability_changed()  # others waiting on this route may go now
                    await self.observe(request.route, result)
                result.ticket = request.request_id
                await self.on_outcome(request, outcome, f"{request.request_id}.d{delivery}t{tries}", True)
                return result
        finally:
            self.draining.discard(request.request_id)

    def _within(self, request: CompletionRequest, expiry: float) -> CompletionRequest:
        """The request as the engine sees it: no deadline past the parked request's own."""
        left_ms = max(1, int((expiry - self.wall()) * 1000))
        return request.model_copy(update={"deadline_ms": min(left_ms, request.deadline_ms or left_ms)})

    async def _expired(self, request: CompletionRequest, expiry: float) -> CompletionResult:
        late = self.wall() - expiry
        result = CompletionResult(
            request_id=request.request_id, status="error", ticket=request.request_id,
            error=ResultError(kind=ErrorKind.EXPIRED, message=(
                f"no provider could answer before the request's deadline "
                f"({late:.1f}s ago); it was not sent late")))
        await self.on_outcome(request, Outcome(result), f"{request.request_id}.expired", True)
        return result

    async def _malformed(self, msg: Msg, problem: ResultError) -> None:
        meta = msg.metadata
        rid = logic.request_id_of(msg.data)
        await self.results.dead_letter(
            msg.subject, msg.data, problem.message, msg_id=f"deadletter.{meta.sequence.stream}",
            request_id=rid, deliveries=meta.num_delivered, seq=meta.sequence.stream)
        if rid is not None and await self.results.existing(rid) is None:
            # The caller waits on llm.result.<id>: tell it, rather than leave it waiting.
            await self.results.publish(CompletionResult(request_id=rid, status="error",
                                                        ticket=rid, error=problem))
        await msg.ack()

    async def _failed(self, msg: Msg, error: Exception) -> None:
        meta = msg.metadata
        if is_bus_error(error):
            log.warning("queue seq %d: %r; handed back", meta.sequence.stream, error)
        else:
            log.exception("queue seq %d failed", meta.sequence.stream, exc_info=error)
        try:
            if meta.num_delivered >= self.policy.max_deliver:
                await self.results.dead_letter(
                    msg.subject, msg.data, f"failed on its last delivery ({meta.num_delivered}, "
                    f"max_deliver): {error!r}", msg_id=f"deadletter.{meta.sequence.stream}",
                    request_id=logic.request_id_of(msg.data), deliveries=meta.num_delivered,
                    seq=meta.sequence.stream)
                await msg.ack()
            else:
                await msg.nak(delay=drain.retry_delay(meta.num_delivered, self.policy))
        except Exception as e:  # the bus is gone: AckWait hands it to another router anyway
            if not is_bus_error(e):
                raise
            log.warning("queue seq %d not handed back: %r", meta.sequence.stream, e)
