"""Anthropic's Messages wire format, as api.anthropic.com speaks it.

Shapes follow https://docs.claude.com/en/api/messages, the streaming event sequence of
https://docs.claude.com/en/docs/build-with-claude/streaming and the error bodies of
https://docs.claude.com/en/api/errors (`{"type": "error", "error": {...}, "request_id"}`).
"""

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from services.simulator.logic import Answer, ChatRequest, stream_pieces, text_of
from services.simulator.wire import Failure

CHAT_PATH = "/v1/messages"
REQUEST_ID_HEADER = "request-id"
DEFAULT_MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-6")
_MODELS_CREATED_AT = "2025-10-01T00:00:00Z"
_ROLES = ("user", "assistant")


def new_request_id() -> str:
    return f"req_{uuid4().hex[:24]}"


def _error(status: int, type: str, message: str, headers: Mapping[str, str] | None = None) -> Failure:
    request_id = new_request_id()  # the real API repeats the request-id header in the body
    body = {"type": "error", "error": {"type": type, "message": message}, "request_id": request_id}
    return Failure(status, body, {REQUEST_ID_HEADER: request_id, **(headers or {})})


def _invalid(message: str) -> Failure:
    return _error(400, "invalid_request_error", message)


def check_headers(headers: Mapping[str, str]) -> Failure | None:
    # Keys travel as x-api-key, or (as anthropic SDK 2.x sends them) as Authorization: Bearer.
    bearer = headers.get("Authorization", "")
    if not headers.get("x-api-key", "").strip() and not (bearer.startswith("Bearer ") and bearer[7:].strip()):
        return _error(401, "authentication_error", "x-api-key header is required")
    # The real API refuses a request without a version; an adapter that forgets it must fail here too.
    if not headers.get("anthropic-version"):
        return _invalid("anthropic-version: header is required")
    return None


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def parse(body: Any) -> ChatRequest | Failure:
    if not isinstance(body, dict):
        return _invalid("There was an error parsing the body of your request: it is not a JSON object.")
    for name in ("model", "messages", "max_tokens"):
        if name not in body:
            return _invalid(f"{name}: Field required")
    model, messages, max_tokens = body["model"], body["messages"], body["max_tokens"]
    if not isinstance(model, str) or not model:
        return _invalid("model: Input should be a valid string")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return _invalid("messages: Input should be a valid list")
    if not messages:
        return _invalid("messages: at least one message is required")
    for m in messages:
        if m.get("role") not in _ROLES:
            # Catches adapters that forget to lift "system" out of the messages, as the real API does.
            return _invalid(
                f"messages: Unexpected role \"{m.get('role')}\". The Messages API accepts a top-level "
                "`system` parameter, not \"system\" as an input message role."
            )
    last = messages[-1]
    if last.get("role") == "assistant" and text_of(last.get("content")) != text_of(last.get("content")).rstrip():
        # The real API refuses a prefill that ends in whitespace: an adapter resuming a stream
        # from a partial answer must strip it.
        return _invalid("messages: final assistant content cannot end with trailing whitespace")
    if not _positive_int(max_tokens):
        return _invalid("max_tokens: Input should be a valid integer greater than or equal to 1")
    return ChatRequest(model=model, messages=messages, max_tokens=max_tokens,
                       stream=body.get("stream") is True, system=body.get("system"))


def not_found(method: str, path: str) -> Failure:
    return _error(404, "not_found_error", f"Not found: {method} {path}")


def unavailable() -> Failure:
    # Our design says 503 for `down` (not the real 529 overloaded_error), with the api_error body.
    return _error(503, "api_error", "Service unavailable: the API is temporarily down.")


def rate_limited(model: str | None, retry_after_s: int) -> Failure:
    # Header names from https://docs.claude.com/en/api/rate-limits#response-headers (resets are RFC 3339).
    reset = (datetime.now(UTC) + timedelta(seconds=retry_after_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        "retry-after": str(retry_after_s),
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": reset,
        "anthropic-ratelimit-tokens-limit": "40000",
        "anthropic-ratelimit-tokens-remaining": "0",
        "anthropic-ratelimit-tokens-reset": reset,
    }
    message = (
        f"This request would exceed the rate limit for your organization of 50 requests per minute"
        f"{' for ' + model if model else ''}. For details, refer to: https://docs.claude.com/en/api/rate-limits."
    )
    return _error(429, "rate_limit_error", message, headers)


def server_error() -> Failure:
    return _error(500, "api_error", "Internal server error")


def context_too_long(tokens: int, window: int) -> Failure:
    return _invalid(f"prompt is too long: {tokens} tokens > {window} maximum")


def garbage(stream: bool) -> tuple[str, bytes]:
    """Valid JSON that is not a message (no id, no content): a malformed answer."""
    payload = json.dumps({"unexpected": True, "simulated": "garbage"})
    if stream:
        return "text/event-stream", f"event: message_start\ndata: {payload}\n\n".encode()
    return "application/json", payload.encode()


def error_in_ok() -> dict[str, Any]:
    """What mode stream_error answers a non-streamed request with: an error body inside a 200."""
    return _error(529, "overloaded_error", "Overloaded").body


def stream_error_frames() -> list[bytes]:
    """The error event Anthropic sends inside a 200 stream (then the stream ends)."""
    return [_event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})]


def malformed_frame() -> bytes:
    """An event cut off inside its JSON."""
    return b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_d\n\n'


def _usage(answer: Answer, output_tokens: int) -> dict[str, Any]:
    return {"input_tokens": answer.input_tokens, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0, "output_tokens": output_tokens}


def _stop_reason(answer: Answer) -> str:
    return "max_tokens" if answer.truncated else "end_turn"


def _message(request: ChatRequest, content: list[dict[str, Any]], stop_reason: str | None,
             usage: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"msg_01{uuid4().hex[:22]}", "type": "message", "role": "assistant", "model": request.model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": None, "usage": usage}


def completion(request: ChatRequest, answer: Answer, created: int) -> dict[str, Any]:
    content = [{"type": "text", "text": answer.content}]
    return _message(request, content, _stop_reason(answer), _usage(answer, answer.output_tokens))


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def stream_frames(request: ChatRequest, answer: Answer, created: int) -> tuple[list[bytes], int]:
    """SSE events of a streamed message, and the index of the first content event.

    message_start, content_block_start, ping, content_block_delta per word, content_block_stop,
    message_delta (stop_reason and cumulative usage), message_stop.
    """
    start = _message(request, [], None, _usage(answer, 1))  # the real start reports 1 output token
    frames = [
        _event("message_start", {"type": "message_start", "message": start}),
        _event("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}}),
        _event("ping", {"type": "ping"}),
    ]
    frames += [
        _event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": piece}})
        for piece in stream_pieces(answer.content)
    ]
    frames += [
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event("message_delta", {"type": "message_delta",
                                 "delta": {"stop_reason": _stop_reason(answer), "stop_sequence": None},
                                 "usage": _usage(answer, answer.output_tokens)}),
        _event("message_stop", {"type": "message_stop"}),
    ]
    return frames, 3


def models() -> dict[str, Any]:
    data = [{"type": "model", "id": m, "display_name": m, "created_at": _MODELS_CREATED_AT} for m in DEFAULT_MODELS]
    return {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
