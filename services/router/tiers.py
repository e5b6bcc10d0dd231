"""Tiers 3 and 4 behind the engine's LowerTiers seam, and their wiring into the router.

When the chain could not answer: the response cache, then the FAQ and rules, then (the request
allows it) the durable queue, else the maintenance message. Why in that order:
- the cache holds what a model said to this very conversation: the most specific answer;
- the FAQ and rules are curated but generic: right for the questions they cover, nothing else;
- parking costs the caller the wait for a provider; only worth it when nothing above answered;
- the maintenance message needs nothing and is always there, also under the kill switch.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from faststream.nats import NatsRouter
from nats.js import JetStreamContext
from pydantic import BaseModel

from schemas import subjects
from schemas.completion import CompletionRequest, CompletionResult
from schemas.events import Heartbeat, TierChanged
from schemas.streams import LLM_QUEUE, LLM_RESULTS, RESPONSE_CACHE
from services.runtime.bus import MSG_ID, publish_events, watch_bucket
from services.runtime.config import ConfigError, LifelineConfig
from services.runtime.service import Service

from . import logic
from .cache import ResponseCache
from .drain import OUTAGE
from .engine import Engine
from .faq import StaticAnswers, load_static_answers
from .queue_worker import OnOutcome, QueueWorker
from .results import Results, is_bus_error
from .tier_events import TierTracker

log = logging.getLogger(__name__)


class Tiers:
    """The engine's LowerTiers: answer() when no model answered, remember() when one did."""

    def __init__(self, config: LifelineConfig, cache: ResponseCache, static: StaticAnswers,
                 js: Callable[[], JetStreamContext]) -> None:
        self.config = config
        self.cache = cache
        self.static = static
        self.js = js
        self.draining: set[str] = set()  # parked requests being answered: no lower tier for them

    async def answer(self, request: CompletionRequest, failed: CompletionResult) -> CompletionResult | None:
        if request.request_id in self.draining:
            return None  # the queue worker holds it and tries again; it must not be parked twice
        if failed.error is not None and failed.error.kind not in OUTAGE:
            return None  # the request's own fault (too long, refused by policy): said as it is
        rid, route = request.request_id, request.route
        entry = await self.cache.lookup(route, request.messages)
        if entry is not None:
            return CompletionResult(request_id=rid, status="ok", content=entry.content,
                                    tier="minimal", cached=True, answered_by="cache")
        question = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        if question and self.config.tiers.static_answers_for(route):
            static = self.static.answer(question)
            if static is not None:
                return CompletionResult(request_id=rid, status="ok", content=static.content,
                                        tier="minimal", answered_by=static.source)
        message = self.config.tiers.maintenance_message
        if request.allow_queue and await self.park(request):
            return CompletionResult(request_id=rid, status="queued", ticket=rid, content=message,
                                    tier="emergency", answered_by="queue")
        result = logic.maintenance(rid, message)
        result.answered_by = "maintenance"
        return result

    async def remember(self, request: CompletionRequest, result: CompletionResult) -> None:
        if result.cached or result.tier not in ("full", "degraded") or result.content is None:
            return
        self.cache.remember(request.route, request.messages, result.content, result.provider,
                            result.model)

    async def park(self, request: CompletionRequest) -> bool:
        """Stored in LLM_QUEUE (Nats-Msg-Id = request id), or False and the caller is told so."""
        body = request.model_copy(update={"stream": False}).model_dump_json().encode()
        try:
            await self.js().publish(subjects.llm_queue(request.priority), body,
                                    headers={MSG_ID: request.request_id}, timeout=2.0)
        except Exception as e:
            if not is_bus_error(e):
                raise
            log.error("could not park %s: %r; answering with the maintenance message",
                      request.request_id, e)
            return False
        return True


