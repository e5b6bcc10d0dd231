"""The gateway's side of the bus: llm.complete request-reply, and streams over one inbox.

Every stream of this instance shares one wildcard subscription (`<inbox>.*`, a token per stream),
as nats-py does for requests: no SUB/UNSUB round trip per stream, and no race between
subscribing and the router's first chunk.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from uuid import uuid4

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import NotFoundError
from opentelemetry import propagate
from pydantic import ValidationError

from schemas import subjects
from schemas.completion import CompletionRequest, CompletionResult
from schemas.streaming import StreamCancel, StreamChunk
from schemas.streams import LLM_RESULTS

from .errors import NO_ROUTER, ApiError, router_timeout

log = logging.getLogger(__name__)
_NO_RESPONDERS = "503"  # the status NATS sends to a reply subject nobody subscribes behind


def _trace_headers() -> dict[str, str] | None:
    """The current trace context (the HTTP request's span), for the router to continue."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers or None


def too_large(size: int, limit: int) -> ApiError:
    return ApiError(413, f"the request is {size} bytes on the bus, more than the bus carries "
                    f"({limit}); shorten the conversation", code="request_too_large")


class BusClient:
    def __init__(self, connection: Callable[[], Client]) -> None:
        self._nc = connection
        self._prefix = ""
        self._sub: Subscription | None = None
        self._streams: dict[str, asyncio.Queue[Msg]] = {}

    async def start(self) -> None:
        nc = self._nc()
        self._prefix = nc.new_inbox()
        self._sub = await nc.subscribe(f"{self._prefix}.*", cb=self._deliver)

    async def _deliver(self, msg: Msg) -> None:
        queue = self._streams.get(msg.subject.rpartition(".")[2])
        if queue is not None:  # else a stream already given up on: its late chunks are dropped
            queue.put_nowait(msg)

    def _encoded(self, request: CompletionRequest) -> bytes | ApiError:
        data = request.model_dump_json(exclude_defaults=True).encode()
        limit = self._nc().max_payload
        return too_large(len(data), limit) if len(data) > limit else data

    async def complete(self, request: CompletionRequest, *, timeout: float) -> CompletionResult | ApiError:
        data = self._encoded(request)
        if isinstance(data, ApiError):
            return data
        try:
            msg = await self._nc().request(subjects.LLM_COMPLETE, data, timeout=timeout,
                                           headers=_trace_headers())
        except NoRespondersError:
            return NO_ROUTER
        except NatsTimeout:
            return router_timeout(timeout)
        return CompletionResult.model_validate_json(msg.data)

    async def stream(self, request: CompletionRequest, *, first: float,
                     idle: float) -> AsyncIterator[StreamChunk | ApiError]:
        """The router's chunks in order; ends after end, error or queued, or with an ApiError
        (no router, a router gone silent for `idle` seconds, lost chunks)."""
        data = self._encoded(request)
        if isinstance(data, ApiError):
            yield data
            return
        token = uuid4().hex
        queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._streams[token] = queue
        try:
            await self._nc().publish(subjects.LLM_STREAM, data, reply=f"{self._prefix}.{token}",
                                     headers=_trace_headers())
            expected, timeout = 0, first
            while True:
                try:
                    async with asyncio.timeout(timeout):
                        msg = await queue.get()
                except TimeoutError:
                    yield router_timeout(timeout)
                    return
                if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
                    yield NO_ROUTER
                    return
                chunk = StreamChunk.model_validate_json(msg.data)
                if chunk.seq != expected:  # a slow consumer lost messages: never stitch a gap
                    yield ApiError(502, f"stream chunks were lost on the bus (expected {expected}, "
                                   f"got {chunk.seq})", type="server_error", code="stream_gap")
                    return
                expected += 1
                yield chunk
                if chunk.type in ("end", "error", "queued"):
                    return
                timeout = idle
        finally:
            self._streams.pop(token, None)

    async def cancel(self, request_id: str) -> None:
        await self._nc().publish(subjects.LLM_STREAM_CANCEL,
                                 StreamCancel(request_id=request_id).model_dump_json().encode())

    async def result(self, request_id: str) -> CompletionResult | None:
        """A parked request's answer from LLM_RESULTS (llm.result.<id>), if it is there yet."""
        js = self._nc().jetstream()
        try:
            msg = await js.get_last_msg(LLM_RESULTS.name, subjects.llm_result(request_id))
        except NotFoundError:
            return None
        try:
            return CompletionResult.model_validate_json(msg.data)
        except ValidationError as e:  # not ours to fix; the caller must hear of it
            log.error("llm.result.%s is not a CompletionResult: %s", request_id, e)
            raise
