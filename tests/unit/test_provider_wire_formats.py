"""Requests are built and answers parsed in each vendor's wire format; broken answers say what broke."""

import json
from datetime import datetime, timezone

import pytest

from schemas.completion import ErrorKind
from services.providers import (
    AnthropicProvider,
    ChatCall,
    OpenAIProvider,
    ProviderError,
    ProviderSpec,
    make_provider,
)
from services.providers.anthropic import anthropic_body, anthropic_headers, parse_anthropic_answer
from services.providers.errors import classify_http_error
from services.providers.openai import AZURE_API_VERSION, openai_body, openai_endpoint, parse_openai_answer

NOW = datetime(2025, 1, 1, tzinfo=timezone.utc)
KEY = "sk-test-Zq81VERYSECRETvalue0042"


def spec(kind: str = "openai", base_url: str = "https://api.openai.com/v1", key: str | None = KEY) -> ProviderSpec:
    return ProviderSpec(name="p", kind=kind, base_url=base_url, api_key=key)  # type: ignore[arg-type]


def openai_answer(**overrides: object) -> bytes:
    answer = {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }
    answer.update(overrides)
    return json.dumps(answer).encode()


def anthropic_answer(**overrides: object) -> bytes:
    answer = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 4},
    }
    answer.update(overrides)
    return json.dumps(answer).encode()


# ---- requests ----


def test_openai_endpoint_and_headers() -> None:
    url, headers = openai_endpoint(spec(base_url="https://api.openai.com/v1/"))
    assert url == "https://api.openai.com/v1/chat/completions"
    assert headers == {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}


def test_openai_compatible_without_a_key_sends_no_authorization() -> None:
    url, headers = openai_endpoint(spec("openai_compatible", "http://localhost:11434/v1", key=None))
    assert url == "http://localhost:11434/v1/chat/completions"
    assert "Authorization" not in headers


def test_azure_uses_api_key_header_and_api_version() -> None:
    url, headers = openai_endpoint(spec(base_url="https://res.openai.azure.com/openai/deployments/gpt4o"))
    assert url == f"https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version={AZURE_API_VERSION}"
    assert headers["api-key"] == KEY
    assert "Authorization" not in headers
    pinned, _ = openai_endpoint(spec(base_url="https://res.openai.azure.com/openai/deployments/d?api-version=2025-01-01"))
    assert pinned.endswith("/openai/deployments/d/chat/completions?api-version=2025-01-01")
    v1, _ = openai_endpoint(spec(base_url="https://res.openai.azure.com/openai/v1"))
    assert v1 == "https://res.openai.azure.com/openai/v1/chat/completions"


def test_openai_body_sends_only_what_the_call_sets() -> None:
    messages = [{"role": "user", "content": "hi"}]
    assert openai_body(ChatCall(model="m", messages=messages)) == {"model": "m", "messages": messages}
    full = openai_body(ChatCall(model="m", messages=messages, max_tokens=5, temperature=0.0))
    assert full["max_tokens"] == 5 and full["temperature"] == 0.0


def test_anthropic_body_lifts_system_and_defaults_max_tokens() -> None:
    call = ChatCall(
        model="claude",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "Answer in French."},
            {"role": "assistant", "content": "Salut"},
        ],
        temperature=1.7,
    )
    body = anthropic_body(call)
    assert body["system"] == "Be brief.\n\nAnswer in French."
    assert body["messages"] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Salut"}]
    assert body["max_tokens"] == 1024
    assert body["temperature"] == 1.0  # Anthropic's range is 0..1
    plain = anthropic_body(ChatCall(model="c", messages=[{"role": "user", "content": "x"}], max_tokens=7))
    assert "system" not in plain and "temperature" not in plain and plain["max_tokens"] == 7


def test_anthropic_headers() -> None:
    headers = anthropic_headers(spec("anthropic", "https://api.anthropic.com"))
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2023-06-01"


# ---- answers ----


def test_openai_answer() -> None:
    answer = parse_openai_answer(openai_answer(), requested_model="gpt-4o")
    assert (answer.content, answer.model, answer.input_tokens, answer.output_tokens, answer.finish_reason) == (
        "Hi!",
        "gpt-4o-2024-08-06",
        9,
        3,
        "stop",
    )


@pytest.mark.parametrize(
    ("choice", "content", "finish"),
    [
        ({"message": {"role": "assistant", "content": None}, "finish_reason": "content_filter"}, "", "content_filter"),
        ({"message": {"content": None, "tool_calls": [{"id": "t"}]}, "finish_reason": "tool_calls"}, "", "tool_calls"),
        ({"message": {"content": None, "function_call": {}}, "finish_reason": "function_call"}, "", "tool_calls"),
        ({"message": {"content": None, "refusal": "I can't help with that."}, "finish_reason": "stop"}, "I can't help with that.", "stop"),
        ({"message": {"content": "cut"}, "finish_reason": "length"}, "cut", "length"),
        ({"message": {"content": "ok"}, "finish_reason": None}, "ok", "unknown"),
    ],
)
def test_openai_answers_that_are_not_plain_text(choice: dict, content: str, finish: str) -> None:
    # A 200 with finish_reason content_filter is an answer that says so, not an error.
    answer = parse_openai_answer(openai_answer(choices=[choice]), requested_model="m")
    assert (answer.content, answer.finish_reason) == (content, finish)


