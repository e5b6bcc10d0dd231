"""Real vendor error answers map onto the right ErrorKind (pure: no I/O).

Bodies are the vendors' own, from their error docs and from bodies quoted in public issues
(sources next to each group); the kind decides the router's failover, so each one matters.
"""

import asyncio
import json
from datetime import datetime, timezone

import aiohttp
import pytest

from schemas.completion import ErrorKind
from services.providers.errors import (
    classify_error_in_ok,
    classify_http_error,
    classify_transport_error,
)

NOW = datetime(2025, 6, 20, 18, 0, 0, tzinfo=timezone.utc)

# OpenAI (platform.openai.com/docs/guides/error-codes; bodies as the API returns them).
OPENAI_CONTEXT = {
    "error": {
        "message": "This model's maximum context length is 128000 tokens. However, your messages "
        "resulted in 130532 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
OPENAI_BAD_KEY = {
    "error": {
        "message": "Incorrect API key provided: sk-proj-****************abcd. You can find your "
        "API key at https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}
OPENAI_TPM = {
    "error": {
        "message": "Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): "
        "Limit 30000, Used 29000, Requested 2000. Please try again in 2s.",
        "type": "tokens",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
OPENAI_QUOTA = {
    "error": {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}
OPENAI_500 = {
    "error": {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error",
        "param": None,
        "code": None,
    }
}
OPENAI_MODEL_404 = {
    "error": {
        "message": "The model `gpt-9` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }
}
OPENAI_TEMPERATURE = {
    "error": {
        "message": "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 200 instead.",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "decimal_above_max_value",
    }
}
OPENAI_SAFETY = {
    "error": {
        "code": "content_policy_violation",
        "message": "Your request was rejected as a result of our safety system. Your prompt may "
        "contain text that is not allowed by our safety system.",
        "param": None,
        "type": "invalid_request_error",
    }
}
OPENAI_INVALID_PROMPT = {
    "error": {
        "message": "Invalid prompt: your prompt was flagged as potentially violating our usage policy. "
        "Please try again with a different prompt.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_prompt",
    }
}

# Azure OpenAI (learn.microsoft.com/azure/ai-services/openai/concepts/content-filter).
AZURE_CONTENT_FILTER = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content "
        "management policy. Please modify your prompt and retry.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {
                "hate": {"filtered": False, "severity": "safe"},
                "jailbreak": {"filtered": False, "detected": False},
                "self_harm": {"filtered": False, "severity": "safe"},
                "sexual": {"filtered": False, "severity": "safe"},
                "violence": {"filtered": True, "severity": "medium"},
            },
        },
    }
}
AZURE_429 = {
    "error": {
        "code": "429",
        "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
        "2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. "
        "Please retry after 6 seconds.",
    }
}
AZURE_401 = {
    "error": {
        "code": "401",
        "message": "Access denied due to invalid subscription key or wrong API endpoint.",
    }
}
AZURE_DEPLOYMENT_404 = {
    "error": {
        "code": "DeploymentNotFound",
        "message": "The API deployment for this resource does not exist.",
    }
}

# Anthropic (docs.anthropic.com/en/api/errors; "prompt is too long" as matched by LiteLLM).
ANTHROPIC_TOO_LONG = {
    "type": "error",
    "error": {"type": "invalid_request_error", "message": "prompt is too long: 208310 tokens > 200000 maximum"},
    "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
}
ANTHROPIC_INPUT_PLUS_MAX = {
    "type": "error",
    "error": {
        "type": "invalid_request_error",
        "message": "input length and `max_tokens` exceed context limit: 197202 + 21333 > 200000, "
        "decrease input length or `max_tokens` and try again",
    },
}
ANTHROPIC_413 = {
    "type": "error",
    "error": {"type": "request_too_large", "message": "Request exceeds the maximum allowed number of bytes."},
}
ANTHROPIC_401 = {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
ANTHROPIC_403 = {
    "type": "error",
    "error": {"type": "permission_error", "message": "Your API key does not have permission to use the specified resource."},
}
ANTHROPIC_429 = {
    "type": "error",
    "error": {
        "type": "rate_limit_error",
        "message": "This request would exceed the rate limit for your organization of 50,000 input tokens per minute.",
    },
}
ANTHROPIC_529 = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
ANTHROPIC_500 = {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}
ANTHROPIC_404 = {"type": "error", "error": {"type": "not_found_error", "message": "model: claude-9"}}
ANTHROPIC_MAX_TOKENS = {
    "type": "error",
    "error": {
        "type": "invalid_request_error",
        "message": "max_tokens: 300000 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4",
    },
}
ANTHROPIC_POLICY = {
    "type": "error",
    "error": {"type": "invalid_request_error", "message": "Output blocked by content filtering policy"},
}
ANTHROPIC_CREDIT = {
    "type": "error",
    "error": {
        "type": "invalid_request_error",
        "message": "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
    },
}

# OpenAI-compatible servers.
VLLM_OLD_CONTEXT = {  # vLLM < 0.6: top-level error object
    "object": "error",
    "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
    "(4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.",
    "type": "BadRequestError",
    "param": None,
    "code": 400,
}
VLLM_V1_CONTEXT = {  # vllm/v1/engine/input_processor.py _validate_prompt_len
    "error": {
        "message": "The decoder prompt (length 9254) is longer than the maximum model length of 4096. "
        "Make sure that `max_model_len` is no smaller than the number of text tokens.",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
}
VLLM_MAX_TOKENS = {
    "error": {
        "message": "'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum context "
        "length is 4096 tokens and your request has 2778 input tokens (8000 > 4096 - 2778). None",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
}
OLLAMA_NATIVE_CONTEXT = {"error": "the input length exceeds the context length"}
OLLAMA_LLAMACPP_CONTEXT = {
    "error": json.dumps(
        {
            "error": {
                "code": 400,
                "message": "request (8889 tokens) exceeds the available context size (4096 tokens), try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": 8889,
                "n_ctx": 4096,
            }
        }
    )
}
OLLAMA_NO_MODEL = {
    "error": {"message": 'model "llama9" not found, try pulling it first', "type": "api_error", "param": None, "code": None}
}
GROQ_CONTEXT = {
    "error": {
        "message": "Please reduce the length of the messages or completion.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
TOGETHER_CONTEXT = {
    "error": {
        "message": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8193. "
        "Given: 8000 `inputs` tokens and 1000 `max_new_tokens`",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": None,
    }
}

CASES = [
    # (id, status, body, expected kind)
    ("openai context", 400, OPENAI_CONTEXT, ErrorKind.CONTEXT_TOO_LONG),
    ("openai bad key", 401, OPENAI_BAD_KEY, ErrorKind.AUTH),
    ("openai tpm", 429, OPENAI_TPM, ErrorKind.RATE_LIMITED),
    ("openai quota", 429, OPENAI_QUOTA, ErrorKind.RATE_LIMITED),
    ("openai 500", 500, OPENAI_500, ErrorKind.SERVER_ERROR),
    ("openai 503", 503, OPENAI_500, ErrorKind.SERVER_ERROR),
    ("openai model 404", 404, OPENAI_MODEL_404, ErrorKind.BAD_REQUEST),
    ("openai temperature", 400, OPENAI_TEMPERATURE, ErrorKind.BAD_REQUEST),
    ("openai safety", 400, OPENAI_SAFETY, ErrorKind.CONTENT_POLICY),
    ("openai invalid prompt", 400, OPENAI_INVALID_PROMPT, ErrorKind.CONTENT_POLICY),
    ("azure content filter", 400, AZURE_CONTENT_FILTER, ErrorKind.CONTENT_POLICY),
    ("azure 429", 429, AZURE_429, ErrorKind.RATE_LIMITED),
    ("azure 401", 401, AZURE_401, ErrorKind.AUTH),
    ("azure deployment 404", 404, AZURE_DEPLOYMENT_404, ErrorKind.BAD_REQUEST),
    ("anthropic too long", 400, ANTHROPIC_TOO_LONG, ErrorKind.CONTEXT_TOO_LONG),
    ("anthropic input+max", 400, ANTHROPIC_INPUT_PLUS_MAX, ErrorKind.CONTEXT_TOO_LONG),
    ("anthropic 413", 413, ANTHROPIC_413, ErrorKind.CONTEXT_TOO_LONG),
    ("anthropic 401", 401, ANTHROPIC_401, ErrorKind.AUTH),
    ("anthropic 403", 403, ANTHROPIC_403, ErrorKind.AUTH),
    ("anthropic 429", 429, ANTHROPIC_429, ErrorKind.RATE_LIMITED),
    ("anthropic 529", 529, ANTHROPIC_529, ErrorKind.SERVER_ERROR),
    ("anthropic 500", 500, ANTHROPIC_500, ErrorKind.SERVER_ERROR),
    ("anthropic 404", 404, ANTHROPIC_404, ErrorKind.BAD_REQUEST),
    ("anthropic max_tokens", 400, ANTHROPIC_MAX_TOKENS, ErrorKind.BAD_REQUEST),
    ("anthropic policy", 400, ANTHROPIC_POLICY, ErrorKind.CONTENT_POLICY),
    ("anthropic credit", 400, ANTHROPIC_CREDIT, ErrorKind.AUTH),
    ("vllm old context", 400, VLLM_OLD_CONTEXT, ErrorKind.CONTEXT_TOO_LONG),
    ("vllm v1 context", 400, VLLM_V1_CONTEXT, ErrorKind.CONTEXT_TOO_LONG),
    ("vllm max_tokens", 400, VLLM_MAX_TOKENS, ErrorKind.CONTEXT_TOO_LONG),
    ("ollama native context", 400, OLLAMA_NATIVE_CONTEXT, ErrorKind.CONTEXT_TOO_LONG),
    ("ollama llama.cpp context", 400, OLLAMA_LLAMACPP_CONTEXT, ErrorKind.CONTEXT_TOO_LONG),
    ("ollama no model", 404, OLLAMA_NO_MODEL, ErrorKind.BAD_REQUEST),
    ("groq context", 400, GROQ_CONTEXT, ErrorKind.CONTEXT_TOO_LONG),
    ("together context", 422, TOGETHER_CONTEXT, ErrorKind.CONTEXT_TOO_LONG),
    ("unprocessable", 422, {"detail": [{"loc": ["body", "messages"], "msg": "field required"}]}, ErrorKind.BAD_REQUEST),
]


@pytest.mark.parametrize(("status", "body", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_vendor_error_bodies_map_to_their_kind(status: int, body: dict, kind: ErrorKind) -> None:
    error = classify_http_error(status, {}, json.dumps(body).encode(), now=NOW)
    assert error.kind is kind
    assert error.status_code == status
    assert error.message.startswith(f"HTTP {status}")
    assert len(error.message) < 300


def test_message_keeps_the_vendors_words() -> None:
    error = classify_http_error(400, {}, json.dumps(ANTHROPIC_TOO_LONG).encode(), now=NOW)
    assert error.message == "HTTP 400 invalid_request_error: prompt is too long: 208310 tokens > 200000 maximum"


def test_a_proxys_html_page_is_a_server_error_with_its_first_words() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>" * 20
    error = classify_http_error(502, {}, page, now=NOW)
    assert error.kind is ErrorKind.SERVER_ERROR
    assert "502 Bad Gateway" in error.message
    assert len(error.message) < 300


def test_context_phrases_in_a_5xx_do_not_make_it_a_context_error() -> None:
    # A 5xx is the vendor failing, whatever the text says: retry elsewhere, not a bigger window.
    error = classify_http_error(500, {}, json.dumps(OPENAI_CONTEXT).encode(), now=NOW)
    assert error.kind is ErrorKind.SERVER_ERROR


@pytest.mark.parametrize(
    ("status", "kind"),
    [(408, ErrorKind.TIMEOUT), (409, ErrorKind.SERVER_ERROR), (402, ErrorKind.AUTH), (302, ErrorKind.SERVER_ERROR)],
)
def test_statuses_without_a_body(status: int, kind: ErrorKind) -> None:
    assert classify_http_error(status, {}, b"", now=NOW).kind is kind


def test_rate_limit_carries_retry_after() -> None:
    error = classify_http_error(429, {"Retry-After": "6"}, json.dumps(AZURE_429).encode(), now=NOW)
    assert error.retry_after == 6.0


def test_overloaded_529_honours_retry_after_but_not_rate_limit_resets() -> None:
    body = json.dumps(ANTHROPIC_529).encode()
    with_retry = classify_http_error(529, {"retry-after": "3"}, body, now=NOW)
    assert with_retry.retry_after == 3.0
    # Reset headers ride on every OpenAI answer; on a 5xx they say nothing about when to retry.
    resets_only = classify_http_error(500, {"x-ratelimit-reset-requests": "6m0s"}, body, now=NOW)
    assert resets_only.retry_after is None


def test_rate_limit_falls_back_to_vendor_reset_headers() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "4999",
        "x-ratelimit-reset-requests": "12ms",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    error = classify_http_error(429, headers, json.dumps(OPENAI_TPM).encode(), now=NOW)
    assert error.retry_after == 360.0


@pytest.mark.parametrize(
    ("error_obj", "kind"),
    [
        ({"code": 400, "message": "This model's maximum context length is 8192 tokens."}, ErrorKind.CONTEXT_TOO_LONG),
        ({"code": 429, "message": "Rate limit exceeded"}, ErrorKind.RATE_LIMITED),
        ({"type": "overloaded_error", "message": "Overloaded"}, ErrorKind.SERVER_ERROR),
        ({"type": "invalid_request_error", "message": "prompt is too long: 1 > 0"}, ErrorKind.CONTEXT_TOO_LONG),
        ("upstream failed", ErrorKind.SERVER_ERROR),
    ],
)
def test_an_error_object_inside_a_200_is_classified_not_treated_as_an_answer(error_obj, kind) -> None:
    error = classify_error_in_ok(error_obj, status=200)
    assert error.kind is kind
    assert error.status_code == 200
    assert error.message.startswith("error body in a 200")


def test_transport_failures() -> None:
    assert classify_transport_error(asyncio.TimeoutError(), timeout=2.5).kind is ErrorKind.TIMEOUT
    assert classify_transport_error(asyncio.TimeoutError(), timeout=2.5).message == "no answer within 2.5s"
    # ServerTimeoutError is also a ClientConnectionError: it must still read as a timeout.
    assert classify_transport_error(aiohttp.ServerTimeoutError("read"), timeout=1).kind is ErrorKind.TIMEOUT
    for exc in (
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientOSError(104, "Connection reset by peer"),
        aiohttp.ClientPayloadError("Response payload is not completed"),
    ):
        error = classify_transport_error(exc, timeout=1)
        assert error.kind is ErrorKind.CONNECTION
        assert error.message.startswith(type(exc).__name__)


def test_plain_text_and_detail_bodies_are_searched_too() -> None:
    text = b"Bad Request\n" + b"x" * 500 + b"\nerror: prompt is too long for this model"
    assert classify_http_error(400, {}, text, now=NOW).kind is ErrorKind.CONTEXT_TOO_LONG
    detail = json.dumps({"detail": "This model's maximum context length is 2048 tokens"}).encode()
    error = classify_http_error(400, {}, detail, now=NOW)
    assert error.kind is ErrorKind.CONTEXT_TOO_LONG
    assert error.message == "HTTP 400: This model's maximum context length is 2048 tokens"
