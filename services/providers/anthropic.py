"""Anthropic Messages API spoken directly over aiohttp.

Wire format: docs.anthropic.com/en/api/messages (request: model, max_tokens, messages, system,
temperature; answer: content[] blocks, stop_reason, usage.input_tokens/output_tokens).
"""

from typing import Any

from services.providers._adapter import HttpAdapter
from services.providers._wire import json_object, usage_tokens
from services.providers.base import ChatAnswer, ChatCall, ProviderSpec
from services.providers.errors import classify_error_in_ok, malformed

ANTHROPIC_VERSION = "2023-06-01"  # the current (and only stable) `anthropic-version`
DEFAULT_MAX_TOKENS = 1024  # Anthropic requires max_tokens; OpenAI-shaped calls may omit it
MAX_TEMPERATURE = 1.0  # Anthropic accepts 0..1 where OpenAI accepts 0..2

# stop_reason values: docs.anthropic.com/en/api/handling-stop-reasons. Others (pause_turn) pass
# through as the vendor's own.
_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",  # generation stopped at the window's end
    "refusal": "content_filter",
    "tool_use": "tool_calls",
}


def anthropic_headers(spec: ProviderSpec) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
    if spec.api_key:
        headers["x-api-key"] = spec.api_key
    return headers


def anthropic_messages(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """OpenAI-shaped turns as the Messages API takes them: only `user` and `assistant`, starting
    with `user`, alternating. A conversation carried over from another vendor (session history)
    can break each rule, so: a `tool` result becomes a user turn, consecutive turns of one role
    are joined (the API documents that it combines them; joining here keeps older API versions
    and stricter proxies happy), and a conversation that opens with the assistant gets a short
    user turn before it. Extra keys are dropped (the API rejects them)."""
    out: list[dict[str, str]] = []
    for m in messages:
        if m["role"] == "system":
            continue
        role = "assistant" if m["role"] == "assistant" else "user"
        if out and out[-1]["role"] == role:
            out[-1] = {"role": role, "content": f"{out[-1]['content']}\n\n{m['content']}"}
        else:
            out.append({"role": role, "content": m["content"]})
    if out and out[0]["role"] == "assistant":
        out.insert(0, {"role": "user", "content": "(continuing our conversation)"})
    return out


def anthropic_body(call: ChatCall) -> dict[str, Any]:
    """System messages, wherever they stand, are lifted into the top-level `system` string: the
    Messages API has no system role."""
    system = [m["content"] for m in call.messages if m["role"] == "system"]
    messages = anthropic_messages(call.messages)
    body: dict[str, Any] = {
        "model": call.model,
        "max_tokens": call.max_tokens if call.max_tokens is not None else DEFAULT_MAX_TOKENS,
        "messages": messages,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if call.temperature is not None:
        # Clamped rather than sent as-is: a chain that fails over from OpenAI with temperature
        # 1.5 should get an answer here, not a 400.
        body["temperature"] = min(call.temperature, MAX_TEMPERATURE)
    return body


def parse_anthropic_answer(
    raw: bytes, *, requested_model: str, status: int = 200, secret: str | None = None
) -> ChatAnswer:
    """A 2xx body as a ChatAnswer, or ProviderError(MALFORMED_RESPONSE) saying what was wrong."""
    data = json_object(raw, status=status)
    blocks = data.get("content")
    if not isinstance(blocks, list):
        if "error" in data:
            raise classify_error_in_ok(data["error"], status=status, secret=secret)
        raise malformed("no content[] in the answer", status=status)
    texts = []
    for block in blocks:
        if not isinstance(block, dict):
            raise malformed("content[] holds a non-object", status=status)
        if block.get("type") == "text":  # thinking and tool_use blocks are not the answer text
            text = block.get("text")
            if not isinstance(text, str):
                raise malformed("a text block in content[] has no text", status=status)
            texts.append(text)
    stop = data.get("stop_reason")
    if stop is not None and not isinstance(stop, str):
        raise malformed("stop_reason is not a string", status=status)
    # input_tokens excludes cache reads/writes; we send no cache_control, so those stay 0.
    input_tokens, output_tokens = usage_tokens(data, "input_tokens", "output_tokens", status=status)
    model = data.get("model")
    return ChatAnswer(
        content="".join(texts),
        model=model if isinstance(model, str) and model else requested_model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        finish_reason=_STOP_REASONS.get(stop, stop) if stop else "unknown",
        status_code=status,
    )


class AnthropicProvider(HttpAdapter):
    """The Provider port for Anthropic's Messages API (services/providers/base.py); the models
    list is docs.anthropic.com/en/api/models-list."""

    def __init__(self, spec: ProviderSpec) -> None:
        base = spec.base_url.rstrip("/")
        super().__init__(spec, url=f"{base}/v1/messages", models_url=f"{base}/v1/models",
                         headers=anthropic_headers(spec))

    def body(self, call: ChatCall) -> dict[str, Any]:
        return anthropic_body(call)

    def parse(self, raw: bytes, *, requested_model: str, status: int) -> ChatAnswer:
        return parse_anthropic_answer(raw, requested_model=requested_model, status=status,
                                      secret=self.spec.api_key)
