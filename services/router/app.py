"""The router's edge: llm.complete in a queue group -> engine -> reply, llm.attempt, llm.completed."""

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import TypeVar

import nats
from faststream.nats import NatsMessage, NatsRouter
from nats.errors import ConnectionClosedError
from pydantic import BaseModel, ValidationError

from schemas import subjects
from schemas.completion import CompletionRequest, CompletionResult
from schemas.events import LlmAttempt, LlmCompleted, ProviderKeyRefused
from schemas.control import FAULT_PREFIX, ProviderFault, ProviderHealth
from schemas.streams import CONTROL, LLM_EVENTS, PROVIDER_HEALTH, STATUS
from services.providers import make_provider
from services.providers.base import Provider
from services.runtime.bus import watch_bucket
from services.runtime.config import LifelineConfig, load_config
from services.runtime.service import Service

from . import events, logic
from .admission import BusAdmission
from .engine import Engine, Outcome
from .history import BusHistory
from .metrics import RouterMetrics
from .settings import RouterSettings
from .stream_app import add_stream_handlers
from .tiers import attach, build_tiers

log = logging.getLogger(__name__)

QUEUE_GROUP = "router"
WATCH_LOAD_S = 10.0  # at start-up, the longest wait for the control and health buckets
M = TypeVar("M", bound=BaseModel)


