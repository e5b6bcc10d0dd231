"""OpenAI's Chat Completions format at the gateway: requests in, answers and SSE chunks out. Pure.

platform.openai.com/docs/api-reference/chat. What we cannot honour is refused with a 400 that
names the parameter, never silently dropped: n > 1, tools and function calling, non-text content,
stop sequences, structured output, logprobs, audio. Sampling hints that change nothing a caller
relies on (top_p, penalties, seed, logit_bias, reasoning_effort, store, service_tier) are
accepted and not forwarded: the chain may fail over to a vendor that has no such knob.
"""

import json
from collections.abc import Collection
from typing import Any

from schemas.completion import CompletionResult, Message, Usage

from .errors import ApiError, invalid
from .inputs import ChatInput

IGNORED = frozenset({"top_p", "frequency_penalty", "presence_penalty", "seed", "logit_bias",
                     "reasoning_effort", "store", "service_tier", "parallel_tool_calls",
                     "top_logprobs", "verbosity", "prompt_cache_key", "safety_identifier"})
USED = frozenset({"model", "messages", "max_tokens", "max_completion_tokens", "temperature",
                  "stream", "stream_options", "metadata", "user", "n"})
# Refused unless absent, null or their do-nothing value.
UNSUPPORTED = {
    "tools": "tools (function calling) are not supported by this gateway",
    "functions": "functions (function calling) are not supported by this gateway",
    "tool_choice": "tool_choice is not supported: this gateway does not support tools",
    "function_call": "function_call is not supported: this gateway does not support tools",
    "stop": "stop sequences are not supported by this gateway",
    "response_format": "response_format other than text is not supported by this gateway",
    "logprobs": "logprobs are not supported by this gateway",
    "modalities": "modalities other than text are not supported by this gateway",
    "audio": "audio output is not supported by this gateway",
    "prediction": "predicted outputs are not supported by this gateway",
    "web_search_options": "web search is not supported by this gateway",
}
_HARMLESS = {"response_format": ({"type": "text"},), "logprobs": (False,), "modalities": (["text"],),
             "tool_choice": ("none",), "tools": ([],), "functions": ([],)}
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def parse_chat(data: Any, routes: Collection[str]) -> ChatInput | ApiError:
    if not isinstance(data, dict):
        return invalid("the request body must be a JSON object")
    for name in data:
        if name not in USED and name not in IGNORED and name not in UNSUPPORTED:
            return invalid(f"Unrecognized request argument supplied: {name}", param=name,
                           code="unknown_parameter")
    for name, why in UNSUPPORTED.items():
        value = data.get(name)
        if value is not None and value not in _HARMLESS.get(name, ()):
            return invalid(why, param=name, code="unsupported_parameter")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        return invalid("you must provide a model parameter (a route name: GET /v1/models)", param="model")
    if model not in routes:
        return ApiError(404, f"The model `{model}` does not exist: models here are Lifeline routes "
                        f"({', '.join(sorted(routes))})", param="model", code="model_not_found")
    if "messages" not in data:
        return invalid("Missing required parameter: 'messages'.", param="messages",
                       code="missing_required_parameter")
    messages = _messages(data["messages"])
    if isinstance(messages, ApiError):
        return messages
    n = data.get("n")
    if n is not None and (type(n) is not int or n != 1):
        return invalid(f"n must be 1 (one answer per request), not {n!r}", param="n",
                       code="unsupported_parameter")
    param = "max_completion_tokens" if data.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = data.get(param)
    if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
        return invalid(f"Invalid '{param}': expected an integer >= 1, got {max_tokens!r}", param=param)
    temperature = data.get("temperature")
    if temperature is not None and (type(temperature) not in (int, float) or not 0 <= temperature <= 2):
        return invalid(f"Invalid 'temperature': expected a number from 0 to 2, got {temperature!r}",
                       param="temperature")
    stream = data.get("stream", False)
    if stream is None:
        stream = False
    if type(stream) is not bool:
        return invalid(f"Invalid 'stream': expected a boolean, got {stream!r}", param="stream")
    options = data.get("stream_options")
    if options is not None and not stream:
        return invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                       param="stream_options")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        return invalid("Invalid 'metadata': expected an object", param="metadata")
    user = data.get("user")
    return ChatInput(route=model, messages=messages, max_tokens=max_tokens, temperature=temperature,
                     stream=stream, include_usage=isinstance(options, dict) and options.get("include_usage") is True,
                     user=user if isinstance(user, str) and user else None, metadata=metadata)


