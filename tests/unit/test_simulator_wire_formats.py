"""The wire formats render the vendors' real request checks, error bodies and stream sequences."""

import json

import pytest

from services.simulator import anthropic_format, openai_format
from services.simulator.logic import Answer, ChatRequest
from services.simulator.wire import Failure

MESSAGES = [{"role": "user", "content": "hi"}]
ANSWER = Answer(content="one two three four five", input_tokens=4, output_tokens=5, truncated=False)


def _events(frames: list[bytes]) -> list[tuple[str, dict]]:
    out = []
    for frame in frames:
        event_line, data_line = frame.decode().strip().split("\n")
        out.append((event_line.removeprefix("event: "), json.loads(data_line.removeprefix("data: "))))
    return out


@pytest.mark.parametrize(
    ("body", "message", "param", "code"),
    [
        (None, "We could not parse the JSON body", None, None),
        ({"messages": MESSAGES}, "you must provide a model parameter", None, None),
        ({"model": "m"}, "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"),
        ({"model": "m", "messages": []}, "Invalid 'messages': empty array", "messages", "empty_array"),
        ({"model": "m", "messages": "hi"}, "Invalid type for 'messages'", "messages", "invalid_type"),
        ({"model": "m", "messages": MESSAGES, "max_tokens": 0}, "Invalid 'max_tokens'", "max_tokens", "invalid_value"),
        ({"model": "m", "messages": MESSAGES, "stream_options": {"include_usage": True}},
         "only allowed when 'stream' is enabled", "stream_options", None),
    ],
)
def test_openai_rejects_bad_bodies_with_its_error_shape(
    body: object, message: str, param: str | None, code: str | None
) -> None:
    failure = openai_format.parse(body)
    assert isinstance(failure, Failure) and failure.status == 400
    error = failure.body["error"]
    assert set(failure.body) == {"error"} and set(error) == {"message", "type", "param", "code"}
    assert message in error["message"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


def test_openai_parse_prefers_max_completion_tokens_and_reads_include_usage() -> None:
    parsed = openai_format.parse({"model": "m", "messages": MESSAGES, "max_tokens": 50, "max_completion_tokens": 7,
                                  "stream": True, "stream_options": {"include_usage": True}})
    assert parsed == ChatRequest(model="m", messages=MESSAGES, max_tokens=7, stream=True, include_usage=True)


def test_openai_needs_a_bearer_key() -> None:
    assert openai_format.check_headers({"Authorization": "Bearer sk-anything"}) is None
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "sk-no-bearer"}):
        failure = openai_format.check_headers(headers)
        assert failure is not None and failure.status == 401
        assert failure.body["error"]["type"] == "invalid_request_error"
        assert "You didn't provide an API key" in failure.body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not an object", "There was an error parsing the body"),
        ({"messages": MESSAGES, "max_tokens": 5}, "model: Field required"),
        ({"model": "m", "max_tokens": 5}, "messages: Field required"),
        ({"model": "m", "messages": MESSAGES}, "max_tokens: Field required"),
        ({"model": "m", "messages": [], "max_tokens": 5}, "messages: at least one message is required"),
        ({"model": "m", "messages": [{"role": "system", "content": "x"}], "max_tokens": 5}, 'Unexpected role "system"'),
        ({"model": "m", "messages": MESSAGES, "max_tokens": 0}, "max_tokens: Input should be"),
    ],
)
def test_anthropic_rejects_bad_bodies_with_its_error_shape(body: object, message: str) -> None:
    failure = anthropic_format.parse(body)
    assert isinstance(failure, Failure) and failure.status == 400
    assert failure.body["type"] == "error"
    assert failure.body["error"]["type"] == "invalid_request_error"
    assert message in failure.body["error"]["message"]
    assert failure.body["request_id"] == failure.headers["request-id"]


