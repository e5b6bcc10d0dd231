"""Golden prompts: the checks, and the simulator answering the shipped ones right in mode ok and
wrong in mode wrong. Pure."""

import pytest

from services.health_monitor.canary import check, first_json_object
from services.runtime.config.health import CanaryCheck, CanarySettings
from services.simulator.logic import ChatRequest, answer


def spec(expect: str, value: object) -> CanaryCheck:
    return CanaryCheck(name="c", prompt="p", expect=expect, value=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("expect", "value", "answer_text", "right"), [
    ("exact", "lifeline-canary-7", "lifeline-canary-7", True),
    ("exact", "lifeline-canary-7", "  `lifeline-canary-7`.\n", True),
    ("exact", "lifeline-canary-7", "The word is lifeline-canary-7", False),
    ("regex", r"\b42\b", "17 + 25 = 42", True),
    ("regex", r"\b42\b", "It is 421.", False),
    ("json", {"status": "string", "items": "integer"}, 'Sure:\n```json\n{"status": "ok", "items": 3}\n```', True),
    ("json", {"status": "string", "items": "integer"}, '{"status": "ok", "items": "3"}', False),
    ("json", {"status": "string", "items": "integer"}, '{"status": "ok", "items": true}', False),
    ("json", {"status": "string"}, "no json here {oops", False),
])
def test_checks(expect: str, value: object, answer_text: str, right: bool):
    assert (check(spec(expect, value), answer_text) is None) is right


def test_a_failed_check_says_what_was_wrong():
    assert check(spec("exact", "x"), "y") == "c: expected 'x', got 'y'"
    assert check(spec("json", {"n": "integer"}), '{"m": 1}') == "c: JSON has no 'n'"


def test_first_json_object_skips_what_is_not_one():
    assert first_json_object('[1] {bad} {"a": {"b": 1}} {"c": 2}') == {"a": {"b": 1}}


def test_bad_canary_configuration_is_refused():
    with pytest.raises(ValueError, match="expect json needs value"):
        spec("json", "x")
    with pytest.raises(ValueError, match="unknown JSON type"):
        spec("json", {"a": "int"})
    with pytest.raises(ValueError, match="not a valid regular expression"):
        spec("regex", "(")


@pytest.mark.parametrize("wrong", [False, True])
def test_the_simulator_answers_the_shipped_golden_prompts_right_unless_told_to_be_wrong(wrong: bool):
    for golden in CanarySettings().checks:
        request = ChatRequest(model="gpt-4o-mini", messages=[{"role": "user", "content": golden.prompt}],
                              max_tokens=CanarySettings().max_tokens)
        reply = answer("openai", request, wrong=wrong).content
        assert (check(golden, reply) is None) is (not wrong), (golden.name, reply)
