"""OpenAI's chat-completions wire format, as api.openai.com speaks it.

Shapes follow https://platform.openai.com/docs/api-reference/chat and the error bodies the API
really returns (`{"error": {"message", "type", "param", "code"}}`).
"""

import json
from collections.abc import Mapping
from typing import Any
from uuid import uuid4

from services.simulator.logic import Answer, ChatRequest, stream_pieces
from services.simulator.wire import Failure

CHAT_PATH = "/v1/chat/completions"
REQUEST_ID_HEADER = "x-request-id"
DEFAULT_MODELS = ("gpt-5.4-mini", "gpt-5.4", "gpt-4o-mini")
_MODELS_CREATED = 1_715_367_049  # a fixed date: the list is the same on every call
_NOT_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
    "valid JSON.)"
)


def new_request_id() -> str:
    return f"req_{uuid4().hex}"


def _error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Failure:
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return Failure(status, body, headers or {})


def check_headers(headers: Mapping[str, str]) -> Failure | None:
    auth = headers.get("Authorization", "")
    if auth.startswith("Bearer ") and auth[7:].strip():
        return None
    return _error(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header "
        "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    )


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def parse(body: Any) -> ChatRequest | Failure:
    if not isinstance(body, dict):
        return _error(400, _NOT_JSON)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _error(400, "you must provide a model parameter")
    messages = body.get("messages")
    if messages is None:
        return _error(400, "Missing required parameter: 'messages'.", param="messages",
                      code="missing_required_parameter")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return _error(400, "Invalid type for 'messages': expected an array of objects.", param="messages",
                      code="invalid_type")
    if not messages:
        return _error(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                      "but got an empty array instead.", param="messages", code="empty_array")
    # max_completion_tokens replaced max_tokens; the API still accepts both.
    param = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    max_tokens = body.get(param)
    if max_tokens is not None and not _positive_int(max_tokens):
        return _error(400, f"Invalid '{param}': expected an integer >= 1, but got {max_tokens!r} instead.",
                      param=param, code="invalid_value")
    stream = body.get("stream") is True
    options = body.get("stream_options")
    if options is not None and not stream:
        return _error(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                      param="stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return ChatRequest(model=model, messages=messages, max_tokens=max_tokens, stream=stream,
                       include_usage=include_usage)


def not_found(method: str, path: str) -> Failure:
    return _error(404, f"Invalid URL ({method} {path})")


def unavailable() -> Failure:
    return _error(503, "The server is overloaded or not ready yet.", type="server_error")


def rate_limited(model: str | None, retry_after_s: int) -> Failure:
    # Header names from https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers
    reset = f"{retry_after_s}s"
    headers = {
        "Retry-After": str(retry_after_s),
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": reset,
        "x-ratelimit-limit-tokens": "200000",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": reset,
    }
    message = (
        f"Rate limit reached for {model or 'this model'} in organization org-simulated on requests per min "
        f"(RPM): Limit 500, Used 500, Requested 1. Please try again in {retry_after_s}s."
    )
    return _error(429, message, type="requests", code="rate_limit_exceeded", headers=headers)


def server_error() -> Failure:
    return _error(500, "The server had an error while processing your request. Sorry about that!",
                  type="server_error")


def context_too_long(tokens: int, window: int) -> Failure:
    return _error(
        400,
        f"This model's maximum context length is {window} tokens. However, your messages resulted in "
        f"{tokens} tokens. Please reduce the length of the messages.",
        param="messages",
        code="context_length_exceeded",
    )


def garbage(stream: bool) -> tuple[str, bytes]:
    """Valid JSON that is not a chat completion (no id, no choices): a malformed answer."""
    payload = json.dumps({"unexpected": True, "simulated": "garbage"})
    if stream:
        return "text/event-stream", f"data: {payload}\n\ndata: [DONE]\n\n".encode()
    return "application/json", payload.encode()


def error_in_ok() -> dict[str, Any]:
    """What mode stream_error answers a non-streamed request with: an error body inside a 200."""
    return _error(500, "The server had an error while processing your request. Sorry about that!",
                  type="server_error").body


def stream_error_frames() -> list[bytes]:
    """OpenAI's own mid-stream failure, followed by a [DONE] that a naive client takes for success."""
    return [b"data: " + json.dumps(error_in_ok()).encode() + b"\n\n", b"data: [DONE]\n\n"]


def malformed_frame() -> bytes:
    """A chunk cut off inside its JSON."""
    return b'data: {"id": "chatcmpl-broken", "object": "chat.completion.chunk", "choices": [{"delta": {"content": "tr\n\n'


def _usage(answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
        },
    }


def _finish_reason(answer: Answer) -> str:
    return "length" if answer.truncated else "stop"


def completion(request: ChatRequest, answer: Answer, created: int) -> dict[str, Any]:
    message = {"role": "assistant", "content": answer.content, "refusal": None, "annotations": []}
    return {
        "id": f"chatcmpl-{uuid4().hex}",
        "object": "chat.completion",
        "created": created,
        "model": request.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(answer)}],
        "usage": _usage(answer),
        "service_tier": "default",
        "system_fingerprint": "fp_simulator",
    }


def stream_frames(request: ChatRequest, answer: Answer, created: int) -> tuple[list[bytes], int]:
    """SSE frames of a streamed completion, and the index of the first content frame.

    A role chunk, one chunk per word, a finish chunk, a usage chunk (choices: []) when
    stream_options.include_usage asked for it, then `data: [DONE]`.
    """
    head = {"id": f"chatcmpl-{uuid4().hex}", "object": "chat.completion.chunk", "created": created,
            "model": request.model, "service_tier": "default", "system_fingerprint": "fp_simulator"}
    if request.include_usage:
        head["usage"] = None  # every chunk carries usage: null until the last one

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return b"data: " + json.dumps({**head, "choices": [choice]}).encode() + b"\n\n"

    frames = [chunk({"role": "assistant", "content": "", "refusal": None})]
    frames += [chunk({"content": piece}) for piece in stream_pieces(answer.content)]
    frames.append(chunk({}, _finish_reason(answer)))
    if request.include_usage:
        frames.append(b"data: " + json.dumps({**head, "choices": [], "usage": _usage(answer)}).encode() + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return frames, 1


def models() -> dict[str, Any]:
    data = [{"id": m, "object": "model", "created": _MODELS_CREATED, "owned_by": "system"} for m in DEFAULT_MODELS]
    return {"object": "list", "data": data}
