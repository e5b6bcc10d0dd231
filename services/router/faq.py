"""Static answers (tier `minimal`): a FAQ matched by similarity, then deterministic rules.

The file (tiers.faq_file, default faq.yaml) holds `entries` (questions and an answer) and
`rules` (topic -> help-center links). Matching uses rapidfuzz's token_set_ratio: it forgives
word order, punctuation and extra words ("I forgot my password, help" finds "I forgot my
password") and scores unrelated questions low (measured on the shipped FAQ: under 70).

Rules are a hook: anything with `answer(question) -> str | None` can be one (StaticRule); the
YAML-configured kind is TopicLinks. Pure: no I/O once loaded.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rapidfuzz import fuzz, process, utils

from services.runtime.config import ConfigError

_WORD = re.compile(r"\w+")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FaqEntry(_Strict):
    id: str = Field(min_length=1)
    questions: list[str] = Field(min_length=1)
    answer: str = Field(min_length=1)


class Link(_Strict):
    title: str
    url: str


class TopicRule(_Strict):
    topic: str = Field(min_length=1)
    keywords: list[str] = Field(min_length=1)
    intro: str = "These help-center articles may help:"
    links: list[Link] = Field(min_length=1)


class FaqFile(_Strict):
    entries: list[FaqEntry] = Field(default_factory=list)
    rules: list[TopicRule] = Field(default_factory=list)


class StaticRule(Protocol):
    name: str

    def answer(self, question: str) -> str | None:
        """A deterministic answer to the question, or None if this rule has nothing to say."""
        ...


@dataclass(frozen=True)
class TopicLinks:
    """A question that names one of the topic's keywords (a whole word) gets its links."""

    name: str
    keywords: frozenset[str]
    intro: str
    links: tuple[Link, ...]

    @classmethod
    def from_rule(cls, rule: TopicRule) -> "TopicLinks":
        return cls(name=rule.topic, keywords=frozenset(k.casefold() for k in rule.keywords),
                   intro=rule.intro, links=tuple(rule.links))

    def answer(self, question: str) -> str | None:
        if self.keywords.isdisjoint(_WORD.findall(question.casefold())):
            return None
        return "\n".join([self.intro, *(f"- {link.title}: {link.url}" for link in self.links)])


@dataclass(frozen=True)
class StaticAnswer:
    content: str
    source: str  # "faq:<entry id>" or "rule:<name>"


class StaticAnswers:
    def __init__(self, entries: Sequence[FaqEntry] = (), rules: Sequence[StaticRule] = (),
                 *, similarity: float = 85.0) -> None:
        self.similarity = similarity
        self.rules = list(rules)
        # Every phrasing of every question, pre-processed once.
        self._questions = [utils.default_process(q) for e in entries for q in e.questions]
        self._entries = [e for e in entries for _ in e.questions]

    def answer(self, question: str) -> StaticAnswer | None:
        """The FAQ entry most like the question (at or above the threshold), else a rule's answer."""
        processed = utils.default_process(question)
        if processed and self._questions:
            best = process.extractOne(processed, self._questions, scorer=fuzz.token_set_ratio,
                                      processor=None, score_cutoff=self.similarity)
            if best is not None:
                entry = self._entries[best[2]]
                return StaticAnswer(entry.answer, f"faq:{entry.id}")
        for rule in self.rules:
            content = rule.answer(question)
            if content is not None:
                return StaticAnswer(content, f"rule:{rule.name}")
        return None


def load_static_answers(path: Path | str | None, *, similarity: float) -> StaticAnswers:
    """The FAQ file, validated; errors name the file, line and field as lifeline.yaml's do."""
    if path is None:
        return StaticAnswers(similarity=similarity)
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the FAQ file (tiers.faq_file): {e.strerror}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) or {}
        faq = FaqFile.model_validate(data)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(f"{path}:{mark.line + 1 if mark else 1}: not valid YAML: "
                          f"{getattr(e, 'problem', e)}") from None
    except ValidationError as e:
        raise ConfigError("\n".join(
            f"{path}:{_line_of(root, tuple(err['loc']))}: "
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in e.errors())) from None
    return StaticAnswers(faq.entries, [TopicLinks.from_rule(r) for r in faq.rules],
                         similarity=similarity)


def _line_of(node: yaml.Node | None, loc: tuple[str | int, ...]) -> int:
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if k.value == str(part)]
            if not match:
                break
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line
