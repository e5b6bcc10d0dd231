"""Vendor failures mapped onto one taxonomy (schemas.completion.ErrorKind). Pure, no I/O.

The router decides from the kind alone: retry elsewhere (timeout, connection, server_error,
rate_limited), fall back to a larger context window (context_too_long), or stop (auth for this
provider, bad_request, content_policy). So a wrong kind is a wrong failover decision.

Error body shapes recognised (`_vendor_error`):
- OpenAI, Azure, Groq, Together, Ollama /v1, newer vLLM: {"error": {"message", "type", "code", ...}}
  (platform.openai.com/docs/guides/error-codes); Azure adds error.innererror.code.
- Anthropic: {"type": "error", "error": {"type", "message"}} (docs.anthropic.com/en/api/errors).
- Older vLLM: {"object": "error", "message", "type", "code"}.
- Ollama native, TGI, llama.cpp behind Ollama: {"error": "text"}.
- Anything else (an HTML page from a proxy): the first bytes of the text.
"""

import asyncio
import json
import re
from collections.abc import Mapping
from datetime import datetime

import aiohttp

from schemas.completion import ErrorKind
from services.providers.base import ProviderError
from services.providers.retry_after import parse_retry_after, rate_limit_reset

_MESSAGE_CHARS = 200  # enough to recognise the cause in a log line, short enough for an event
_SEARCHED_BYTES = 2000  # of a body that is not a known JSON shape, searched for the phrases below

# Phrases (lower case) that mean "the prompt does not fit this model's window". Matched on 4xx only.
# Sources: LiteLLM litellm/litellm_core_utils/exception_mapping_utils.py
# (ExceptionCheckers.is_error_str_context_window_exceeded, and its anthropic, together_ai,
# sagemaker/TGI, bedrock, replicate and azure branches); OpenAI's error code
# `context_length_exceeded`; vLLM vllm/v1/engine/input_processor.py `_validate_prompt_len`;
# Ollama / llama.cpp server 400 bodies ("exceed_context_size_error").
CONTEXT_PHRASES = (
    "context_length_exceeded",  # OpenAI, Azure and Groq error.code
    "maximum context length",  # OpenAI, Azure; vLLM "This model's maximum context length is N"
    "reduce the length of the messages",  # OpenAI, Groq
    "exceed context limit",  # Anthropic "input length and `max_tokens` exceed context limit"
    "prompt is too long",  # Anthropic "prompt is too long: 208310 tokens > 200000 maximum"
    "model's maximum context limit",  # LiteLLM's OpenAI-like providers
    "is longer than the model's context length",  # LiteLLM ExceptionCheckers
    "is longer than the maximum model length",  # vLLM v1 "The decoder prompt (length N) is ..."
    "maximum prompt length",  # xAI "This model's maximum prompt length is N"
    "exceeds the available context size",  # llama.cpp server / Ollama truncate=false
    "exceed_context_size_error",  # llama.cpp server error.type
    "exceeds the context length",  # Ollama "the input length exceeds the context length"
    "is longer than the context length",  # Ollama shift=false
    "`inputs` tokens + `max_new_tokens` must be <=",  # TGI, Together (LiteLLM together_ai)
    "expected a string with maximum length",  # OpenAI string_above_max_length (LiteLLM)
    "input is too long",  # Bedrock, Replicate (LiteLLM)
)

# Phrases (lower case) that mean "refused by the vendor's safety system". Matched on 4xx only.
# Sources: LiteLLM exception_mapping_utils.py (openai and azure branches: content_policy_violation,
# "violating our usage policy", "safety system", Azure's content management policy and
# content_filter_policy; anthropic branch: "content filtering policy"); Azure OpenAI content
# filtering docs (learn.microsoft.com/azure/ai-services/openai/concepts/content-filter): HTTP 400,
# error.code "content_filter", error.innererror.code "ResponsibleAIPolicyViolation".
CONTENT_POLICY_PHRASES = (
    "content_policy_violation",
    "content_filter",  # Azure error.code (also content_filter_policy)
    "responsibleaipolicyviolation",  # Azure error.innererror.code
    "content management policy",  # Azure "...triggering Azure OpenAI's content management policy"
    "content filtering policy",  # Anthropic "Output blocked by content filtering policy"
    "violating our usage policy",  # OpenAI "Invalid prompt: ... flagged as potentially violating"
    "safety system",  # OpenAI "Your request was rejected as a result of our safety system"
)

# Phrases (lower case) of a 400 that is about the account, not the request: every request to this
# provider fails the same way until someone pays, so the router treats it as auth. Source: Anthropic
# errors doc (400 invalid_request_error when a spend limit or credit balance is reached).
ACCOUNT_PHRASES = (
    "credit balance is too low",  # Anthropic
    "reached your specified api usage limits",  # Anthropic workspace/organisation spend limit
)

# Statuses whose meaning does not depend on the body.
_BY_STATUS = {
    401: ErrorKind.AUTH,
    402: ErrorKind.AUTH,  # Anthropic billing_error: this account cannot serve until someone pays
    403: ErrorKind.AUTH,
    408: ErrorKind.TIMEOUT,  # the vendor gave up waiting; the SDKs retry it like a timeout
    409: ErrorKind.SERVER_ERROR,  # Anthropic conflict_error, "retry": transient, vendor-side
    413: ErrorKind.CONTEXT_TOO_LONG,  # Anthropic request_too_large (from Cloudflare, > 32 MB)
    429: ErrorKind.RATE_LIMITED,
}

