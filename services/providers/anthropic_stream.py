"""Anthropic Messages streamed (`stream: true`): named events message_start, content_block_*,
message_delta, message_stop, ping and error (docs.anthropic.com/en/docs/build-with-claude/streaming).
Pure parsing; the read loop and its timeouts are in streaming.py.
"""

from collections.abc import AsyncIterator
from typing import Any

from services.providers.anthropic import _STOP_REASONS, AnthropicProvider, anthropic_body
from services.providers.base import ChatCall
from services.providers.errors import malformed
from services.providers.sse import ServerSentEvent
from services.providers.streaming import (
    StreamEnd, StreamEvent, StreamTimeouts, TextDelta, error_event, json_data, read_stream,
)


def anthropic_stream_body(call: ChatCall) -> dict[str, Any]:
    return {**anthropic_body(call), "stream": True}


def _count(usage: Any, key: str, current: int) -> int:
    if not isinstance(usage, dict) or usage.get(key) is None:
        return current
    value = usage[key]
    if type(value) is not int:
        raise malformed(f"usage.{key} in the stream is not an integer")
    return value


class AnthropicChunkParser:
    """One stream's events in order; `done` once message_stop arrived."""

    def __init__(self, *, requested_model: str, secret: str | None = None) -> None:
        self.model = requested_model
        self.secret = secret
        self.done = False
        self.started = False
        self.input_tokens = 0
        self.output_tokens = 0
        self.stop: str | None = None

    def feed(self, event: ServerSentEvent) -> list[StreamEvent]:
        data = json_data(event)
        kind = event.event or data.get("type")
        if kind == "ping":
            return []
        if kind == "error":
            raise error_event(data.get("error"), secret=self.secret)
        if not self.started and kind != "message_start":
            raise malformed(f"stream began with {kind!r}, not message_start")
        if kind == "message_start":
            self._start(data)
        elif kind == "content_block_delta":
            delta = data.get("delta")
            if not isinstance(delta, dict):
                raise malformed("content_block_delta without a delta")
            if delta.get("type") == "text_delta":  # thinking and tool-input deltas are not text
                text = delta.get("text")
                if not isinstance(text, str):
                    raise malformed("text_delta without text")
                return [TextDelta(text)] if text else []
        elif kind == "message_delta":
            delta = data.get("delta")
            stop = delta.get("stop_reason") if isinstance(delta, dict) else None
            if stop is not None and not isinstance(stop, str):
                raise malformed("message_delta's stop_reason is not a string")
            self.stop = stop or self.stop
            self.output_tokens = _count(data.get("usage"), "output_tokens", self.output_tokens)
        elif kind == "message_stop":
            self.done = True
            finish = _STOP_REASONS.get(self.stop, self.stop) if self.stop else "unknown"
            return [StreamEnd(finish_reason=finish, model=self.model,
                              input_tokens=self.input_tokens, output_tokens=self.output_tokens)]
        # content_block_start/stop, and event types Anthropic may add later: nothing to do
        # ("handle unknown event types gracefully", their versioning policy).
        return []

    def _start(self, data: dict[str, Any]) -> None:
        message = data.get("message")
        if not isinstance(message, dict):
            raise malformed("message_start without a message")
        self.started = True
        model = message.get("model")
        if isinstance(model, str) and model:
            self.model = model
        usage = message.get("usage")
        self.input_tokens = _count(usage, "input_tokens", 0)
        self.output_tokens = _count(usage, "output_tokens", 0)


class AnthropicStreamingProvider(AnthropicProvider):
    """AnthropicProvider plus `stream` (a subclass, so the non-streaming module stays as it was)."""

    def stream(self, call: ChatCall, *, timeouts: StreamTimeouts) -> AsyncIterator[StreamEvent]:
        parser = AnthropicChunkParser(requested_model=call.model, secret=self.spec.api_key)
        return read_stream(self._pool, self._url, self._headers, anthropic_stream_body(call), parser,
                           timeouts=timeouts, secret=self.spec.api_key)
