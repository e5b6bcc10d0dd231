"""The router's streaming edge: `llm.stream` (queue group) -> StreamWalk -> chunks to the caller's
inbox; `llm.stream.cancel` (every instance) stops a stream whose caller went away; llm.attempt
and llm.completed for every streamed request, as for the others (ledger, history, health)."""

import asyncio
import logging

from faststream.nats import NatsMessage, NatsRouter
from prometheus_client import Counter

from schemas import subjects
from schemas.completion import CompletionRequest, ErrorKind, ResultError
from schemas.events import LlmAttempt, LlmCompleted
from schemas.streaming import StreamCancel, StreamChunk
from services.runtime.bus import publish_events
from services.runtime.service import Service

from . import logic
from .engine import Engine
from .metrics import RouterMetrics
from .streaming import StreamRecord, StreamWalk

log = logging.getLogger(__name__)


def add_stream_handlers(router: NatsRouter, service: Service, engine: Engine,
                        metrics: RouterMetrics, *, queue: str, max_workers: int) -> None:
    failures = Counter(
        "lifeline_router_stream_failures", "members that failed after a stream's first token, "
        "by the route's policy and what the caller got", ["route", "policy", "outcome"],
        registry=service.metrics)
    streams: dict[str, asyncio.Task[StreamRecord]] = {}  # this instance's streams, by request id

    @router.subscriber(subjects.LLM_STREAM, queue=queue, max_workers=max_workers, no_reply=True,
                       description="a CompletionRequest with a reply inbox, answered by StreamChunk "
                                   "messages on it", include_in_schema=False)  # raw bytes: RAW_HANDLERS
    async def stream(msg: NatsMessage) -> None:
        inbox = msg.reply_to
        if not inbox:  # nobody to stream to: say so where operators look, and carry on
            log.warning("llm.stream request without a reply inbox dropped")
            return
        nc = service.broker.connection

        async def send(chunk: StreamChunk) -> None:
            await nc.publish(inbox, chunk.model_dump_json(exclude_defaults=True).encode())

        parsed = logic.parse_request(msg.body)
        if not isinstance(parsed, CompletionRequest):
            rid = logic.request_id_of(msg.body) or "invalid"
            await send(StreamChunk(request_id=rid, seq=0, type="error", error=parsed))
            return
        walk = StreamWalk(engine, parsed, send, streaming=engine.config.gateway.streaming)
        task = asyncio.create_task(walk.run(), name=f"stream-{parsed.request_id}")
        streams[parsed.request_id] = task
        try:
            await asyncio.wait([task])
        finally:
            streams.pop(parsed.request_id, None)
            task.cancel()  # only has an effect if this handler itself was cancelled
        if task.cancelled():
            record = walk.cancelled()
        elif (e := task.exception()) is not None:  # a bug: the caller must not wait in silence
            log.error("stream %s failed", parsed.request_id, exc_info=e)
            record = walk.cancelled()
            record.result.error = ResultError(kind=ErrorKind.EXHAUSTED, message=f"router error: {e!r}")
            walk.final = StreamChunk(request_id=parsed.request_id, seq=walk.seq, type="error",
                                     error=record.result.error, partial=bool(walk.sent))
        else:
            record = task.result()
        metrics.observe(parsed.route, record.result)
        route = engine.config.routes.get(parsed.route)
        for outcome in record.mid_stream_failures:
            failures.labels(parsed.route, route.on_stream_failure if route else "-", outcome).inc()
        # Stored before the caller hears the stream is over: an answered request is a stored one.
        await _publish_events(service, parsed, record)
        if walk.final is not None and not task.cancelled():
            await send(walk.final)

    @router.subscriber(subjects.LLM_STREAM_CANCEL, no_reply=True,
                       description="the caller of a stream went away: stop calling its provider")
    async def cancel(body: StreamCancel) -> None:
        task = streams.get(body.request_id)
        if task is not None:
            log.info("stream %s cancelled by its caller", body.request_id)
            task.cancel()


async def _publish_events(service: Service, request: CompletionRequest, record: StreamRecord) -> None:
    result = record.result
    events = [
        (subjects.LLM_ATTEMPT,
         LlmAttempt(source=service.source, request_id=request.request_id, route=request.route,
                    attempt_no=i, status_code=code, usage=usage, cost_usd=cost,
                    **a.model_dump()).model_dump_json().encode(),
         f"{request.request_id}.{i}")
        for i, (a, code, usage, cost) in enumerate(zip(
            record.attempts, record.status_codes, record.usages, record.costs, strict=True))
    ]
    completed = LlmCompleted(
        source=service.source, request_id=request.request_id, route=request.route,
        status=result.status, tier=result.tier, provider=result.provider, model=result.model,
        fallback_depth=result.fallback_depth, usage=result.usage, cost_usd=result.cost_usd,
        latency_ms=result.latency_ms, user_id=request.user_id, session_id=request.session_id,
        key_id=request.key_id, team_id=request.team_id, priority=request.priority,
        region=request.region, messages=[m.model_dump() for m in request.messages],
        content=result.content, error_kind=result.error.kind if result.error else None,
        attempts=len(record.attempts), cached=result.cached,
        metadata={**request.metadata, "stream": True},
    )
    events.append((subjects.LLM_COMPLETED, completed.model_dump_json().encode(), request.request_id))
    js = service.broker.config.connection_state.stream
    for (subject, _, _), failure in zip(events, await publish_events(js, events), strict=True):
        if failure is not None:  # logged: the caller already has its answer
            log.warning("%s for %s not stored: %r", subject, request.request_id, failure)