def test_anthropic_needs_a_key_and_a_version() -> None:
    missing_key = anthropic_format.check_headers({"anthropic-version": "2023-06-01"})
    assert missing_key is not None and missing_key.status == 401
    assert missing_key.body["error"] == {"type": "authentication_error", "message": "x-api-key header is required"}
    missing_version = anthropic_format.check_headers({"x-api-key": "k"})
    assert missing_version is not None and missing_version.status == 400
    assert missing_version.body["error"]["message"] == "anthropic-version: header is required"
    assert anthropic_format.check_headers({"x-api-key": "k", "anthropic-version": "2023-06-01"}) is None
    assert anthropic_format.check_headers({"Authorization": "Bearer k", "anthropic-version": "2023-06-01"}) is None


def test_context_too_long_messages_match_the_vendors() -> None:
    oa = openai_format.context_too_long(130_000, 128_000)
    assert oa.status == 400 and oa.body["error"]["code"] == "context_length_exceeded"
    assert "maximum context length is 128000 tokens" in oa.body["error"]["message"]
    an = anthropic_format.context_too_long(210_000, 200_000)
    assert an.status == 400
    assert an.body["error"] == {
        "type": "invalid_request_error",
        "message": "prompt is too long: 210000 tokens > 200000 maximum",
    }


def test_rate_limits_carry_retry_after_and_the_vendors_headers() -> None:
    oa = openai_format.rate_limited("gpt-4o", 7)
    assert oa.status == 429 and oa.headers["Retry-After"] == "7"
    assert oa.headers["x-ratelimit-remaining-requests"] == "0" and oa.headers["x-ratelimit-reset-requests"] == "7s"
    assert oa.body["error"]["code"] == "rate_limit_exceeded"
    an = anthropic_format.rate_limited("claude", 7)
    assert an.status == 429 and an.headers["retry-after"] == "7"
    assert an.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert an.body["error"]["type"] == "rate_limit_error"


def test_down_is_503_in_both_formats() -> None:
    assert openai_format.unavailable().status == anthropic_format.unavailable().status == 503
    assert openai_format.unavailable().body["error"]["type"] == "server_error"
    assert anthropic_format.unavailable().body["error"]["type"] == "api_error"


def test_anthropic_stream_follows_the_real_event_sequence() -> None:
    request = ChatRequest(model="claude", messages=MESSAGES, max_tokens=100, stream=True)
    frames, first_content = anthropic_format.stream_frames(request, ANSWER, 0)
    events = _events(frames)
    names = [name for name, _ in events]
    assert names == ["message_start", "content_block_start", "ping"] + ["content_block_delta"] * 5 + [
        "content_block_stop", "message_delta", "message_stop"]
    assert all(name == data["type"] for name, data in events)
    assert first_content == 3
    assert "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta") == ANSWER.content
    assert events[0][1]["message"]["usage"]["input_tokens"] == 4
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert events[-2][1]["usage"]["output_tokens"] == 5


def test_openai_stream_ends_with_usage_then_done() -> None:
    request = ChatRequest(model="gpt", messages=MESSAGES, stream=True, include_usage=True)
    frames, first_content = openai_format.stream_frames(request, ANSWER, 123)
    assert first_content == 1 and frames[-1] == b"data: [DONE]\n\n"
    chunks = [json.loads(f.decode().removeprefix("data: ")) for f in frames[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["created"] == 123 for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]) == ANSWER.content
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and chunks[-2]["usage"] is None
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 9
    assert len({c["id"] for c in chunks}) == 1


def test_openai_stream_without_include_usage_has_no_usage_field() -> None:
    request = ChatRequest(model="gpt", messages=MESSAGES, stream=True)
    frames, _ = openai_format.stream_frames(request, ANSWER, 0)
    chunks = [json.loads(f.decode().removeprefix("data: ")) for f in frames[:-1]]
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)


def test_garbage_is_json_without_the_formats_fields() -> None:
    for fmt, required in ((openai_format, "choices"), (anthropic_format, "content")):
        content_type, body = fmt.garbage(False)
        assert content_type == "application/json"
        assert required not in json.loads(body)
