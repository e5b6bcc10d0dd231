"""OpenAI Chat Completions streamed (`stream: true`): server-sent `data:` chunks ending with
`data: [DONE]` (platform.openai.com/docs/api-reference/chat-streaming). Pure parsing; the read
loop and its timeouts are in streaming.py.
"""

from collections.abc import AsyncIterator
from typing import Any

from services.providers._wire import usage_tokens
from services.providers.base import ChatCall
from services.providers.errors import malformed
from services.providers.openai import OpenAIProvider, openai_body
from services.providers.sse import ServerSentEvent
from services.providers.streaming import (
    StreamEnd, StreamEvent, StreamTimeouts, TextDelta, error_event, json_data, read_stream,
)

_FINISH = {"function_call": "tool_calls"}


def openai_stream_body(call: ChatCall) -> dict[str, Any]:
    # include_usage: the last chunk carries the usage (choices: []); without it a stream is
    # unbillable. OpenAI, Azure, vLLM, Ollama and llama.cpp server accept it.
    return {**openai_body(call), "stream": True, "stream_options": {"include_usage": True}}


class OpenAIChunkParser:
    """One stream's chunks in order; `done` once `[DONE]` arrived."""

    def __init__(self, *, requested_model: str, secret: str | None = None) -> None:
        self.model = requested_model
        self.secret = secret
        self.done = False
        self.input_tokens = 0
        self.output_tokens = 0
        self.finish: str | None = None

    def feed(self, event: ServerSentEvent) -> list[StreamEvent]:
        if event.data.strip() == "[DONE]":
            self.done = True
            # A stream without a finish_reason is reported as such, never as "stop".
            finish = _FINISH.get(self.finish, self.finish) if self.finish else "unknown"
            return [StreamEnd(finish_reason=finish, model=self.model,
                              input_tokens=self.input_tokens, output_tokens=self.output_tokens)]
        data = json_data(event)
        if data.get("error"):  # OpenAI's own mid-stream failure: {"error": {...}}
            raise error_event(data["error"], secret=self.secret)
        model = data.get("model")
        if isinstance(model, str) and model:
            self.model = model
        if data.get("usage") is not None:
            self.input_tokens, self.output_tokens = usage_tokens(
                data, "prompt_tokens", "completion_tokens", status=200)
        choices = data.get("choices")
        if not isinstance(choices, list):
            raise malformed("stream chunk has no choices[]")
        if not choices:  # the usage chunk, or Azure's prompt_filter_results chunk
            return []
        choice = choices[0]
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            raise malformed("stream chunk's choices[0].delta is missing")
        finish = choice.get("finish_reason")
        if finish is not None and not isinstance(finish, str):
            raise malformed("stream chunk's finish_reason is not a string")
        self.finish = finish or self.finish
        content = delta.get("content")
        if content is not None and not isinstance(content, str):
            raise malformed("stream chunk's delta.content is not a string")
        return [TextDelta(content)] if content else []


class OpenAIStreamingProvider(OpenAIProvider):
    """OpenAIProvider plus `stream` (a subclass, so the non-streaming module stays as it was)."""

    def stream(self, call: ChatCall, *, timeouts: StreamTimeouts) -> AsyncIterator[StreamEvent]:
        parser = OpenAIChunkParser(requested_model=call.model, secret=self.spec.api_key)
        return read_stream(self._pool, self._url, self._headers, openai_stream_body(call), parser,
                           timeouts=timeouts, secret=self.spec.api_key)
