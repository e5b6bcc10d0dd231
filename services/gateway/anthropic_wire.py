"""Anthropic's Messages format at the gateway (/v1/messages): requests in, answers and the named
SSE events out (docs.anthropic.com/en/api/messages, .../build-with-claude/streaming). Pure.

Refused with a 400 naming the field: tools, extended thinking, stop sequences, non-text content.
Accepted and not forwarded: top_p, top_k, service_tier (the chain may fail over to a vendor
without them).
"""

import json
from collections.abc import Collection
from typing import Any

from schemas.completion import CompletionResult, Message, Usage

from .errors import ApiError, invalid
from .inputs import ChatInput

IGNORED = frozenset({"top_p", "top_k", "service_tier", "container", "mcp_servers"})
USED = frozenset({"model", "messages", "max_tokens", "system", "temperature", "stream", "metadata"})
UNSUPPORTED = {
    "tools": "tools are not supported by this gateway",
    "tool_choice": "tool_choice is not supported: this gateway does not support tools",
    "thinking": "extended thinking is not supported by this gateway",
    "stop_sequences": "stop_sequences are not supported by this gateway",
}
# Finish reasons (ours, OpenAI's words) as Anthropic's stop_reason.
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal",
                "tool_calls": "tool_use"}


def parse_messages(data: Any, routes: Collection[str]) -> ChatInput | ApiError:
    if not isinstance(data, dict):
        return invalid("the request body must be a JSON object")
    for name in data:
        if name not in USED and name not in IGNORED and name not in UNSUPPORTED:
            return invalid(f"{name}: Extra inputs are not permitted", param=name)
    for name, why in UNSUPPORTED.items():
        if data.get(name) not in (None, [], {"type": "disabled"}):
            return invalid(why, param=name)
    for name in ("model", "messages", "max_tokens"):
        if name not in data:
            return invalid(f"{name}: Field required", param=name)
    model = data["model"]
    if not isinstance(model, str) or model not in routes:
        return ApiError(404, f"model: {model!r} is not a route here (known: {', '.join(sorted(routes))})",
                        param="model")
    max_tokens = data["max_tokens"]
    if type(max_tokens) is not int or max_tokens < 1:
        return invalid("max_tokens: Input should be an integer greater than or equal to 1", param="max_tokens")
    temperature = data.get("temperature")
    if temperature is not None and (type(temperature) not in (int, float) or not 0 <= temperature <= 1):
        return invalid("temperature: Input should be a number from 0 to 1", param="temperature")
    stream = data.get("stream", False)
    if type(stream) is not bool:
        return invalid("stream: Input should be a valid boolean", param="stream")
    messages = _messages(data["messages"])
    if isinstance(messages, ApiError):
        return messages
    if data.get("system") is not None:
        system = _text(data["system"], "system")
        if isinstance(system, ApiError):
            return system
        messages.insert(0, Message(role="system", content=system))
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        return invalid("metadata: Input should be a valid dictionary", param="metadata")
    user = metadata.get("user_id")
    return ChatInput(route=model, messages=messages, max_tokens=max_tokens, temperature=temperature,
                     stream=stream, user=user if isinstance(user, str) and user else None,
                     metadata={k: v for k, v in metadata.items() if k != "user_id"})


def _messages(raw: Any) -> list[Message] | ApiError:
    if not isinstance(raw, list) or not raw:
        return invalid("messages: Input should be a non-empty list", param="messages")
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            role = m.get("role") if isinstance(m, dict) else None
            return invalid(f"messages.{i}.role: Input should be 'user' or 'assistant', got {role!r}",
                           param=f"messages.{i}.role")
        text = _text(m.get("content"), f"messages.{i}.content")
        if isinstance(text, ApiError):
            return text
        out.append(Message(role=m["role"], content=text))
    return out


def _text(content: Any, where: str) -> str | ApiError:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for j, block in enumerate(content):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind != "text" or not isinstance(block.get("text"), str):
                return invalid(f"{where}.{j}: only text blocks are supported by this gateway, got "
                               f"{kind!r}", param=where)
            parts.append(block["text"])
        return "".join(parts)
    return invalid(f"{where}: Input should be a string or a list of text blocks", param=where)


# --- answers --------------------------------------------------------------------------------------

def stop_reason(finish: str | None) -> str | None:
    """Our finish reason as Anthropic's; an unknown one is null, never "end_turn"."""
    return STOP_REASONS.get(finish or "", None if finish in (None, "unknown") else finish)


def message(result: CompletionResult, *, route: str, finish: str,
            lifeline: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"msg_{result.request_id}", "type": "message", "role": "assistant", "model": route,
            "content": [{"type": "text", "text": result.content or ""}],
            "stop_reason": stop_reason(finish), "stop_sequence": None,
            "usage": {"input_tokens": result.usage.input_tokens,
                      "output_tokens": result.usage.output_tokens},
            "lifeline": lifeline}


class StreamRenderer:
    """One answer as Anthropic's named events, message_start to message_stop."""

    content_type = "text/event-stream"

    def __init__(self, *, request_id: str, route: str) -> None:
        self.request_id = request_id
        self.route = route

    def opening(self) -> bytes:
        # Input tokens are known at the end only (the router's chunks carry them there).
        start = {"id": f"msg_{self.request_id}", "type": "message", "role": "assistant",
                 "model": self.route, "content": [], "stop_reason": None, "stop_sequence": None,
                 "usage": {"input_tokens": 0, "output_tokens": 0}}
        return (_event("message_start", {"type": "message_start", "message": start})
                + _event("content_block_start", {"type": "content_block_start", "index": 0,
                                                  "content_block": {"type": "text", "text": ""}}))

    def delta(self, text: str) -> bytes:
        return _event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "text_delta", "text": text}})

    def ending(self, finish: str | None, used: Usage, lifeline: dict[str, Any]) -> bytes:
        return (_event("content_block_stop", {"type": "content_block_stop", "index": 0})
                + _event("message_delta", {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason(finish), "stop_sequence": None},
                    "usage": {"input_tokens": used.input_tokens, "output_tokens": used.output_tokens},
                    "lifeline": lifeline})
                + _event("message_stop", {"type": "message_stop"}))

    def error(self, error: ApiError, lifeline: dict[str, Any]) -> bytes:
        # Anthropic's mid-stream failure: the SDKs raise on it; no message_stop follows.
        return _event("error", {**error.anthropic(), "lifeline": lifeline})


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