# Bearer tokens and OpenAI/Anthropic-style keys that a vendor may echo back in a message.
_KEY_LIKE = re.compile(r"(?i)bearer\s+\S+|\bsk-[A-Za-z0-9_\-*.]{4,}")


def _mentions(haystack: str, phrases: tuple[str, ...]) -> bool:
    return any(phrase in haystack for phrase in phrases)


def _redact(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "[redacted]")
    return _KEY_LIKE.sub("[redacted]", text)


def _vendor_error(body: bytes) -> tuple[str, str, str]:
    """(label, message, lower-cased text to search) from any known error shape."""
    try:
        data = json.loads(body)
    except ValueError:  # not JSON (or not UTF-8): a proxy's page or a plain-text error
        text = body[:_SEARCHED_BYTES].decode("utf-8", "replace").strip()
        return "", text, text.lower()
    error = (data.get("error") or data) if isinstance(data, dict) else data
    if not isinstance(error, dict):
        text = error if isinstance(error, str) else json.dumps(error)[:_SEARCHED_BYTES]
        return "", text, text.lower()
    inner = error.get("innererror")
    codes = [error.get("type"), error.get("code"), inner.get("code") if isinstance(inner, dict) else None]
    label = "/".join(str(code) for code in codes if code not in (None, ""))
    # "detail": FastAPI-style servers (some OpenAI-compatible proxies) put the reason there.
    message = error.get("message") or error.get("detail")
    message = message if isinstance(message, str) else ""
    return label, message, f"{label} {message}".lower()


def _kind_for(status: int, haystack: str) -> ErrorKind:
    kind = _BY_STATUS.get(status)
    if kind is not None:
        return kind
    if 400 <= status < 500:
        if _mentions(haystack, CONTEXT_PHRASES):
            return ErrorKind.CONTEXT_TOO_LONG
        if _mentions(haystack, CONTENT_POLICY_PHRASES):
            return ErrorKind.CONTENT_POLICY
        if _mentions(haystack, ACCOUNT_PHRASES):
            return ErrorKind.AUTH
        return ErrorKind.BAD_REQUEST  # 400, 404 (unknown model/deployment), 422 and the rest
    # 5xx including Anthropic's 529 overloaded_error; also 1xx/3xx, which mean a proxy or a wrong
    # base_url answered instead of the vendor: try elsewhere.
    return ErrorKind.SERVER_ERROR


def _describe(status: int, body: bytes, secret: str | None) -> tuple[ErrorKind, str]:
    label, message, haystack = _vendor_error(body)
    head = f"HTTP {status} {label}".rstrip()
    text = f"{head}: {message[:_MESSAGE_CHARS]}" if message else head
    return _kind_for(status, haystack), _redact(text, secret)


def classify_http_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
    secret: str | None = None,
) -> ProviderError:
    """The ProviderError for a non-2xx answer. `secret` (the API key) is scrubbed from the message."""
    kind, text = _describe(status, body, secret)
    retry_after = parse_retry_after(headers, now=now)
    if retry_after is None and kind is ErrorKind.RATE_LIMITED:
        retry_after = rate_limit_reset(headers, now=now)
    return ProviderError(kind, text, status_code=status, retry_after=retry_after)


def classify_error_in_ok(error: object, *, status: int, secret: str | None = None) -> ProviderError:
    """Some OpenAI-compatible gateways answer 200 with {"error": ...} instead of an answer."""
    code = error.get("code") if isinstance(error, dict) else None
    body = json.dumps({"error": error}).encode()
    if isinstance(code, int) and 400 <= code <= 599:  # OpenRouter-style: the real status inside
        kind, text = _describe(code, body, secret)
    else:
        # Read it as a 4xx so a context or policy error still finds its fallback; anything
        # else is the vendor failing.
        kind, text = _describe(400, body, secret)
        kind = ErrorKind.SERVER_ERROR if kind is ErrorKind.BAD_REQUEST else kind
        text = text.removeprefix("HTTP 400").lstrip(" :") or "no message"
    return ProviderError(kind, f"error body in a {status}: {text}", status_code=status)


def malformed(what: str, *, status: int = 200) -> ProviderError:
    """A 2xx whose body is not an answer in the vendor's wire format; `what` says what was wrong."""
    return ProviderError(ErrorKind.MALFORMED_RESPONSE, what, status_code=status)


def classify_transport_error(
    exc: asyncio.TimeoutError | aiohttp.ClientError, *, timeout: float
) -> ProviderError:
    """No HTTP answer: the call ran out of time, or the connection failed or was cut."""
    # Timeouts first: aiohttp's ServerTimeoutError is both a TimeoutError and a ClientConnectionError.
    if isinstance(exc, asyncio.TimeoutError):
        return ProviderError(ErrorKind.TIMEOUT, f"no answer within {timeout:g}s")
    # Refused, reset, disconnected, TLS or DNS failure, or a body cut short (ClientPayloadError).
    detail = _redact(str(exc), None)[:_MESSAGE_CHARS]
    return ProviderError(ErrorKind.CONNECTION, f"{type(exc).__name__}: {detail}".rstrip(": "))
