"""Relaying a router's stream to an HTTP caller as server-sent events, in the caller's format.

The HTTP status waits for the router's first chunk: a request that fails before any text (no
provider, a bad request, a budget) gets a proper 4xx/5xx JSON error, and a parked one its 202.
Once text flows the answer is 200 and every later failure is an explicit error event: a stream
only ends with its finish reason and `[DONE]` / `message_stop` when the router's `end` said the
provider finished.

SSE framing is written by hand: it is `data: ...\\n\\n`, and the two wire formats need exact
control of event names and of what is (not) sent at the end.
"""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, Protocol

from aiohttp import web

from schemas.completion import CompletionResult, Usage
from schemas.streaming import StreamChunk

from .errors import ApiError, from_result
from .inputs import lifeline_fields, lifeline_headers

log = logging.getLogger(__name__)


class Renderer(Protocol):
    content_type: str

    def opening(self) -> bytes: ...

    def delta(self, text: str) -> bytes: ...

    def ending(self, finish: str | None, used: Usage, lifeline: dict[str, Any]) -> bytes: ...

    def error(self, error: ApiError, lifeline: dict[str, Any]) -> bytes: ...


def _meta(request_id: str, chunk: StreamChunk, resumed: int | None = None) -> dict[str, Any]:
    return lifeline_fields(request_id=request_id, tier=chunk.tier, provider=chunk.provider,
                           model=chunk.model, fallback_depth=chunk.fallback_depth,
                           cached=chunk.cached, resumed=resumed)


async def relay(
    request: web.Request, chunks: AsyncIterator[StreamChunk | ApiError], renderer: Renderer,
    request_id: str, *,
    on_first_token: Callable[[], None],
    on_failure: Callable[[str], None],
    answer: Callable[[CompletionResult], web.Response],
    error: Callable[[ApiError], web.Response],
    cancel: Callable[[str], Awaitable[None]],
) -> web.StreamResponse:
    async with aclosing(chunks):
        first = await anext(chunks)
        if isinstance(first, ApiError):
            return error(first)
        if first.type == "error":
            return error(from_result(first.error))
        if first.type == "queued":
            return answer(CompletionResult(request_id=request_id, status="queued",
                                           ticket=first.ticket, tier=first.tier))
        meta = _meta(request_id, first)
        response = web.StreamResponse(headers={
            "Content-Type": renderer.content_type, "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx in front must not buffer the stream
            **lifeline_headers(meta)})
        try:
            await response.prepare(request)
            await response.write(renderer.opening())
            on_first_token()
            async for item in chunks:
                if isinstance(item, ApiError):  # the router went silent or the bus lost chunks
                    on_failure("errored")
                    await response.write(renderer.error(item, meta))
                    break
                if item.type == "delta":
                    await response.write(renderer.delta(item.text))
                elif item.type == "end":
                    if item.resumed:
                        on_failure("resumed")
                    await response.write(renderer.ending(
                        item.finish_reason, item.usage or Usage(), _meta(request_id, item, item.resumed)))
                elif item.type == "error":
                    on_failure("errored")
                    meta = {**meta, "resumed": item.resumed}
                    await response.write(renderer.error(from_result(item.error), meta))
        except ConnectionResetError:  # the caller left: stop the provider call it no longer wants
            log.info("stream %s: the caller went away", request_id)
            await cancel(request_id)
            return response
        await response.write_eof()
        return response
