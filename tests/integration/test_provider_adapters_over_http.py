"""Both adapters against a local HTTP server that answers with the vendors' exact bodies.

Real things used: aiohttp client and server on 127.0.0.1, a free port per test.
"""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web

from schemas.completion import ErrorKind
from services.providers import ChatCall, Provider, ProviderError, ProviderSpec, make_provider

KEY = "sk-ant-test-7d1cSECRETkey9988"
CALL = ChatCall(
    model="the-model",
    messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello?"}],
    temperature=0.2,
)


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeVendor:
    """Answers every request with the scripted reply and records what it was sent."""

    url: str = ""
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.headers = headers or {}

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.seen.append(Seen(request.path, dict(request.query), dict(request.headers), json.loads(raw)))
        headers = {"Content-Type": "application/json", **self.headers}
        return web.Response(status=self.status, body=self.body, headers=headers)


@pytest.fixture
async def vendor() -> AsyncIterator[FakeVendor]:
    fake = FakeVendor()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield fake
    await runner.cleanup()


@pytest.fixture
async def openai(vendor: FakeVendor) -> AsyncIterator[Provider]:
    spec = ProviderSpec(name="openai", kind="openai", base_url=f"{vendor.url}/v1", api_key=KEY)
    provider = make_provider(spec)
    yield provider
    await provider.aclose()


@pytest.fixture
async def anthropic(vendor: FakeVendor) -> AsyncIterator[Provider]:
    spec = ProviderSpec(name="anthropic", kind="anthropic", base_url=vendor.url, api_key=KEY)
    provider = make_provider(spec)
    yield provider
    await provider.aclose()