class TierEvents:
    """tier.changed, published when a route's tier (tier_events.py) moves."""

    def __init__(self, config: LifelineConfig, service: Service,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.tracker = TierTracker(window=config.tiers.tier_window_s)
        self.service, self.clock, self.wall = service, clock, wall

    async def observe(self, route: str, result: CompletionResult) -> None:
        if result.tier is None:
            return
        change = self.tracker.observe(route, result.tier, self.clock(), self.wall())
        if change is None:
            return
        reason = result.answered_by or (f"answered by {result.provider}/{result.model}"
                                        if result.provider else "")
        event = TierChanged(id=change.event_id, source=self.service.source, route=route,
                            from_tier=change.from_tier, to_tier=change.to_tier, reason=reason)
        js = self.service.broker.config.connection_state.stream
        [failure] = await publish_events(js, [(subjects.TIER_CHANGED, event.model_dump_json().encode(),
                                               change.event_id)])
        if failure is not None:
            log.warning("tier.changed for %s not stored: %r", route, failure)
        else:
            log.info("route %s: tier %s -> %s (%s)", route, change.from_tier, change.to_tier, reason)


class Degradation:
    """Everything of tiers 3 and 4 in one router: built by attach(), driven by app.py."""

    def __init__(self, tiers: Tiers, worker: QueueWorker, events: TierEvents) -> None:
        self.tiers, self.worker, self.events = tiers, worker, events

    def availability_changed(self) -> None:
        self.worker.availability_changed()

    async def observe(self, route: str, result: CompletionResult) -> None:
        await self.events.observe(route, result)


def build_tiers(config: LifelineConfig, service: Service) -> Tiers:
    js = lambda: service.broker.config.connection_state.stream  # noqa: E731  (set at connect)
    static = load_static_answers(faq_path(config, service.settings.config),
                                 similarity=config.tiers.faq_similarity)
    unknown = sorted(set(config.tiers.routes) - set(config.routes))
    if unknown:
        raise ConfigError(f"tiers.routes: unknown route(s) {', '.join(unknown)} "
                          f"(known: {', '.join(config.routes)})")
    return Tiers(config, ResponseCache(config.tiers, js, time.time), static, js)


def faq_path(config: LifelineConfig, config_file: Path) -> Path | None:
    """tiers.faq_file, a relative path taken from lifeline.yaml's own directory (where the
    shipped faq.yaml sits). A missing file is logged, not fatal: the router must still answer."""
    if config.tiers.faq_file is None:
        return None
    path = Path(config.tiers.faq_file)
    path = path if path.is_absolute() else Path(config_file).parent / path
    if not path.exists():
        log.error("tiers.faq_file %s does not exist: no FAQ or rule answers until it does", path)
        return None
    return path


def attach(tiers: Tiers, engine: Engine, service: Service, router: NatsRouter,
           on_outcome: OnOutcome) -> Degradation:
    """Registers the queue worker, the cache's watch and writer, and their handlers."""
    config = tiers.config
    events = TierEvents(config, service)
    results = Results(config.tiers.queue, tiers.js)
    worker = QueueWorker(config, engine, results, tiers.js, on_outcome, events.observe,
                         tiers.draining, heartbeat_interval=service.settings.heartbeat_interval)
    tasks: list[asyncio.Task[None]] = []

    # Documented for the AsyncAPI document; the worker consumes them with its own pull loops.
    for priority in ("interactive", "batch"):
        router.publisher(subjects.llm_queue(priority), stream=LLM_QUEUE.name,
                         schema=CompletionRequest,
                         description=f"the durable queue ({priority}): parked here when "
                                     "allow_queue and no lower tier answered; consumed by "
                                     f"the pull consumer router-{priority}")
    router.publisher(f"{subjects.LLM_RESULT_PREFIX}.{{request_id}}", stream=LLM_RESULTS.name,
                     schema=CompletionResult, description="the answer to a parked request")
    router.publisher(subjects.TIER_CHANGED, schema=TierChanged,
                     description="a route moved between tiers (worst tier over tier_window_s)")

    @router.subscriber(subjects.heartbeat("router"),
                       description="router instances alive: each drains its share of the rate")
    async def on_router_heartbeat(beat: Heartbeat) -> None:
        worker.gate.peers.seen(beat.instance, worker.clock())

    @router.subscriber(f"{subjects.MAX_DELIVERIES_ADVISORY_PREFIX}.{LLM_QUEUE.name}.>",
                       queue="router", description="a parked request reached max_deliver: "
                       "dead-lettered with the reason and removed from the queue")
    async def on_max_deliveries(advisory: MaxDeliveries) -> None:
        await results.dead_letter_stuck(advisory.stream_seq, advisory.deliveries)

    async def start() -> None:
        tasks.append(asyncio.create_task(watch_bucket(
            tiers.js(), RESPONSE_CACHE.name, tiers.cache.on_change)))
        tasks.append(asyncio.create_task(tiers.cache.write_forever()))
        await worker.start()

    async def close_intake() -> None:  # fetch no more; keep the cache writes already queued
        await worker.close_intake()
        await tiers.cache.flush(timeout=1.0)

    async def stop() -> None:
        await worker.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await results.aclose()

    service.on_start(start)
    service.on_intake_closed(close_intake)
    service.on_stop(stop)
    return Degradation(tiers, worker, events)


class MaxDeliveries(BaseModel):
    """$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer> (the fields we use)."""

    stream: str
    consumer: str
    stream_seq: int
    deliveries: int

