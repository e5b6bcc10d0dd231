"""What both wire formats turn a request into, and Lifeline's own options beside it. Pure.

Lifeline options ride in `x-lifeline-*` headers or in the request's `metadata` (OpenAI's and
Anthropic's SDKs both send `metadata`; OpenAI's requires string values):
    allow_queue   "true": park the request when no provider can answer (202 with a ticket)
    session_id    the conversation this turn belongs to (history)
    region        keep the request on providers of this region (data residency)
    priority      "interactive" (default) | "batch"
    deadline_ms   the whole request's time budget
A header wins over the metadata.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.completion import CompletionRequest, Message

from .errors import ApiError, invalid

HEADER_PREFIX = "x-lifeline-"
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})


@dataclass(frozen=True, kw_only=True)
class ChatInput:
    route: str
    messages: list[Message]
    max_tokens: int | None = None
    temperature: float | None = None
    stream: bool = False
    include_usage: bool = False  # OpenAI stream_options.include_usage
    user: str | None = None  # the caller's own end-user id (OpenAI `user`, Anthropic metadata.user_id)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Identity:
    key_id: str | None = None  # None: an anonymous caller (gateway.require_keys: false)
    user_id: str | None = None
    team_id: str | None = None


def options(headers: Mapping[str, str], metadata: Mapping[str, Any]) -> dict[str, Any] | ApiError:
    """Lifeline's options for CompletionRequest, or a 400 that names the bad one."""
    def get(name: str) -> Any:
        header = headers.get(HEADER_PREFIX + name.replace("_", "-"))
        return header if header is not None else metadata.get(name)

    out: dict[str, Any] = {}
    queue = get("allow_queue")
    if queue is not None:
        text = str(queue).strip().lower()
        if text not in _TRUE | _FALSE:
            return invalid(f"allow_queue must be true or false, not {queue!r}", param="allow_queue")
        out["allow_queue"] = text in _TRUE
    for name in ("session_id", "region"):
        if (value := get(name)) is not None:
            out[name] = str(value)
    if (priority := get("priority")) is not None:
        if priority not in ("interactive", "batch"):
            return invalid(f"priority must be interactive or batch, not {priority!r}", param="priority")
        out["priority"] = priority
    if (deadline := get("deadline_ms")) is not None:
        text = str(deadline).strip()
        if not text.isdigit() or int(text) <= 0:
            return invalid(f"deadline_ms must be a positive integer, not {deadline!r}", param="deadline_ms")
        out["deadline_ms"] = int(text)
    return out


def completion_request(request_id: str, chat: ChatInput, who: Identity,
                       extra: dict[str, Any]) -> CompletionRequest:
    """The bus request: the key's user wins over a caller-supplied end-user id (budgets apply)."""
    return CompletionRequest(
        request_id=request_id, route=chat.route, messages=chat.messages, max_tokens=chat.max_tokens,
        temperature=chat.temperature, stream=chat.stream, metadata=chat.metadata,
        user_id=who.user_id or chat.user, key_id=who.key_id, team_id=who.team_id, **extra)


def lifeline_fields(*, request_id: str, tier: str | None, provider: str | None, model: str | None,
                    fallback_depth: int | None, cached: bool = False,
                    resumed: int | None = None) -> dict[str, Any]:
    """What every answer says about itself (the `lifeline` object and the x-lifeline-* headers)."""
    out = {"request_id": request_id, "tier": tier, "provider": provider, "model": model,
           "fallback_depth": fallback_depth, "cached": cached}
    if resumed is not None:
        out["resumed"] = resumed
    return out


def lifeline_headers(fields: Mapping[str, Any]) -> dict[str, str]:
    return {HEADER_PREFIX + k.replace("_", "-"): str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in fields.items() if v is not None}
