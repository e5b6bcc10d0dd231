"""The router's streaming edge: `llm.stream` (queue group) -> StreamWalk -> chunks to the caller's
inbox; `llm.stream.cancel` (every instance) stops a stream whose caller went away; llm.attempt
and llm.completed for every streamed request, as for the others (ledger, history, health)."""

import asyncio
import logging

from faststream.nats import NatsMessage, NatsRouter
from prometheus_client import Counter

from schemas import subjects
from schemas.completion import CompletionRequest, ErrorKind, ResultError
from schemas.streaming import StreamCancel, StreamChunk
from services.runtime.service import Service

from . import events, logic
from .engine import Engine
from .metrics import RouterMetrics
from .streaming import StreamRecord, StreamWalk

log = logging.getLogger(__name__)


def add_stream_handlers(router: NatsRouter, service: Service, engine: Engine,
                        metrics: RouterMetrics, backlog: events.Backlog, *, queue: str,
                        max_workers: int) -> None:
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
        await backlog.publish(parsed, events.request_events(
            service.source, parsed, record, metadata={**parsed.metadata, "stream": True}))
        if walk.final is not None and not task.cancelled():
            await send(walk.final)

    @router.subscriber(subjects.LLM_STREAM_CANCEL, no_reply=True,
                       description="the caller of a stream went away: stop calling its provider")
    async def cancel(body: StreamCancel) -> None:
        task = streams.get(body.request_id)
        if task is not None:
            log.info("stream %s cancelled by its caller", body.request_id)
            task.cancel()