def _messages(raw: Any) -> list[Message] | ApiError:
    if not isinstance(raw, list) or not raw:
        return invalid("Invalid 'messages': expected a non-empty array of message objects",
                       param="messages")
    out = []
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            return invalid(f"Invalid '{where}': expected an object", param=where)
        role = m.get("role")
        if role in ("tool", "function") or m.get("tool_calls") or m.get("function_call"):
            return invalid(f"Invalid '{where}': tool messages are not supported by this gateway",
                           param=where, code="unsupported_parameter")
        if role not in _ROLES:
            return invalid(f"Invalid '{where}.role': expected one of system, developer, user, "
                           f"assistant, got {role!r}", param=f"{where}.role")
        text = _text(m.get("content"), role, where)
        if isinstance(text, ApiError):
            return text
        out.append(Message(role=_ROLES[role], content=text))  # type: ignore[arg-type]
    return out


def _text(content: Any, role: str, where: str) -> str | ApiError:
    if isinstance(content, str):
        return content
    if content is None and role == "assistant":
        return ""
    if isinstance(content, list):
        parts = []
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind != "text" or not isinstance(part.get("text"), str):
                return invalid(f"Invalid '{where}.content[{j}]': only text parts are supported by "
                               f"this gateway, got {kind!r}", param=f"{where}.content",
                               code="unsupported_parameter")
            parts.append(part["text"])
        return "".join(parts)
    return invalid(f"Invalid '{where}.content': expected a string or an array of text parts",
                   param=f"{where}.content")


# --- answers --------------------------------------------------------------------------------------

def finish_reason(reason: str | None) -> str | None:
    """A vendor's end marker with no reason given is "unknown": reported as null, never "stop"."""
    return None if reason in (None, "unknown") else reason


def completion(result: CompletionResult, *, route: str, created: int, finish: str,
               lifeline: dict[str, Any]) -> dict[str, Any]:
    message = {"role": "assistant", "content": result.content or "", "refusal": None}
    return {"id": f"chatcmpl-{result.request_id}", "object": "chat.completion", "created": created,
            "model": route, "choices": [{"index": 0, "message": message, "logprobs": None,
                                         "finish_reason": finish}],
            "usage": usage(result.usage), "system_fingerprint": None, "lifeline": lifeline}


def usage(u: Usage) -> dict[str, int]:
    return {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
            "total_tokens": u.input_tokens + u.output_tokens}


class StreamRenderer:
    """One answer as OpenAI's SSE chunks (`data: {...}` then `data: [DONE]`)."""

    content_type = "text/event-stream"

    def __init__(self, *, request_id: str, route: str, created: int, include_usage: bool) -> None:
        self.head = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk",
                     "created": created, "model": route, "system_fingerprint": None}
        self.include_usage = include_usage

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _data({**self.head, "choices": [choice], **extra})

    def opening(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def delta(self, text: str) -> bytes:
        return self._chunk({"content": text})

    def ending(self, finish: str | None, used: Usage, lifeline: dict[str, Any]) -> bytes:
        frames = self._chunk({}, finish_reason(finish), lifeline=lifeline)
        if self.include_usage:
            frames += _data({**self.head, "choices": [], "usage": usage(used), "lifeline": lifeline})
        return frames + b"data: [DONE]\n\n"

    def error(self, error: ApiError, lifeline: dict[str, Any]) -> bytes:
        # OpenAI's own mid-stream failure shape: the SDKs raise APIError on it. No [DONE] follows:
        # a cut answer must never look finished.
        return _data({**error.openai(), "lifeline": lifeline})


def _data(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