def build_app(
    settings: RouterSettings,
    *,
    config: LifelineConfig | None = None,
    providers: Mapping[str, Provider] | None = None,
) -> Service:
    config = config or load_config(settings.config)
    if providers is None:
        specs = config.provider_specs(os.environ, settings.simulator_url)
        providers = {name: make_provider(spec) for name, spec in specs.items()}
    router = NatsRouter()
    service = Service("router", settings, router)
    tiers = build_tiers(config, service)  # cache, FAQ and rules, queue, maintenance (issue 4)

    def connection() -> nats.NATS:
        state = service.broker.config.connection_state
        if not state:  # starting or stopping: history is skipped like any bus trouble
            raise ConnectionClosedError
        return state.connection

    engine = Engine(config, providers, lower_tiers=tiers, history=BusHistory(
        connection, timeout_s=settings.history_timeout_ms / 1000),
        tracer=service.tracer_provider.get_tracer("lifeline.router"))  # a span per provider call
    metrics = RouterMetrics(config, engine.availability, service.metrics)
    backlog = events.Backlog(service, timeout_s=settings.event_store_timeout_s,
                             registry=service.metrics)
    service.on_drained(backlog.stop)
    # Budgets and limits, checked by the cost guard before any provider call (issue 6).
    engine.admission = BusAdmission(config, lambda: service.broker.connection,
                                    registry=service.metrics)

    # Declared for the AsyncAPI document; sent by runtime.bus.publish_events (the fast path).
    router.publisher(subjects.LLM_ATTEMPT, stream=LLM_EVENTS.name, schema=LlmAttempt,
                     description="one call to one provider/model")
    router.publisher(subjects.LLM_COMPLETED, stream=LLM_EVENTS.name, schema=LlmCompleted,
                     description="one finished request")
    router.publisher(subjects.PROVIDER_KEY_REFUSED, stream=STATUS.name, schema=ProviderKeyRefused,
                     description="a 401/403 took a provider's key out of rotation (once per episode)")

    @router.subscriber(subjects.LLM_COMPLETE, queue=QUEUE_GROUP,
                       max_workers=settings.max_in_flight,
                       description="request-reply: a CompletionRequest answered by a CompletionResult",
                       include_in_schema=False)  # raw bytes in: schemas/asyncapi.py documents it
    async def complete(msg: NatsMessage) -> bytes:
        parsed = logic.parse_request(msg.body)
        if not isinstance(parsed, CompletionRequest):
            rid = logic.request_id_of(msg.body) or "invalid"
            log.info("rejected request %s: %s", rid, parsed.message)
            rejected = CompletionResult(request_id=rid, status="error", error=parsed)
            metrics.observe("unknown", rejected)
            return rejected.model_dump_json().encode()
        outcome = await engine.complete(parsed)
        metrics.observe(parsed.route, outcome.result)
        # A parked request's llm.completed comes from the queue worker, once, with its answer.
        await _publish_events(parsed, outcome, completed=outcome.result.status != "queued")
        await degradation.observe(parsed.route, outcome.result)
        return outcome.result.model_dump_json().encode()

    async def _publish_events(request: CompletionRequest, outcome: Outcome,
                              attempt_key: str | None = None, completed: bool = True) -> None:
        await backlog.publish(request, events.request_events(
            service.source, request, outcome, attempt_key=attempt_key, completed=completed))

    degradation = attach(tiers, engine, service, router, _publish_events)
    service.in_flight = lambda: engine.in_flight + degradation.worker.busy

    def on_control(key: str, value: bytes | None) -> None:
        if key.startswith(FAULT_PREFIX):  # a drill's fault switch: the provider counts as failing
            fault = _parsed(ProviderFault, key, value)
            if value is None or fault is not None:  # a value that does not parse changes nothing
                reason = (fault.reason or "fault switch") if fault and fault.active else None
                engine.availability.fault_switch(key.removeprefix(FAULT_PREFIX), reason, engine.clock())
                log.warning("fault switch %s %s", key, f"ON: {reason}" if reason else "released")
            degradation.availability_changed()
            return
        try:
            change = engine.controls.apply(key, value)
        except ValidationError as e:  # a bad value must not stop the watch: say so, change nothing
            log.error("ignoring control %s = %r: %s", key, (value or b"")[:200], e)
            return
        if change is not None:
            log.warning("%s", change)
        degradation.availability_changed()

    def on_health(provider: str, value: bytes | None) -> None:
        health = _parsed(ProviderHealth, provider, value)
        avail = engine.availability
        if health is not None and health.state == "down":
            avail.down[provider] = health.reason or "down"
        else:  # up, degraded (still called) or the key deleted
            was_out = avail.down.pop(provider, None) is not None
            if health is not None and health.state == "up":
                was_out |= avail.revoked.pop(provider, None) is not None  # its key works again
                if was_out:  # back from an outage: ramp up (slow start), do not slam it
                    avail.came_back(provider, engine.clock())
        degradation.availability_changed()  # parked requests may drain now

    watchers: list[asyncio.Task[None]] = []

    async def sample_queue() -> None:
        watchers.append(asyncio.create_task(metrics.sample_queue_forever(
            lambda: service.broker.config.connection_state.stream, settings.heartbeat_interval)))

    async def start_watching() -> None:
        # Ready only once the kill switches and health verdicts in force are known: a router
        # that answered first could call a provider an engaged kill switch forbids.
        js = service.broker.config.connection_state.stream
        loaded = []
        for bucket, on_change in ((CONTROL.name, on_control), (PROVIDER_HEALTH.name, on_health)):
            loaded.append(asyncio.Event())
            watchers.append(asyncio.create_task(watch_bucket(js, bucket, on_change,
                                                             loaded=loaded[-1])))
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in loaded)), WATCH_LOAD_S)
        except TimeoutError:  # the watches go on trying; refusing to start would help nobody
            log.error("control and provider-health not loaded within %gs; serving anyway",
                      WATCH_LOAD_S)

    async def stop_watching() -> None:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)

    service.on_start(start_watching)
    service.on_start(sample_queue)
    service.on_stop(stop_watching)

    async def close_providers() -> None:
        await asyncio.gather(*(p.aclose() for p in providers.values()))

    service.on_stop(close_providers)
    # Streaming (llm.stream, llm.stream.cancel): services/router/stream_app.py.
    add_stream_handlers(router, service, engine, metrics, backlog, queue=QUEUE_GROUP,
                        max_workers=settings.max_in_flight)
    return service


def _parsed(model: type[M], key: str, value: bytes | None) -> M | None:
    if value is None:
        return None
    try:
        return model.model_validate_json(value)
    except ValidationError as e:  # a bad value must not stop the watch: say so and ignore it
        log.error("ignoring %s = %r: %s", key, value[:200], e)
        return None