def test_openai_answer_without_usage_or_model() -> None:
    raw = json.dumps({"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}]}).encode()
    answer = parse_openai_answer(raw, requested_model="llama3")
    assert (answer.model, answer.input_tokens, answer.output_tokens) == ("llama3", 0, 0)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"<html>oops</html>", "not JSON"),
        (b"", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "JSON list"),
        (openai_answer(choices=[]), "no choices"),
        (json.dumps({"id": "x"}).encode(), "no choices"),
        (openai_answer(choices="nope"), "no choices"),
        (openai_answer(choices=[{"finish_reason": "stop"}]), "message is missing"),
        (openai_answer(choices=["x"]), "message is missing"),
        (openai_answer(choices=[{"message": {"content": None}, "finish_reason": "stop"}]), "content is null"),
        (openai_answer(choices=[{"message": {"content": 42}, "finish_reason": "stop"}]), "not a string"),
        (openai_answer(choices=[{"message": {"content": "x"}, "finish_reason": 1}]), "finish_reason"),
        (openai_answer(usage="many"), "usage is not an object"),
        (openai_answer(usage={"prompt_tokens": "9", "completion_tokens": 3}), "not integers"),
    ],
)
def test_broken_openai_answers_are_malformed(raw: bytes, says: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_openai_answer(raw, requested_model="m")
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE
    assert says in caught.value.message
    assert caught.value.status_code == 200


def test_error_object_in_a_200_is_classified() -> None:
    raw = json.dumps({"error": {"message": "This model's maximum context length is 8192 tokens", "code": 400}}).encode()
    with pytest.raises(ProviderError) as caught:
        parse_openai_answer(raw, requested_model="m")
    assert caught.value.kind is ErrorKind.CONTEXT_TOO_LONG


def test_anthropic_answer_joins_text_blocks_only() -> None:
    blocks = [
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        {"type": "text", "text": "Hello"},
        {"type": "tool_use", "id": "t", "name": "f", "input": {}},
        {"type": "text", "text": " there"},
    ]
    answer = parse_anthropic_answer(anthropic_answer(content=blocks), requested_model="c")
    assert (answer.content, answer.model, answer.input_tokens, answer.output_tokens, answer.finish_reason) == (
        "Hello there",
        "claude-sonnet-4-20250514",
        12,
        4,
        "stop",
    )


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("tool_use", "tool_calls"),
        ("model_context_window_exceeded", "length"),
        ("pause_turn", "pause_turn"),
        (None, "unknown"),
    ],
)
def test_anthropic_stop_reasons_are_normalised(stop: str | None, finish: str) -> None:
    answer = parse_anthropic_answer(anthropic_answer(stop_reason=stop), requested_model="c")
    assert answer.finish_reason == finish


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"garbage", "not JSON"),
        (b'"text"', "JSON str"),
        (anthropic_answer(content=None), "no content"),
        (anthropic_answer(content="Hello"), "no content"),
        (anthropic_answer(content=["Hello"]), "non-object"),
        (anthropic_answer(content=[{"type": "text"}]), "no text"),
        (anthropic_answer(content=[{"type": "text", "text": 5}]), "no text"),
        (anthropic_answer(stop_reason=3), "stop_reason"),
        (anthropic_answer(usage={"input_tokens": 1.5, "output_tokens": 2}), "not integers"),
    ],
)
def test_broken_anthropic_answers_are_malformed(raw: bytes, says: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_anthropic_answer(raw, requested_model="c")
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE
    assert says in caught.value.message


# ---- factory and secrets ----


@pytest.mark.parametrize(
    ("kind", "adapter"),
    [("openai", OpenAIProvider), ("openai_compatible", OpenAIProvider), ("anthropic", AnthropicProvider)],
)
def test_make_provider_dispatches_on_kind(kind: str, adapter: type) -> None:
    provider = make_provider(spec(kind))
    assert isinstance(provider, adapter)  # the streaming subclass of the adapter (issue 10)
    assert callable(provider.stream)
    assert provider.spec.kind == kind


def test_make_provider_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown kind 'gemini'"):
        make_provider(spec("gemini"))


def test_the_key_never_shows_in_spec_provider_or_error_text() -> None:
    s = spec()
    assert KEY not in repr(s) and KEY not in str(s)
    for provider in (OpenAIProvider(s), AnthropicProvider(spec("anthropic", "https://api.anthropic.com"))):
        assert KEY not in repr(provider) and KEY not in str(provider)
    # A vendor that echoes the key (or a Bearer header) back in its message.
    echoed = json.dumps(
        {"error": {"message": f"Incorrect API key provided: {KEY}. Header was Bearer {KEY}", "code": "invalid_api_key"}}
    ).encode()
    error = classify_http_error(401, {}, echoed, now=NOW, secret=KEY)
    assert error.kind is ErrorKind.AUTH
    assert KEY not in str(error) and KEY not in error.message and KEY not in repr(error)
    assert "VERYSECRET" not in str(error)
    # Even without the exact key, anything key-shaped is scrubbed.
    unknown = classify_http_error(401, {}, echoed, now=NOW)
    assert "VERYSECRET" not in str(unknown)
