"""What a router tells the bus about one request: an `llm.attempt` per provider call, a
`provider.key_refused` per refused key, and one `llm.completed` with the answer.

They are stored before the caller is answered, so every answered request is in the ledger and the
history (a crash in between makes the caller ask again, and the message ids dedupe it). An event
that cannot be stored within `event_store_timeout_s` (no stream leader for longer than an
election takes, a stream being restored) never costs the caller the answer it already has: it
waits in the Backlog, which sends it again until it is stored.
"""

import asyncio
import logging
from collections import deque
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

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


class Backlog:
    """Events not stored in time, kept in memory (at most `limit`, the oldest dropped and counted
    beyond it) and sent again in the background, oldest first, until stored. Message ids make a
    late copy of an event that was in fact stored a no-op within the stream's duplicate window,
    and the ledger and the store dedupe on request id beyond it. What is still here when the
    router stops gets one last try (bounded by the stop's grace), then is logged as lost."""

    def __init__(self, service: Service, *, timeout_s: float, limit: int = 100_000,
                 registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.timeout_s = timeout_s
        self.limit = limit
        self.events: deque[Event] = deque()
        self.sending = 0  # taken from `events` by the send under way
        self.closed = False
        self.task: asyncio.Task[None] | None = None
        self.waiting = Gauge("lifeline_router_events_backlog",
                             "Events answered but not yet stored on the bus, sent again until stored",
                             registry=registry) if registry is not None else None
        self.dropped = Counter("lifeline_router_events_dropped",
                               "Events given up: the backlog was full, or the router stopped",
                               registry=registry) if registry is not None else None
        if self.waiting is not None:
            self.waiting.set_function(lambda: len(self.events) + self.sending)

    async def publish(self, request: CompletionRequest, events: list[Event]) -> None:
        js = self.service.broker.config.connection_state.stream
        failed = []
        for event, failure in zip(events, await publish_events(js, events, timeout=self.timeout_s),
                                  strict=True):
            if failure is not None:
                failed.append(event)
                log.warning("%s for %s not stored yet (%r): sending it again in the background",
                            event[0], request.request_id, failure)
        if failed:
            self.add(failed)

    def add(self, events: list[Event]) -> None:
        if self.closed:  # the router is past its last publish
            for subject, _, msg_id in events:
                self._drop(f"router stopped: {subject} {msg_id} not stored")
            return
        self.events.extend(events)
        while len(self.events) > self.limit:
            subject, _, msg_id = self.events.popleft()
            self._drop(f"backlog full ({self.limit}): {subject} {msg_id} given up")
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name="router-event-backlog")

    async def _run(self) -> None:
        pause = 0.5
        while self.events:
            if await self._send_some(timeout_s=self.timeout_s):
                pause = 0.5
            else:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    async def _send_some(self, *, timeout_s: float, batch: int = 500) -> bool:
        """Sends up to `batch` of the oldest; True if any were stored."""
        events = [self.events.popleft() for _ in range(min(batch, len(self.events)))]
        self.sending = len(events)
        try:
            js = self.service.broker.config.connection_state.stream
            results = await publish_events(js, events, timeout=timeout_s)
        except asyncio.CancelledError:
            self.events.extendleft(reversed(events))  # stop() takes them from here
            raise
        except Exception as e:  # e.g. the connection is being replaced: try again later
            log.debug("event backlog: %r", e)
            self.events.extendleft(reversed(events))
            return False
        finally:
            self.sending = 0
        failed = [event for event, failure in zip(events, results, strict=True) if failure is not None]
        self.events.extend(failed)  # behind the others: one event the stream refuses blocks nobody
        if stored := len(events) - len(failed):
            log.info("event backlog: %d stored late, %d still waiting", stored, len(self.events))
        return stored > 0

    async def stop(self) -> None:
        self.closed = True
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.events:
            await self._send_some(timeout_s=min(self.timeout_s, 5.0), batch=len(self.events))
        for subject, _, msg_id in self.events:
            self._drop(f"router stopping: {subject} {msg_id} not stored")
        self.events.clear()

    def _drop(self, why: str) -> None:
        log.error("event lost: %s", why)
        if self.dropped is not None:
            self.dropped.inc()
