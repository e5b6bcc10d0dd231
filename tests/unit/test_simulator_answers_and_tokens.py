"""The simulator's answers are deterministic, short, and billed with honest token counts."""

import pytest

from services.simulator.logic import (
    ECHO_MAX_TOKENS,
    ChatRequest,
    answer,
    count_prompt_tokens,
    count_tokens,
    reply_text,
    stream_pieces,
)

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("   \n\t ", 0),
        ("hello", 1),
        ("Hello, world!", 4),  # Hello / , / world / !
        ("don't", 3),  # don / ' / t
        ("gpt-4o-mini", 5),  # gpt / - / 4o / - / mini
        ("café déjà vu", 3),  # \w is Unicode-aware
        ("a  b\n\nc", 3),
    ],
)
def test_tokenizer_counts_words_and_punctuation(text: str, tokens: int) -> None:
    assert count_tokens(text) == tokens


def test_prompt_tokens_add_three_per_message_and_count_system_and_parts() -> None:
    messages = [
        {"role": "user", "content": "Hello, world!"},  # 4
        {"role": "assistant", "content": None},  # 0: content may be null (tool calls)
        {"role": "user", "content": [{"type": "text", "text": "two words"}, {"type": "image"}]},  # 2
    ]
    assert count_prompt_tokens(messages) == 4 + 0 + 2 + 3 * 3
    assert count_prompt_tokens(messages, system="Be brief.") == 4 + 0 + 2 + 3 * 3 + 3 + 3
    assert count_prompt_tokens(messages, system=[{"type": "text", "text": "Be brief."}]) == 21


def test_same_vendor_model_and_messages_give_the_same_answer() -> None:
    request = ChatRequest(model="gpt-4o-mini", messages=QUESTION)
    first, second = answer("openai", request), answer("openai", request)
    assert first == second
    assert first.content == "[openai/gpt-4o-mini] You asked: What is the capital of France. This is a simulated answer."
    assert first.input_tokens == count_tokens(QUESTION[0]["content"]) + 3
    assert first.output_tokens == count_tokens(first.content)
    assert not first.truncated


def test_answer_names_vendor_and_model_and_quotes_the_last_user_message() -> None:
    messages = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": "second\n  question"},
        {"role": "assistant", "content": "not a user message"},
    ]
    expected = "[local/llama] You asked: second question. This is a simulated answer."
    assert reply_text("local", "llama", messages) == expected
    assert reply_text("openai", "llama", messages) != reply_text("local", "llama", messages)
    assert reply_text("local", "other", messages) != reply_text("local", "llama", messages)


def test_a_long_question_is_quoted_only_in_part() -> None:
    long_question = " ".join(f"w{i}" for i in range(1000))
    text = reply_text("openai", "m", [{"role": "user", "content": long_question}])
    assert f"w{ECHO_MAX_TOKENS - 1}..." in text
    assert f"w{ECHO_MAX_TOKENS} " not in text
    assert count_tokens(text) < 60


@pytest.mark.parametrize("max_tokens", [1, 5, 12])
def test_max_tokens_truncates_the_answer_to_exactly_that_many_tokens(max_tokens: int) -> None:
    full = answer("openai", ChatRequest(model="m", messages=QUESTION))
    cut = answer("openai", ChatRequest(model="m", messages=QUESTION, max_tokens=max_tokens))
    assert cut.truncated
    assert cut.output_tokens == max_tokens == count_tokens(cut.content)
    assert full.content.startswith(cut.content)
    assert cut.input_tokens == full.input_tokens


def test_max_tokens_at_or_above_the_answer_length_does_not_truncate() -> None:
    full = answer("openai", ChatRequest(model="m", messages=QUESTION))
    exact = answer("openai", ChatRequest(model="m", messages=QUESTION, max_tokens=full.output_tokens))
    assert exact == full
    assert not exact.truncated


@pytest.mark.parametrize(
    "content",
    [
        "[a/b] You asked: hi. This is a simulated answer.",
        "  leading and trailing  ",
        "line\n\nbreaks\tand tabs",
        "x",
        "",
    ],
)
def test_stream_pieces_join_back_to_the_content(content: str) -> None:
    pieces = stream_pieces(content)
    assert "".join(pieces) == content
    assert all(pieces)


def test_stream_pieces_are_about_one_word_each() -> None:
    assert stream_pieces("one two  three") == ["one ", "two  ", "three"]
