"""OpenAI Chat Completions spoken directly over aiohttp.

Serves kind `openai` and `openai_compatible` (Together, Groq, vLLM, Ollama /v1, ...) and Azure
OpenAI, recognised by its host. Not the official SDK: it costs ~4-6 ms of CPU per call against
~0.3 ms here (FIELD-NOTES, "Provider HTTP clients"), and the router's whole budget is 2 ms.
Wire format: platform.openai.com/docs/api-reference/chat/create.
"""

from typing import Any
from urllib.parse import urlsplit

from services.providers._adapter import HttpAdapter
from services.providers._wire import json_object, usage_tokens
from services.providers.base import ChatAnswer, ChatCall, ProviderSpec
from services.providers.errors import classify_error_in_ok, malformed

# Latest GA data-plane version (learn.microsoft.com/azure/ai-services/openai/api-version-lifecycle).
# Put `?api-version=...` in base_url to choose another.
AZURE_API_VERSION = "2024-10-21"
_AZURE_HOST_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com")

# Content may be null when the model called tools or the answer was filtered (Azure documents
# finish_reason "content_filter" with null content).
_NULL_CONTENT_REASONS = frozenset({"tool_calls", "function_call", "content_filter"})
_FINISH = {"function_call": "tool_calls"}  # the deprecated name of the same thing


def openai_endpoint(spec: ProviderSpec) -> tuple[str, dict[str, str]]:
    """The URL and headers for every call, built once per provider."""
    base, _, query = spec.base_url.partition("?")
    base = base.rstrip("/")
    # data= bytes would otherwise be sent as application/octet-stream.
    headers = {"Content-Type": "application/json"}
    if (urlsplit(base).hostname or "").endswith(_AZURE_HOST_SUFFIXES):
        # Azure: base_url names the deployment (https://R.openai.azure.com/openai/deployments/D),
        # the key goes in `api-key`, the version in the query; the newer /openai/v1 needs none.
        if spec.api_key:
            headers["api-key"] = spec.api_key
        if not query and not base.endswith("/openai/v1"):
            query = f"api-version={AZURE_API_VERSION}"
    elif spec.api_key:  # local servers (vLLM, Ollama) often run without a key
        headers["Authorization"] = f"Bearer {spec.api_key}"
    url = f"{base}/chat/completions"
    return (f"{url}?{query}" if query else url), headers


def openai_body(call: ChatCall) -> dict[str, Any]:
    body: dict[str, Any] = {"model": call.model, "messages": call.messages}
    if call.max_tokens is not None:
        body["max_tokens"] = call.max_tokens
    if call.temperature is not None:
        body["temperature"] = call.temperature
    return body


def _content(message: dict[str, Any], finish: str | None, status: int) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if content is not None:
        raise malformed("choices[0].message.content is not a string", status=status)
    refusal = message.get("refusal")
    if isinstance(refusal, str):  # structured-output refusals carry their text here
        return refusal
    if message.get("tool_calls") or finish in _NULL_CONTENT_REASONS:
        return ""
    raise malformed("choices[0].message.content is null", status=status)


def parse_openai_answer(
    raw: bytes, *, requested_model: str, status: int = 200, secret: str | None = None
) -> ChatAnswer:
    """A 2xx body as a ChatAnswer, or ProviderError(MALFORMED_RESPONSE) saying what was wrong."""
    data = json_object(raw, status=status)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        if "error" in data:
            raise classify_error_in_ok(data["error"], status=status, secret=secret)
        raise malformed("no choices[] in the answer", status=status)
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise malformed("choices[0].message is missing", status=status)
    finish = choice.get("finish_reason")
    if finish is not None and not isinstance(finish, str):
        raise malformed("choices[0].finish_reason is not a string", status=status)
    content = _content(message, finish, status)
    input_tokens, output_tokens = usage_tokens(data, "prompt_tokens", "completion_tokens", status=status)
    model = data.get("model")
    return ChatAnswer(
        content=content,
        model=model if isinstance(model, str) and model else requested_model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        # A missing finish_reason is reported as such, never as "stop": a cut answer must not
        # pass for a finished one.
        finish_reason=_FINISH.get(finish, finish) if finish else "unknown",
        status_code=status,
    )


class OpenAIProvider(HttpAdapter):
    """The Provider port for OpenAI's wire format (services/providers/base.py); the models list
    is platform.openai.com/docs/api-reference/models/list."""

    def __init__(self, spec: ProviderSpec) -> None:
        url, headers = openai_endpoint(spec)
        super().__init__(spec, url=url, headers=headers,
                         models_url=url.replace("/chat/completions", "/models", 1))

    def body(self, call: ChatCall) -> dict[str, Any]:
        return openai_body(call)

    def parse(self, raw: bytes, *, requested_model: str, status: int) -> ChatAnswer:
        return parse_openai_answer(raw, requested_model=requested_model, status=status,
                                   secret=self.spec.api_key)
