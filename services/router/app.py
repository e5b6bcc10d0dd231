"""The router's edge: llm.complete in a queue group -> engine -> reply, llm.attempt, llm.completed."""

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import TypeVar

from faststream.nats import NatsMessage, NatsRouter
from pydantic import BaseModel, ValidationError

from schemas import subjects
from schemas.completion import CompletionRequest, CompletionResult
from schemas.events import LlmAttempt, LlmCompleted
from schemas.control import KILLSWITCH_KEY, Killswitch, ProviderHealth
from schemas.streams import CONTROL, LLM_EVENTS, PROVIDER_HEALTH
from services.providers import make_provider
from services.providers.base import Provider
from services.runtime.bus import publish_events, watch_bucket
from services.runtime.config import LifelineConfig, load_config
from services.runtime.service import Service

from . import logic
from .engine import Engine, Outcome
from .settings import RouterSettings

log = logging.getLogger(__name__)

QUEUE_GROUP = "router"
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
    engine = Engine(config, providers)
    router = NatsRouter()
    service = Service("router", settings, router)
    service.in_flight = lambda: engine.in_flight

    # Declared for the AsyncAPI document; sent by runtime.bus.publish_events (the fast path).
    router.publisher(subjects.LLM_ATTEMPT, stream=LLM_EVENTS.name, schema=LlmAttempt,
                     description="one call to one provider/model")
    router.publisher(subjects.LLM_COMPLETED, stream=LLM_EVENTS.name, schema=LlmCompleted,
                     description="one finished request")

    @router.subscriber(subjects.LLM_COMPLETE, queue=QUEUE_GROUP,
                       max_workers=settings.max_in_flight,
                       description="request-reply: a CompletionRequest answered by a CompletionResult",
                       include_in_schema=False)  # raw bytes in: schemas/asyncapi.py documents it
    async def complete(msg: NatsMessage) -> bytes:
        parsed = logic.parse_request(msg.body)
        if not isinstance(parsed, CompletionRequest):
            rid = logic.request_id_of(msg.body) or "invalid"
            log.info("rejected request %s: %s", rid, parsed.message)
            return CompletionResult(request_id=rid, status="error", error=parsed).model_dump_json().encode()
        outcome = await engine.complete(parsed)
        await _publish_events(parsed, outcome)
        return outcome.result.model_dump_json().encode()

    async def _publish_events(request: CompletionRequest, outcome: Outcome) -> None:
        # Stored before the caller is answered: every answered request is in the ledger and the
        # history (a crash in between makes the caller retry; the message ids dedupe it).
        result = outcome.result
        events = [
            (subjects.LLM_ATTEMPT,
             LlmAttempt(source=service.source, request_id=request.request_id, route=request.route,
                        attempt_no=i, status_code=code, **a.model_dump()).model_dump_json().encode(),
             f"{request.request_id}.{i}")
            for i, (a, code) in enumerate(zip(outcome.attempts, outcome.status_codes, strict=True))
        ]
        completed = LlmCompleted(
            source=service.source, request_id=request.request_id, route=request.route,
            status=result.status, tier=result.tier, provider=result.provider, model=result.model,
            fallback_depth=result.fallback_depth, usage=result.usage, cost_usd=result.cost_usd,
            latency_ms=result.latency_ms, user_id=request.user_id, session_id=request.session_id,
            region=request.region, messages=[m.model_dump() for m in request.messages],
            content=result.content, error_kind=result.error.kind if result.error else None,
            attempts=len(outcome.attempts), metadata=request.metadata,
        )
        events.append((subjects.LLM_COMPLETED, completed.model_dump_json().encode(),
                       request.request_id))
        js = service.broker.config.connection_state.stream
        # A lost event is logged, never allowed to cost the caller the answer it already has.
        for (subject, _, _), failure in zip(events, await publish_events(js, events), strict=True):
            if failure is not None:
                log.warning("%s for %s not stored: %r", subject, request.request_id, failure)

    def on_control(key: str, value: bytes | None) -> None:
        if key != KILLSWITCH_KEY:
            return
        switch = _parsed(Killswitch, key, value)
        engaged = switch is not None and switch.engaged
        engine.killswitch = (switch.reason or "engaged") if engaged else None
        log.warning("kill switch %s%s", "ENGAGED: " if engaged else "released",
                    engine.killswitch or "")

    def on_health(provider: str, value: bytes | None) -> None:
        health = _parsed(ProviderHealth, provider, value)
        avail = engine.availability
        if health is not None and health.state == "down":
            avail.down[provider] = health.reason or "down"
        else:  # up, degraded (still called) or the key deleted
            avail.down.pop(provider, None)
            if health is not None and health.state == "up":
                avail.revoked.pop(provider, None)  # the monitor saw its key work again

    watchers: list[asyncio.Task[None]] = []

    async def start_watching() -> None:
        js = service.broker.config.connection_state.stream
        watchers.append(asyncio.create_task(watch_bucket(js, CONTROL.name, on_control)))
        watchers.append(asyncio.create_task(watch_bucket(js, PROVIDER_HEALTH.name, on_health)))

    async def stop_watching() -> None:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)

    service.on_start(start_watching)
    service.on_stop(stop_watching)

    async def close_providers() -> None:
        await asyncio.gather(*(p.aclose() for p in providers.values()))

    service.on_stop(close_providers)
    return service


def _parsed(model: type[M], key: str, value: bytes | None) -> M | None:
    if value is None:
        return None
    try:
        return model.model_validate_json(value)
    except ValidationError as e:  # a bad value must not stop the watch: say so and ignore it
        log.error("ignoring %s = %r: %s", key, value[:200], e)
        return None