OPENAI_OK = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    "object": "chat.completion",
    "created": 1741570283,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi. How can I help?", "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 19,
        "completion_tokens": 7,
        "total_tokens": 26,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_fc9f1d7035",
}
ANTHROPIC_OK = {
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-20250514",
    "content": [{"type": "text", "text": "Hi! What can I do for you?"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 14,
        "output_tokens": 11,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    },
}


async def test_openai_success_sends_the_wire_format_and_parses_the_answer(
    vendor: FakeVendor, openai: Provider
) -> None:
    vendor.reply(200, OPENAI_OK)
    answer = await openai.complete(CALL, timeout=5)
    assert answer.content == "Hi. How can I help?"
    assert (answer.model, answer.finish_reason) == ("gpt-4o-2024-08-06", "stop")
    assert (answer.input_tokens, answer.output_tokens, answer.status_code) == (19, 7, 200)
    [seen] = vendor.seen
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.body == {"model": "the-model", "messages": CALL.messages, "temperature": 0.2}


async def test_openai_content_filter_finish_is_an_answer_not_an_error(vendor: FakeVendor, openai: Provider) -> None:
    choice = {"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": "content_filter"}
    filtered = {**OPENAI_OK, "choices": [choice]}
    vendor.reply(200, filtered)
    answer = await openai.complete(CALL, timeout=5)
    assert (answer.content, answer.finish_reason) == ("", "content_filter")


async def test_anthropic_success_lifts_system_and_sends_its_headers(vendor: FakeVendor, anthropic: Provider) -> None:
    vendor.reply(200, ANTHROPIC_OK)
    answer = await anthropic.complete(CALL, timeout=5)
    assert (answer.content, answer.model, answer.finish_reason) == (
        "Hi! What can I do for you?",
        "claude-sonnet-4-20250514",
        "stop",
    )
    assert (answer.input_tokens, answer.output_tokens) == (14, 11)
    [seen] = vendor.seen
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in seen.headers
    assert seen.body == {
        "model": "the-model",
        "max_tokens": 1024,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello?"}],
        "temperature": 0.2,
    }


def _in(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def oai(message: str, type_: str | None, code: str | None, **extra: Any) -> dict[str, Any]:
    """An OpenAI-format error body (platform.openai.com/docs/guides/error-codes)."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code, **extra}}


def ant(type_: str, message: str) -> dict[str, Any]:
    """An Anthropic-format error body (docs.anthropic.com/en/api/errors)."""
    return {"type": "error", "error": {"type": type_, "message": message}, "request_id": "req_011CSH"}


OPENAI_ERRORS = [
    # (id, status, body, headers, kind, retry_after)
    (
        "context",
        400,
        oai(
            "This model's maximum context length is 128000 tokens. However, your messages resulted "
            "in 130532 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            "context_length_exceeded",
        ),
        {},
        ErrorKind.CONTEXT_TOO_LONG,
        None,
    ),
    (
        "auth",
        401,
        oai("Incorrect API key provided: sk-ant-t**********9988.", "invalid_request_error", "invalid_api_key"),
        {},
        ErrorKind.AUTH,
        None,
    ),
    (
        "rate limited, Retry-After",
        429,
        oai("Rate limit reached for gpt-4o on requests per min (RPM): Limit 500.", "requests", "rate_limit_exceeded"),
        {"Retry-After": "7", "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"},
        ErrorKind.RATE_LIMITED,
        7.0,
    ),
    (
        "rate limited, reset header only",
        429,
        oai("Rate limit reached for gpt-4o on tokens per min (TPM).", "tokens", "rate_limit_exceeded"),
        {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1.5s", "x-ratelimit-reset-requests": "20ms"},
        ErrorKind.RATE_LIMITED,
        1.5,
    ),
    (
        "server error",
        500,
        oai("The server had an error while processing your request. Sorry about that!", "server_error", None),
        {},
        ErrorKind.SERVER_ERROR,
        None,
    ),
    ("unavailable", 503, b"upstream connect error or disconnect/reset before headers", {}, ErrorKind.SERVER_ERROR, None),
    (
        "bad request",
        404,
        oai("The model `the-model` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"),
        {},
        ErrorKind.BAD_REQUEST,
        None,
    ),
    (
        "azure content filter",
        400,
        oai(
            "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
            None,
            "content_filter",
            status=400,
            innererror={
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {"violence": {"filtered": True, "severity": "medium"}},
            },
        ),
        {},
        ErrorKind.CONTENT_POLICY,
        None,
    ),
    (
        "vllm context",
        400,
        {
            "object": "error",
            "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
        {},
        ErrorKind.CONTEXT_TOO_LONG,
        None,
    ),
    ("ollama context", 400, {"error": "the input length exceeds the context length"}, {}, ErrorKind.CONTEXT_TOO_LONG, None),
]

ANTHROPIC_ERRORS = [
    (
        "prompt too long",
        400,
        ant("invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum"),
        {},
        ErrorKind.CONTEXT_TOO_LONG,
        None,
    ),
    (
        "request too large",
        413,
        ant("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        {},
        ErrorKind.CONTEXT_TOO_LONG,
        None,
    ),
    ("auth", 401, ant("authentication_error", "invalid x-api-key"), {}, ErrorKind.AUTH, None),
    (
        "permission",
        403,
        ant("permission_error", "Your API key does not have permission to use the specified resource."),
        {},
        ErrorKind.AUTH,
        None,
    ),
    (
        "rate limited, retry-after",
        429,
        ant("rate_limit_error", "This request would exceed the rate limit for your organization."),
        {"retry-after": "12"},
        ErrorKind.RATE_LIMITED,
        12.0,
    ),
    ("overloaded", 529, ant("overloaded_error", "Overloaded"), {}, ErrorKind.SERVER_ERROR, None),
    ("api error", 500, ant("api_error", "Internal server error"), {}, ErrorKind.SERVER_ERROR, None),
    (
        "bad request",
        400,
        ant("invalid_request_error", 'messages: roles must alternate between "user" and "assistant"'),
        {},
        ErrorKind.BAD_REQUEST,
        None,
    ),
    (
        "content policy",
        400,
        ant("invalid_request_error", "Output blocked by content filtering policy"),
        {},
        ErrorKind.CONTENT_POLICY,
        None,
    ),
]
ERROR_ARGS = ("status", "body", "headers", "kind", "retry_after")


async def _expect_error(provider: Provider) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.complete(CALL, timeout=5)
    return caught.value


@pytest.mark.parametrize(ERROR_ARGS, [c[1:] for c in OPENAI_ERRORS], ids=[c[0] for c in OPENAI_ERRORS])
async def test_openai_errors(
    vendor: FakeVendor, openai: Provider, status, body, headers, kind, retry_after
) -> None:
    vendor.reply(status, body, headers)
    error = await _expect_error(openai)
    assert (error.kind, error.status_code, error.retry_after) == (kind, status, retry_after)
    assert KEY not in str(error) and "9988" not in str(error)


@pytest.mark.parametrize(ERROR_ARGS, [c[1:] for c in ANTHROPIC_ERRORS], ids=[c[0] for c in ANTHROPIC_ERRORS])
async def test_anthropic_errors(
    vendor: FakeVendor, anthropic: Provider, status, body, headers, kind, retry_after
) -> None:
    vendor.reply(status, body, headers)
    error = await _expect_error(anthropic)
    assert (error.kind, error.status_code, error.retry_after) == (kind, status, retry_after)
    assert KEY not in str(error)


async def test_anthropic_rate_limit_reset_headers_give_retry_after(vendor: FakeVendor, anthropic: Provider) -> None:
    vendor.reply(
        429,
        ant("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
        {
            "anthropic-ratelimit-requests-remaining": "40",
            "anthropic-ratelimit-requests-reset": _in(5),
            "anthropic-ratelimit-input-tokens-remaining": "0",
            "anthropic-ratelimit-input-tokens-reset": _in(30),
        },
    )
    error = await _expect_error(anthropic)
    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.retry_after is not None and 28 < error.retry_after <= 30


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"<html><body>Welcome to nginx!</body></html>", "not JSON"),
        ({"id": "chatcmpl-x", "object": "chat.completion", "choices": []}, "no choices"),
        ({"choices": [{"index": 0, "finish_reason": "stop"}]}, "message is missing"),
        ({"choices": [{"message": {"content": ["a", "b"]}, "finish_reason": "stop"}]}, "not a string"),
    ],
)
async def test_openai_garbage_200_is_malformed(vendor: FakeVendor, openai: Provider, body, says: str) -> None:
    vendor.reply(200, body)
    error = await _expect_error(openai)
    assert error.kind is ErrorKind.MALFORMED_RESPONSE
    assert says in error.message


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"\x00\x01garbage", "not JSON"),
        ({"id": "msg_x", "type": "message", "content": "Hi"}, "no content"),
        ({"type": "message", "content": [{"type": "text", "text": None}], "stop_reason": "end_turn"}, "no text"),
        ({"type": "message", "content": [], "usage": {"input_tokens": "ten"}}, "not integers"),
    ],
)
async def test_anthropic_garbage_200_is_malformed(vendor: FakeVendor, anthropic: Provider, body, says: str) -> None:
    vendor.reply(200, body)
    error = await _expect_error(anthropic)
    assert error.kind is ErrorKind.MALFORMED_RESPONSE
    assert says in error.message


async def test_a_provider_answers_again_after_an_error(vendor: FakeVendor, openai: Provider) -> None:
    vendor.reply(503, b"busy")
    await _expect_error(openai)
    vendor.reply(200, OPENAI_OK)
    assert (await openai.complete(CALL, timeout=5)).content == "Hi. How can I help?"
