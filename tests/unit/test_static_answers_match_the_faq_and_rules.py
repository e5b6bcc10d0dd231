"""The shipped FAQ and rules: which questions they answer, and errors that name file and line."""

from pathlib import Path

import pytest

from services.router.faq import load_static_answers
from services.runtime.config import ConfigError

FAQ = Path(__file__).parents[2] / "faq.yaml"


@pytest.fixture(scope="module")
def static():
    return load_static_answers(FAQ, similarity=85)


@pytest.mark.parametrize(("question", "source"), [
    ("How can I get a refund?", "faq:refund-policy"),
    ("wheres my order", "faq:order-status"),
    ("I forgot my password, help", "faq:password-reset"),
    ("Do you ship internationally?", "faq:shipping"),
    ("contact support", "faq:contact"),
    ("Why was I charged twice?", "rule:billing"),
    ("How do I cancel my subscription?", "rule:account"),
])
def test_customer_support_questions_get_their_static_answer(static, question, source):
    assert static.answer(question).source == source


@pytest.mark.parametrize("question", [
    "What is the weather today?", "Can you write me a poem about cats?", "Tell me a joke",
    "What is the capital of France?", "Is order 123 shipped?", "Hello",
])
def test_other_questions_get_none(static, question):
    assert static.answer(question) is None


def test_a_bad_faq_file_names_the_file_line_and_field(tmp_path):
    bad = tmp_path / "faq.yaml"
    bad.write_text("entries:\n  - id: x\n    questions: [a]\n  - id: y\n    answer: b\n")
    with pytest.raises(ConfigError) as e:
        load_static_answers(bad, similarity=85)
    assert f"{bad}:4: entries.1.questions: Field required" in str(e.value)
    with pytest.raises(ConfigError, match="cannot read the FAQ file"):
        load_static_answers(tmp_path / "missing.yaml", similarity=85)


def test_no_faq_file_means_no_static_answers():
    assert load_static_answers(None, similarity=85).answer("How do I get a refund?") is None
