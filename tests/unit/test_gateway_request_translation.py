"""What the gateway makes of OpenAI and Anthropic requests, its own options, and how it reports
errors and finish reasons. Pure."""

import pytest

from schemas.completion import ErrorKind, Message, ResultError
from services.gateway import anthropic_wire, openai_wire
from services.gateway.errors import ApiError, from_result
from services.gateway.inputs import ChatInput, Identity, completion_request, options

ROUTES = ("chat",)
ASK = {"model": "chat", "messages": [{"role": "user", "content": "Hi"}]}


def test_openai_roles_parts_and_harmless_parameters():
    chat = openai_wire.parse_chat({
        "model": "chat", "n": 1, "top_p": 0.9, "seed": 4, "tool_choice": "none", "tools": [],
        "response_format": {"type": "text"}, "logprobs": False, "stop": None, "user": "end-user-1",
        "max_completion_tokens": 50, "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "developer", "content": "Be brief."},
                     {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
                     {"role": "assistant", "content": None}]}, ROUTES)
    assert isinstance(chat, ChatInput)
    assert [(m.role, m.content) for m in chat.messages] == [
        ("system", "Be brief."), ("user", "Hi there"), ("assistant", "")]
    assert (chat.max_tokens, chat.stream, chat.include_usage, chat.user) == (50, True, True, "end-user-1")


@pytest.mark.parametrize(("extra", "param"), [
    ({"logprobs": True}, "logprobs"), ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"function_call": "auto"}, "function_call"), ({"stream_options": {}}, "stream_options"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0]"),
])
def test_openai_refuses_what_it_cannot_honour(extra, param):
    error = openai_wire.parse_chat({**ASK, **extra}, ROUTES)
    assert isinstance(error, ApiError) and error.status == 400 and error.param == param


def test_anthropic_system_blocks_and_metadata_user():
    chat = anthropic_wire.parse_messages({
        "model": "chat", "max_tokens": 20, "system": [{"type": "text", "text": "Be brief."}],
        "metadata": {"user_id": "u-9", "session_id": "s-1"}, "top_k": 5,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}, ROUTES)
    assert isinstance(chat, ChatInput)
    assert [(m.role, m.content) for m in chat.messages] == [("system", "Be brief."), ("user", "Hi")]
    assert chat.user == "u-9" and chat.metadata == {"session_id": "s-1"}


def test_lifeline_options_from_headers_win_over_metadata():
    got = options({"x-lifeline-allow-queue": "true", "x-lifeline-region": "eu"},
                  {"allow_queue": "false", "session_id": "s-1", "priority": "batch", "deadline_ms": "5000"})
    assert got == {"allow_queue": True, "region": "eu", "session_id": "s-1", "priority": "batch",
                   "deadline_ms": 5000}
    assert isinstance(options({}, {"deadline_ms": "-1"}), ApiError)
    assert isinstance(options({}, {"priority": "urgent"}), ApiError)


def test_the_keys_user_wins_over_the_callers_end_user():
    chat = ChatInput(route="chat", messages=[Message(role="user", content="Hi")], user="end-user")
    assert completion_request("r", chat, Identity("key_1", "alice", "t"), {}).user_id == "alice"
    assert completion_request("r", chat, Identity(), {}).user_id == "end-user"


@pytest.mark.parametrize(("kind", "status"), [
    (ErrorKind.NO_ROUTE, 404), (ErrorKind.CONTEXT_TOO_LONG, 400), (ErrorKind.BUDGET_EXHAUSTED, 429),
    (ErrorKind.LIMITED, 429), (ErrorKind.EXHAUSTED, 503), (ErrorKind.TIMEOUT, 504), (ErrorKind.AUTH, 502),
])
def test_router_errors_become_the_right_status(kind, status):
    error = from_result(ResultError(kind=kind, message="m", retry_after_s=2.4))
    assert error.status == status and error.headers() == {"Retry-After": "2"}


def test_an_unknown_finish_is_never_reported_as_a_normal_one():
    assert openai_wire.finish_reason("unknown") is None and openai_wire.finish_reason("stop") == "stop"
    assert anthropic_wire.stop_reason("unknown") is None
    assert anthropic_wire.stop_reason("stop") == "end_turn" and anthropic_wire.stop_reason("length") == "max_tokens"
