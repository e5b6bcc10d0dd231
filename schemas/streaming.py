"""A streamed answer over the bus: the chunks a router sends to a caller's reply inbox.

The caller publishes a CompletionRequest on `llm.stream` with a reply subject (an inbox it
listens on). A router of the queue group answers with StreamChunk messages on that inbox, in
order, numbered by `seq` from 0 (a gap means a lost message):

    start  once, when the first text is about to flow: who answers (tier, provider, model, depth)
    delta  the text, as the provider produces it (no buffering of the whole answer)
    end    once, only after the provider's proper end marker: finish_reason, usage, cost, resumed
    error  instead of `end` (or instead of `start` when nothing was sent); `partial` says whether
           text had already been sent, so a caller never mistakes a cut answer for a whole one
    queued instead of `start`: the request was parked (allow_queue); fetch llm.result.<id> later

Failover before the first text is invisible: the caller sees one `start`. A failure after text
was sent follows the route's `on_stream_failure`: `resume` carries on with the next member (the
caller still sees one stream; `end.resumed` counts the seams), `error` sends `error`.
"""

from typing import Literal

from pydantic import BaseModel

from .completion import ResultError, Tier, Usage

ChunkType = Literal["start", "delta", "end", "error", "queued"]


class StreamChunk(BaseModel):
    request_id: str
    seq: int  # 0, 1, 2 ... per stream
    type: ChunkType
    text: str = ""  # delta
    # start and end: who answers (at end: the member that finished the answer)
    tier: Tier | None = None
    provider: str | None = None
    model: str | None = None
    fallback_depth: int | None = None
    cached: bool = False
    ttft_ms: float | None = None  # start: from the router taking the request to the first text
    # end
    finish_reason: str | None = None  # "stop" | "length" | "content_filter" | "tool_calls" | vendor's
    usage: Usage | None = None  # every attempt's tokens, the cut ones included
    cost_usd: float | None = None
    latency_ms: float | None = None
    resumed: int = 0  # end and error: how many times another member took over mid-answer
    # error
    error: ResultError | None = None
    partial: bool = False  # error: text had been sent before the failure
    # queued
    ticket: str | None = None


class StreamCancel(BaseModel):
    """The caller of a stream went away: the router stops calling the provider for it."""

    request_id: str
