"""The simulator's decisions, with no I/O.

Vendor state, fault-mode expiry, the deterministic answer and token counting live here. Time is
passed in as `now` (seconds on the app's monotonic clock); randomness comes from each vendor's
own seeded `random.Random`, so a test that sets the same seed sees the same faults.
"""

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal, get_args

Format = Literal["openai", "anthropic"]
Mode = Literal["ok", "down", "refuse", "slow", "ratelimit", "flaky", "garbage", "cut",
               "stall", "stream_error", "malformed_chunk", "wrong"]
MODES: tuple[str, ...] = get_args(Mode)
# What the handler does with one request; `error` is flaky's 500, `answer` includes slow.
# `wrong` is a well-formed 200 whose content is not the answer: what only quality canaries catch.
Outcome = Literal["answer", "down", "refuse", "ratelimit", "error", "garbage", "cut",
                  "stall", "stream_error", "malformed_chunk", "wrong"]

# Real windows of the current flagship models of each format (gpt-4o: 128k; Claude: 200k).
DEFAULT_CONTEXT_WINDOW: Mapping[str, int] = MappingProxyType({"openai": 128_000, "anthropic": 200_000})
DEFAULT_SLOW_LATENCY_MS = 1000  # `slow` with no latency given must still be slow
DEFAULT_STALL_MS = 30_000  # how long `stall` holds a connection with no latency given
MESSAGE_OVERHEAD_TOKENS = 3  # per message, as OpenAI's cookbook counts role/separator tokens
ECHO_MAX_TOKENS = 24  # the answer quotes at most this much of the question: short and readable

# Our documented tokenizer: a word or one punctuation mark is one token. Close enough to BPE
# counts for budgets and context checks, and needs no downloaded encodings (tiktoken does).
_TOKEN = re.compile(r"\w+|[^\w\s]")
# Stream pieces: each word with the whitespace around it, so that pieces concatenate exactly.
_PIECE = re.compile(r"\s*\S+\s*|\s+")
_STATIC_OUTCOMES: Mapping[str, Outcome] = MappingProxyType(
    {"ok": "answer", "slow": "answer", "down": "down", "refuse": "refuse",
     "ratelimit": "ratelimit", "garbage": "garbage", "cut": "cut", "stall": "stall",
     "stream_error": "stream_error", "malformed_chunk": "malformed_chunk", "wrong": "wrong"}
)


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or a list of parts ({"type": "text", "text"})."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def count_prompt_tokens(messages: Sequence[Mapping[str, Any]], system: Any = None) -> int:
    """Input tokens: every message's text plus a fixed overhead; a system prompt counts as one more."""
    total = sum(count_tokens(text_of(m.get("content"))) + MESSAGE_OVERHEAD_TOKENS for m in messages)
    if system:
        total += count_tokens(text_of(system)) + MESSAGE_OVERHEAD_TOKENS
    return total


def _cut_after_tokens(text: str, n: int) -> str:
    """The prefix of `text` holding its first `n` tokens (original spacing kept)."""
    if n <= 0:
        return ""
    for i, match in enumerate(_TOKEN.finditer(text), start=1):
        if i == n:
            return text[: match.end()]
    return text


@dataclass(frozen=True, kw_only=True)
class ChatRequest:
    """The fields of a chat request that the simulator acts on, whatever the wire format."""

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    stream: bool = False
    include_usage: bool = False  # OpenAI's stream_options.include_usage
    system: Any = None  # Anthropic's top-level system prompt


@dataclass(frozen=True, kw_only=True)
class Answer:
    content: str
    input_tokens: int
    output_tokens: int
    truncated: bool  # cut by max_tokens: finish_reason "length" / stop_reason "max_tokens"


