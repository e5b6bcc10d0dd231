"""The conversation store's decisions: pure, no I/O, time passed in as `now`.

What becomes a turn: an `llm.completed` event with status `ok` is a question and the answer the
caller got (from a model, the cache, a static answer or the maintenance message: `tier` says
which, so a reader can leave out what it does not want carried forward). `error` is a question
nobody answered (the caller asks again, under a new request id) and `queued` is a question still
waiting (its answer arrives later as its own `ok`): neither is a turn. Spend is counted from
every status by the cost guard, not here.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from schemas.events import HistoryReply, HistoryRequest, LlmCompleted, PurgeRequest
from services.runtime.config.store import RetentionConfig

from .records import TurnRecord

M = TypeVar("M", bound=BaseModel)
DAY = timedelta(days=1)


class Outcome(StrEnum):
    """What became of one llm.completed event (the `outcome` label of the ingest metric)."""

    STORED = "stored"
    DUPLICATE = "duplicate"  # its request id was already stored
    NOT_A_TURN = "not_a_turn"  # status queued or error
    EXPIRED = "expired"  # older than its route's retention
    PURGED = "purged"  # its user was purged after it happened
    DEADLETTERED = "deadlettered"


def parse(model: type[M], data: bytes) -> M | str:
    """The message as `model`, or the reason it is not one (naming each bad field)."""
    try:
        return model.model_validate_json(data)
    except ValidationError as e:
        problems = [f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}"
                    for err in e.errors()[:5]]
        return f"not a valid {model.__name__}: " + "; ".join(problems)


def parse_completed(data: bytes) -> LlmCompleted | str:
    return parse(LlmCompleted, data)


def parse_history_request(data: bytes) -> HistoryRequest | str:
    return parse(HistoryRequest, data)


def parse_purge_request(data: bytes) -> PurgeRequest | str:
    return parse(PurgeRequest, data)


def field_of(data: bytes, name: str) -> str:
    """A string field of a message that failed validation, to name it in the reply ("" if none)."""
    try:
        value = json.loads(data).get(name)
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def to_turn(event: LlmCompleted, *, stored_at: datetime) -> TurnRecord | None:
    """The turn an event records, or None when it is not a turn (see the module's docstring)."""
    if event.status != "ok":
        return None
    return TurnRecord(
        request_id=event.request_id, session_id=event.session_id, at=event.occurred_at,
        route=event.route, messages=event.messages, content=event.content,
        provider=event.provider, model=event.model, tier=event.tier,
        fallback_depth=event.fallback_depth, input_tokens=event.usage.input_tokens,
        output_tokens=event.usage.output_tokens, cost_usd=event.cost_usd,
        latency_ms=event.latency_ms, user_id=event.user_id, key_id=event.key_id,
        team_id=event.team_id, region=event.region, priority=event.priority,
        cached=event.cached, attempts=event.attempts, metadata=event.metadata,
        event_id=event.id, source=event.source, stored_at=stored_at,
    )


@dataclass(frozen=True)
class Cutoffs:
    """Turns older than these are expired: per listed route, and for every other route."""

    routes: dict[str, datetime]
    default: datetime | None
    listed: frozenset[str]  # routes with their own setting (even "for ever")

    def of(self, route: str) -> datetime | None:
        return self.routes.get(route) if route in self.listed else self.default

    @property
    def latest(self) -> datetime | None:
        found = [*self.routes.values(), *([self.default] if self.default else [])]
        return max(found) if found else None


def cutoffs(retention: RetentionConfig, now: datetime) -> Cutoffs:
    return Cutoffs(
        routes={r: now - days * DAY for r, days in retention.routes.items() if days is not None},
        default=now - retention.default_days * DAY if retention.default_days else None,
        listed=frozenset(retention.routes),
    )


def expired(record: TurnRecord, limits: Cutoffs) -> bool:
    cutoff = limits.of(record.route)
    return cutoff is not None and record.at < cutoff


def purged(record: TurnRecord, tombstones: Mapping[str, datetime]) -> bool:
    """A turn of a user purged after it happened: the purge must not be undone by a late event."""
    at = tombstones.get(record.user_id) if record.user_id else None
    return at is not None and record.at <= at


def conversations_of(records: Iterable[TurnRecord]) -> list[dict[str, object]]:
    """One upsert row per session (sorted by id, so concurrent writers lock in the same order)."""
    sessions: dict[str, dict[str, object]] = {}
    for r in records:
        if r.session_id is None:
            continue
        row = sessions.get(r.session_id)
        if row is None:
            sessions[r.session_id] = {"id": r.session_id, "user_id": r.user_id,
                                      "started_at": r.at, "last_at": r.at}
            continue
        row["user_id"] = row["user_id"] or r.user_id
        row["started_at"] = min(row["started_at"], r.at)  # type: ignore[type-var]
        row["last_at"] = max(row["last_at"], r.at)  # type: ignore[type-var]
    return [sessions[k] for k in sorted(sessions)]


def backoff_s(attempt: int, *, initial_ms: int, max_ms: int) -> float:
    """The wait before retry `attempt` (0-based): doubling from initial, capped."""
    return min(max_ms, initial_ms * 2 ** min(attempt, 30)) / 1000


def fit(reply: HistoryReply, max_bytes: int) -> HistoryReply:
    """The reply, with its oldest turns left out until it fits in one bus message."""
    size = len(reply.model_dump_json())
    if size <= max_bytes:
        return reply
    turns = list(reply.turns)
    # Drop oldest first; each turn's own size is what leaving it out saves (plus a comma).
    sizes = [len(t.model_dump_json()) + 1 for t in turns]
    cut = 0
    while cut < len(turns) and size > max_bytes:
        size -= sizes[cut]
        cut += 1
    return reply.model_copy(update={"turns": turns[cut:], "truncated": True})
