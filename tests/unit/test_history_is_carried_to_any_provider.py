"""Session history (router/history.py): earlier turns put in front, one system prompt; and the
Anthropic adapter's translation of a carried-over conversation."""

from datetime import UTC, datetime

from schemas.completion import Message
from schemas.events import Turn
from services.providers.anthropic import anthropic_body
from services.providers.base import ChatCall
from services.router.history import conversation, flatten


def turn(messages: list[dict[str, str]], content: str | None) -> Turn:
    return Turn(request_id="r", at=datetime.now(UTC), route="chat", messages=messages, content=content)


TURNS = [
    turn([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi, I am Ana."}],
         "Hello Ana."),
    turn([{"role": "user", "content": "My order is 42."}], None),  # unanswered (an error)
    turn([{"role": "user", "content": "Where is it?"}], "On its way."),
]


def msgs(*pairs: tuple[str, str]) -> list[Message]:
    return [Message(role=r, content=c) for r, c in pairs]  # type: ignore[arg-type]


def test_turns_flatten_to_what_was_asked_then_what_was_answered():
    assert [(m.role, m.content) for m in flatten(TURNS)] == [
        ("system", "Be brief."), ("user", "Hi, I am Ana."), ("assistant", "Hello Ana."),
        ("user", "My order is 42."), ("user", "Where is it?"), ("assistant", "On its way.")]


def test_earlier_turns_go_first_with_the_sessions_system_prompt_leading():
    out = conversation(flatten(TURNS), msgs(("user", "And my name?")))
    assert [(m.role, m.content) for m in out] == [
        ("system", "Be brief."), ("user", "Hi, I am Ana."), ("assistant", "Hello Ana."),
        ("user", "My order is 42."), ("user", "Where is it?"), ("assistant", "On its way."),
        ("user", "And my name?")]


def test_the_requests_own_system_prompt_replaces_the_sessions():
    out = conversation(flatten(TURNS), msgs(("system", "Be formal."), ("user", "And my name?")))
    assert [m.content for m in out if m.role == "system"] == ["Be formal."]
    assert out[0].content == "Be formal." and out[-1].content == "And my name?"


def test_a_request_that_carries_its_own_history_is_left_alone():
    own = msgs(("user", "Hi"), ("assistant", "Hello"), ("user", "And my name?"))
    assert conversation(flatten(TURNS), own) == own
    assert conversation([], msgs(("user", "x"))) == msgs(("user", "x"))


def test_anthropic_gets_the_system_prompt_apart_and_strictly_alternating_turns():
    out = conversation(flatten(TURNS), msgs(("user", "And my name?")))
    body = anthropic_body(ChatCall(model="m", messages=[m.model_dump() for m in out]))
    assert body["system"] == "Be brief."
    assert body["messages"] == [
        {"role": "user", "content": "Hi, I am Ana."},
        {"role": "assistant", "content": "Hello Ana."},
        {"role": "user", "content": "My order is 42.\n\nWhere is it?"},  # joined, not two in a row
        {"role": "assistant", "content": "On its way."},
        {"role": "user", "content": "And my name?"},
    ]


def test_anthropic_gets_a_user_turn_first_and_tool_results_as_user_turns():
    body = anthropic_body(ChatCall(model="m", messages=[
        {"role": "assistant", "content": "How can I help?"}, {"role": "tool", "content": "42"},
        {"role": "user", "content": "Thanks"}, {"role": "system", "content": "Late system"}]))
    assert body["system"] == "Late system"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][2]["content"] == "42\n\nThanks"
