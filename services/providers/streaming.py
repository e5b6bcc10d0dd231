"""Streamed chat answers: what a streaming adapter yields, and the read loop every format shares.

An adapter's `stream(call, timeouts=...)` yields `TextDelta`s as the vendor produces them and one
`StreamEnd`, only after the vendor's proper end marker (`data: [DONE]`, `message_stop`). Anything
else raises `StreamError` (a ProviderError) saying what went wrong and what had arrived:

- no first text within `timeouts.first_token` (also: no HTTP answer at all)  -> timeout
- no next event within `timeouts.idle` once text flows (a stall)             -> timeout
- the connection cut, or closed before the end marker                         -> connection
- a chunk that is not valid for the format                                    -> malformed_response
- an error event inside the 200 stream                                        -> its own kind
- a non-2xx answer                                                            -> as for complete()
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

import aiohttp
from aiohttp.http_exceptions import LineTooLong

from schemas.completion import ErrorKind
from services.providers._http import HttpPool
from services.providers.base import ChatCall, ProviderError
from services.providers.errors import (
    classify_error_in_ok, classify_http_error, classify_transport_error,
)
from services.providers.sse import ServerSentEvent, SseDecoder

MAX_LINE_BYTES = 1024 * 1024  # one SSE line; a longer one is a broken stream, not an answer


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class StreamEnd:
    finish_reason: str  # normalised like ChatAnswer.finish_reason; "unknown" when the vendor gave none
    model: str
    input_tokens: int
    output_tokens: int


StreamEvent = TextDelta | StreamEnd


@dataclass(frozen=True, kw_only=True)
class StreamTimeouts:
    first_token: float  # seconds from sending the request to the first text
    idle: float  # seconds allowed between events once text flows: stall detection
    total: float = 600.0  # seconds for the whole stream, however healthy


class StreamError(ProviderError):
    """A failed stream, with what had arrived: the router resumes from it and bills it."""

    def __init__(self, kind: ErrorKind, message: str, *, status_code: int | None = None,
                 retry_after: float | None = None, deltas: int = 0, input_tokens: int = 0) -> None:
        super().__init__(kind, message, status_code=status_code, retry_after=retry_after)
        self.deltas = deltas  # text deltas received before the failure (~ output tokens)
        self.input_tokens = input_tokens  # when the vendor said (Anthropic's message_start)


class ChunkParser(Protocol):
    """A wire format's stream, one event at a time. Pure: raises ProviderError on a bad event."""

    done: bool  # the end marker was seen
    input_tokens: int

    def feed(self, event: ServerSentEvent) -> list[StreamEvent]: ...


class StreamingProvider(Protocol):
    def stream(self, call: ChatCall, *, timeouts: StreamTimeouts) -> AsyncIterator[StreamEvent]: ...


async def read_stream(
    pool: HttpPool, url: str, headers: dict[str, str], body: dict[str, Any], parser: ChunkParser,
    *, timeouts: StreamTimeouts, secret: str | None,
) -> AsyncIterator[StreamEvent]:
    """POST `body`, then yield the parser's events as lines arrive, under the timeouts.

    Each wait is bounded by its own `asyncio.timeout_at` and none spans a `yield`: a timeout
    left open across a yield would fire into the consumer's code instead of this generator's.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    end_at = started + timeouts.total
    deadline = min(started + timeouts.first_token, end_at)
    deltas = 0

    def fail(e: ProviderError) -> StreamError:
        return StreamError(e.kind, e.message, status_code=e.status_code, retry_after=e.retry_after,
                           deltas=deltas, input_tokens=parser.input_tokens)

    try:
        async with AsyncExitStack() as stack:
            async with asyncio.timeout_at(deadline):
                resp = await stack.enter_async_context(pool.open_stream(url, headers, body))
                if not 200 <= resp.status < 300:
                    raw = await resp.read()
                    raise classify_http_error(resp.status, resp.headers, raw,
                                              now=datetime.now(timezone.utc), secret=secret)
            decoder = SseDecoder()
            while True:
                async with asyncio.timeout_at(deadline):
                    line = await resp.content.readline(max_line_length=MAX_LINE_BYTES)
                if not line:
                    raise _ended_early(decoder, deltas)
                event = _decode(decoder, line)
                if event is None:
                    continue
                out = parser.feed(event)
                for item in out:
                    if isinstance(item, TextDelta):
                        deltas += 1
                    yield item
                if parser.done:
                    return
                if deltas and event.event != "ping":
                    # Text flows: from now on each event must come within `idle`. A keep-alive
                    # (a comment, Anthropic's ping) proves the socket, not progress.
                    deadline = min(loop.time() + timeouts.idle, end_at)
    except TimeoutError:
        if loop.time() >= end_at:
            what = f"stream not finished within {timeouts.total:g}s"
        elif deltas:
            what = f"no chunk for {timeouts.idle:g}s after {deltas} chunks (stalled)"
        else:
            what = f"no first token within {timeouts.first_token:g}s"
        raise fail(ProviderError(ErrorKind.TIMEOUT, what)) from None
    except aiohttp.ClientError as e:
        raise fail(classify_transport_error(e, timeout=timeouts.first_token)) from e
    except LineTooLong:
        raise fail(ProviderError(ErrorKind.MALFORMED_RESPONSE,
                                 f"a stream line is longer than {MAX_LINE_BYTES} bytes",
                                 status_code=200)) from None
    except ProviderError as e:
        raise fail(e) from None


def _decode(decoder: SseDecoder, line: bytes) -> ServerSentEvent | None:
    try:
        return decoder.feed(line)
    except UnicodeDecodeError:
        raise ProviderError(ErrorKind.MALFORMED_RESPONSE, "stream line is not UTF-8",
                            status_code=200) from None


def _ended_early(decoder: SseDecoder, deltas: int) -> ProviderError:
    """The body ended cleanly but the end marker never came: never a finished answer."""
    tail = " (mid-event)" if decoder.pending else ""
    return ProviderError(ErrorKind.CONNECTION,
                         f"stream ended without its end marker after {deltas} chunks{tail}",
                         status_code=200)


def json_data(event: ServerSentEvent) -> dict[str, Any]:
    """An event's data as a JSON object, or ProviderError(MALFORMED_RESPONSE)."""
    try:
        data = json.loads(event.data)
    except ValueError:
        raise ProviderError(ErrorKind.MALFORMED_RESPONSE,
                            f"stream chunk is not JSON: {event.data[:80]!r}", status_code=200) from None
    if not isinstance(data, dict):
        raise ProviderError(ErrorKind.MALFORMED_RESPONSE,
                            f"stream chunk is a JSON {type(data).__name__}, not an object", status_code=200)
    return data



# Error types inside a stream that mean "slow down" rather than "broken": the cool-down, not the
# breaker (Anthropic `rate_limit_error`, OpenAI `rate_limit_exceeded`).
_RATE_LIMIT_TYPES = frozenset({"rate_limit_error", "rate_limit_exceeded", "requests", "tokens"})


def error_event(error: object, *, secret: str | None) -> ProviderError:
    """An error event inside a 200 stream, classified like an error body in a 200."""
    e = classify_error_in_ok(error, status=200, secret=secret)
    if isinstance(error, dict) and (error.get("type") in _RATE_LIMIT_TYPES
                                    or error.get("code") in _RATE_LIMIT_TYPES):
        return ProviderError(ErrorKind.RATE_LIMITED, e.message, status_code=200)
    return ProviderError(e.kind, f"error event inside the stream: {e.message}", status_code=200)
