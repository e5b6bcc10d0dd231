"""SSE decoding and both vendors' stream parsers: text out as it comes, an end only after the
end marker, and every broken chunk named."""

import pytest

from schemas.completion import ErrorKind
from services.providers.anthropic_stream import AnthropicChunkParser
from services.providers.base import ProviderError
from services.providers.openai_stream import OpenAIChunkParser
from services.providers.sse import ServerSentEvent, SseDecoder
from services.providers.streaming import StreamEnd, TextDelta


def decode(raw: bytes) -> list[ServerSentEvent]:
    decoder = SseDecoder()
    return [e for line in raw.splitlines(keepends=True) if (e := decoder.feed(line))]


def test_sse_events_comments_multiline_data_and_crlf():
    raw = (b": keep-alive\n\ndata: {\"a\": 1}\n\nevent: ping\r\ndata: {}\r\n\r\n"
           b"data: line one\ndata: line two\n\nevent: empty\n\n")
    assert decode(raw) == [ServerSentEvent(None, '{"a": 1}'), ServerSentEvent("ping", "{}"),
                           ServerSentEvent(None, "line one\nline two")]


def test_sse_pending_says_an_event_was_cut_mid_way():
    decoder = SseDecoder()
    decoder.feed(b"data: {\"half\n")
    assert decoder.pending


def openai(*frames: str) -> tuple[list, OpenAIChunkParser]:
    parser = OpenAIChunkParser(requested_model="m")
    out = []
    for f in frames:
        out += parser.feed(ServerSentEvent(None, f))
    return out, parser


def test_openai_text_then_end_with_usage():
    out, parser = openai(
        '{"model":"gpt-x","choices":[{"delta":{"role":"assistant","content":""}}]}',
        '{"choices":[{"delta":{"content":"Hel"}}]}', '{"choices":[{"delta":{"content":"lo"}}]}',
        '{"choices":[{"delta":{},"finish_reason":"length"}]}',
        '{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}', "[DONE]")
    assert out == [TextDelta("Hel"), TextDelta("lo"), StreamEnd("length", "gpt-x", 7, 2)]
    assert parser.done


def test_openai_done_without_a_finish_reason_is_never_stop():
    out, _ = openai('{"choices":[{"delta":{"content":"Hi"}}]}', "[DONE]")
    assert out[-1].finish_reason == "unknown"


@pytest.mark.parametrize(("frame", "kind", "says"), [
    ("{not json", ErrorKind.MALFORMED_RESPONSE, "not JSON"),
    ('["list"]', ErrorKind.MALFORMED_RESPONSE, "JSON list"),
    ('{"id": "x"}', ErrorKind.MALFORMED_RESPONSE, "no choices"),
    ('{"choices": [{"delta": "text"}]}', ErrorKind.MALFORMED_RESPONSE, "delta is missing"),
    ('{"choices": [{"delta": {"content": 5}}]}', ErrorKind.MALFORMED_RESPONSE, "not a string"),
    ('{"error": {"message": "boom", "type": "server_error"}}', ErrorKind.SERVER_ERROR, "boom"),
    ('{"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}',
     ErrorKind.RATE_LIMITED, "slow down"),
    ('{"error": {"message": "This model\'s maximum context length is 8 tokens"}}',
     ErrorKind.CONTEXT_TOO_LONG, "context length"),
])
def test_openai_broken_chunks_are_named(frame, kind, says):
    with pytest.raises(ProviderError) as caught:
        openai('{"choices":[{"delta":{"content":"Hi"}}]}', frame)
    assert caught.value.kind is kind and says in caught.value.message


def anthropic(*events: tuple[str, str]) -> tuple[list, AnthropicChunkParser]:
    parser = AnthropicChunkParser(requested_model="m")
    out = []
    for name, data in events:
        out += parser.feed(ServerSentEvent(name, data))
    return out, parser


START = ("message_start", '{"type":"message_start","message":{"model":"claude-x","usage":{"input_tokens":11,"output_tokens":1}}}')


def test_anthropic_text_then_end_with_usage_and_unknown_events_ignored():
    out, parser = anthropic(
        START, ("content_block_start", '{"type":"content_block_start","index":0}'),
        ("ping", '{"type":"ping"}'),
        ("content_block_delta", '{"delta":{"type":"text_delta","text":"Hi"}}'),
        ("content_block_delta", '{"delta":{"type":"thinking_delta","thinking":"hm"}}'),
        ("brand_new_event", '{"type":"brand_new_event"}'),
        ("message_delta", '{"delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":4}}'),
        ("message_stop", '{"type":"message_stop"}'))
    assert out == [TextDelta("Hi"), StreamEnd("stop", "claude-x", 11, 4)]
    assert parser.done


@pytest.mark.parametrize(("events", "kind", "says"), [
    ([("content_block_delta", '{"delta":{"type":"text_delta","text":"x"}}')],
     ErrorKind.MALFORMED_RESPONSE, "not message_start"),
    ([START, ("content_block_delta", '{"delta":{"type":"text_d')], ErrorKind.MALFORMED_RESPONSE, "not JSON"),
    ([START, ("content_block_delta", '{"delta":{"type":"text_delta"}}')], ErrorKind.MALFORMED_RESPONSE, "without text"),
    ([START, ("error", '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')],
     ErrorKind.SERVER_ERROR, "Overloaded"),
    ([START, ("error", '{"type":"error","error":{"type":"rate_limit_error","message":"later"}}')],
     ErrorKind.RATE_LIMITED, "later"),
])
def test_anthropic_broken_events_are_named(events, kind, says):
    with pytest.raises(ProviderError) as caught:
        anthropic(*events)
    assert caught.value.kind is kind and says in caught.value.message
