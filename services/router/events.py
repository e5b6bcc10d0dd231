"""What a router tells the bus about one request: an `llm.attempt` per provider call, a
`provider.key_refused` per refused key, and one `llm.completed` with the answer.

They are stored before the caller is answered, so every answered request is in the ledger and the
history (a crash in between makes the caller ask again, and the message ids dedupe it). A lost
event is logged, never allowed to cost the caller the answer it already has.
"""

import logging
from typing import Any, Protocol

from schemas import subjects
from schemas.completion import Attempt, CompletionRequest, CompletionResult, Usage
from schemas.events import LlmAttempt, LlmCompleted, ProviderKeyRefused
from services.runtime.bus import publish_events
from services.runtime.service import Service

from .outcome import KeyRefusal

log = logging.getLogger(__name__)

Event = tuple[str, bytes, str]  # subject, payload, Nats-Msg-Id


class Record(Protocol):
    """What happened to one request (Outcome for llm.complete, StreamRecord for llm.stream)."""

    result: CompletionResult
    attempts: list[Attempt]
    status_codes: list[int | None]
    usages: list[Usage]
    costs: list[float]


def request_events(source: str, request: CompletionRequest, record: Record, *,
                   attempt_key: str | None = None, completed: bool = True,
                   metadata: dict[str, Any] | None = None) -> list[Event]:
    """attempt_key: the attempts' id prefix when one request is tried more than once (the queue);
    completed=False: no llm.completed (a parked request gets its own when it is answered)."""
    events: list[Event] = [
        (subjects.LLM_ATTEMPT,
         LlmAttempt(source=source, request_id=request.request_id, route=request.route,
                    attempt_no=i, status_code=code, usage=usage, cost_usd=cost,
                    **a.model_dump()).model_dump_json().encode(),
         f"{attempt_key or request.request_id}.{i}")
        for i, (a, code, usage, cost) in enumerate(zip(
            record.attempts, record.status_codes, record.usages, record.costs, strict=True))
    ]
    events += key_refused_events(source, getattr(record, "key_refusals", []))
    if completed:
        result = record.result
        event = LlmCompleted(
            source=source, request_id=request.request_id, route=request.route,
            status=result.status, tier=result.tier, provider=result.provider, model=result.model,
            fallback_depth=result.fallback_depth, usage=result.usage, cost_usd=result.cost_usd,
            latency_ms=result.latency_ms, user_id=request.user_id, session_id=request.session_id,
            key_id=request.key_id, team_id=request.team_id, priority=request.priority,
            region=request.region, messages=[m.model_dump() for m in request.messages],
            content=result.content, error_kind=result.error.kind if result.error else None,
            attempts=len(record.attempts), cached=result.cached,
            metadata=request.metadata if metadata is None else metadata,
        )
        events.append((subjects.LLM_COMPLETED, event.model_dump_json().encode(), request.request_id))
    return events


def key_refused_events(source: str, refusals: list[KeyRefusal]) -> list[Event]:
    """provider.key_refused, once per refusal episode (the engine reports only the first 401/403)."""
    events = []
    for r in refusals:
        event = ProviderKeyRefused(source=source, provider=r.provider, model=r.model, state="down",
                                   reason=f"key refused: {r.message}", status_code=r.status_code)
        events.append((subjects.PROVIDER_KEY_REFUSED, event.model_dump_json().encode(), event.id))
    return events


async def publish(service: Service, request: CompletionRequest, events: list[Event]) -> None:
    js = service.broker.config.connection_state.stream
    for (subject, _, _), failure in zip(events, await publish_events(js, events), strict=True):
        if failure is not None:
            log.warning("%s for %s not stored: %r", subject, request.request_id, failure)