# Two deterministic rules, so that golden prompts (the health monitor's quality canaries) have a
# checkable right answer here as they do from a real model: "Reply with exactly: X" answers X, and
# "What is A + B" (or -, *) answers with the result. Anything else is echoed.
_EXACTLY = re.compile(r"reply with exactly:\s*(.+)$", re.IGNORECASE)
_ARITHMETIC = re.compile(r"\bwhat is\s+(-?\d{1,9})\s*([-+*])\s*(-?\d{1,9})\b", re.IGNORECASE)
_OPS = MappingProxyType({"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b})


def _ruled(question: str) -> str | None:
    if exactly := _EXACTLY.search(question):
        return exactly.group(1).strip()
    if sum_ := _ARITHMETIC.search(question):
        a, op, b = int(sum_.group(1)), sum_.group(2), int(sum_.group(3))
        return f"{a} {op} {b} = {_OPS[op](a, b)}"
    return None


def wrong_text(vendor: str, model: str) -> str:
    """Mode `wrong`: fluent, well-formed, and not the answer to anything."""
    return f"[{vendor}/{model}] I am not sure, but it is probably 7. This is a simulated answer."


def reply_text(vendor: str, model: str, messages: Sequence[Mapping[str, Any]]) -> str:
    last_user = next((text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    question = " ".join(last_user.split())  # one line, however the prompt was laid out
    if (ruled := _ruled(question)) is not None:
        return ruled
    quoted = _cut_after_tokens(question, ECHO_MAX_TOKENS)
    ellipsis = "..." if quoted != question else ""
    return f"[{vendor}/{model}] You asked: {quoted.rstrip(' .?!')}{ellipsis}. This is a simulated answer."


# A simulated answer starts with its author's label, "[vendor/model] ".
_LABEL = re.compile(r"^\[[^\]]*\]\s*")
_CONTINUE = re.compile(r"^\s*continue\b", re.IGNORECASE)


def continued(messages: Sequence[Mapping[str, Any]]) -> tuple[Sequence[Mapping[str, Any]], str] | None:
    """(the conversation before it, the partial answer) when a request asks to continue an answer.

    Two shapes: a final assistant message (Anthropic's prefill: the model carries on from it), or
    an assistant message followed by a user message starting with "Continue" (how an OpenAI-format
    model is asked). Anything else is a new question.
    """
    if not messages:
        return None
    last = messages[-1]
    if last.get("role") == "assistant":
        return messages[:-1], text_of(last.get("content"))
    if (len(messages) >= 2 and messages[-2].get("role") == "assistant" and last.get("role") == "user"
            and _CONTINUE.match(text_of(last.get("content")))):
        return messages[:-2], text_of(messages[-2].get("content"))
    return None


def continuation(full: str, partial: str) -> str:
    """What this model adds to `partial` to reach its own answer `full`: like a real model, it
    carries on from the words, whoever wrote them (labels aside); if the partial answer is not
    the start of its own, it starts over."""
    body = _LABEL.sub("", full)
    done = _LABEL.sub("", partial).rstrip()
    return body[len(done):] if body.startswith(done) else full


def answer(vendor: str, request: ChatRequest, *, wrong: bool = False) -> Answer:
    resumed = continued(request.messages)
    if wrong:
        content = wrong_text(vendor, request.model)
    elif resumed is None:
        content = reply_text(vendor, request.model, request.messages)
    else:
        earlier, partial = resumed
        content = continuation(reply_text(vendor, request.model, earlier), partial)
    output = count_tokens(content)
    truncated = request.max_tokens is not None and output > request.max_tokens
    if truncated:
        content = _cut_after_tokens(content, request.max_tokens or 0)
        output = count_tokens(content)
    return Answer(
        content=content,
        input_tokens=count_prompt_tokens(request.messages, request.system),
        output_tokens=output,
        truncated=truncated,
    )


def stream_pieces(content: str) -> list[str]:
    """The content split as a stream sends it: about one word per chunk; joined, they equal it."""
    return _PIECE.findall(content)


@dataclass(frozen=True, kw_only=True)
class FaultSettings:
    mode: Mode = "ok"
    latency_ms: int = 0  # added before the answer in mode `slow`; how long `stall` stalls
    error_rate: float = 0.3  # fraction of requests that get a 500, in mode `flaky` only
    retry_after_s: int = 1  # Retry-After of a 429, in mode `ratelimit`
    cut_after: int = 3  # content chunks a stream sends before its fault (cut, stall, stream_error, malformed_chunk)
    chunk_delay_ms: int = 0  # between a stream's content chunks, in every mode
    context_window: int | None = None  # tokens; None = the format's default window
    for_s: float | None = None  # seconds until the mode reverts to ok by itself; None = until changed


@dataclass
class Counters:
    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)  # "200", "503", ..., "reset", "cut"
    by_model: dict[str, int] = field(default_factory=dict)

    def record(self, status: str, model: str | None) -> None:
        self.total += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if model is not None:
            self.by_model[model] = self.by_model.get(model, 0) + 1


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    delay_s: float = 0.0  # wait this long before the answer (before the first chunk of a stream)


class Vendor:
    """One simulated vendor: its wire format, fault settings, counters and random stream."""

    def __init__(self, name: str, format: Format, *, seed: int = 0) -> None:
        self.name = name
        self.format = format
        self._seed = seed
        self.settings = FaultSettings()
        self.until: float | None = None  # clock time at which the mode reverts to ok
        self.counters = Counters()
        # Seeded by name as well, so that vendors do not share one sequence of draws.
        self.rng = random.Random(f"{seed}/{name}")

    def configure(self, settings: FaultSettings, now: float) -> None:
        self.settings = settings
        self.until = None if settings.for_s is None else now + settings.for_s

    def settings_at(self, now: float) -> FaultSettings:
        """The settings in force at `now`; an expired mode reverts to ok here (lazily, no timers).

        Only the fault reverts: a context_window override is a property of the model, not a fault.
        """
        if self.until is not None and now >= self.until:
            self.settings = replace(self.settings, mode="ok", for_s=None)
            self.until = None
        return self.settings

    def context_window(self) -> int:
        return self.settings.context_window or DEFAULT_CONTEXT_WINDOW[self.format]

    def reset_counters(self) -> None:
        self.counters = Counters()

    def reset(self) -> None:
        """Back to ok, counters to zero and the random stream to its start: a repeatable run."""
        self.settings = FaultSettings()
        self.until = None
        self.counters = Counters()
        self.rng = random.Random(f"{self._seed}/{self.name}")

    def describe(self, now: float) -> dict[str, Any]:
        s = self.settings_at(now)
        return {
            "name": self.name,
            "format": self.format,
            "mode": s.mode,
            "latency_ms": s.latency_ms,
            "error_rate": s.error_rate,
            "retry_after_s": s.retry_after_s,
            "cut_after": s.cut_after,
            "chunk_delay_ms": s.chunk_delay_ms,
            "context_window": s.context_window,
            "effective_context_window": self.context_window(),
            "for_s": s.for_s,
            "remaining_s": None if self.until is None else round(self.until - now, 3),
            "requests": {
                "total": self.counters.total,
                "by_status": dict(self.counters.by_status),
                "by_model": dict(self.counters.by_model),
            },
        }


def decide(vendor: Vendor, now: float) -> Decision:
    """What to do with the next request to `vendor`; draws from its rng only in mode `flaky`."""
    s = vendor.settings_at(now)
    if s.mode == "flaky":
        return Decision("error" if vendor.rng.random() < s.error_rate else "answer")
    return Decision(_STATIC_OUTCOMES[s.mode], s.latency_ms / 1000 if s.mode == "slow" else 0.0)
