"""The notifier's service layer: applies a status event, a timer or an operator's action in one
transaction: component changes, incident transitions, their bus events and their alerts
(outbox rows), and the processed mark. The decisions are the pure modules'; this wires them.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas import events as ev
from schemas import subjects
from services.runtime.config import LifelineConfig

from . import alerts, outbox, store
from .components import component_specs, status_of
from .incidents import Incident, Transition, manual_open, manual_resolve, manual_update, on_signal, settle
from .metrics import Metrics, channel_label
from .signals import SUBJECTS, Known

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
EVENT_OF: dict[str, tuple[str, type[ev.IncidentEvent]]] = {
    "opened": (subjects.INCIDENT_OPENED, ev.IncidentOpened),
    "resolved": (subjects.INCIDENT_RESOLVED, ev.IncidentResolved),
}
UPDATED = (subjects.INCIDENT_UPDATED, ev.IncidentUpdated)


class NotFound(Exception):
    pass


class AlreadyResolved(Exception):
    pass


class TooManyConflicts(Exception):
    """Other instances kept changing the same incident; the caller tries again later."""


class Processor:
    def __init__(self, engine: AsyncEngine, config: LifelineConfig, *, clock: Clock,
                 metrics: Metrics, source: str, public_url: str) -> None:
        self.engine = engine
        self.config = config
        self.policy = config.notifier.incidents
        self.clock = clock
        self.metrics = metrics
        self.source = source
        self.public_url = public_url.rstrip("/")
        # One writer at a time in this process: SQLite has a single writer, and a deferred
        # transaction that upgrades to a write lock fails rather than waits.
        self.write_lock = asyncio.Lock()
        self.listeners: list[Callable[[], None]] = []  # told after every commit that changed something

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    async def _write(self, work: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
        """Runs `work` in a transaction, again if another instance changed an incident first."""
        for attempt in range(5):
            try:
                async with self.write_lock, self.engine.begin() as conn:
                    return await work(conn)
            except store.Conflict as e:
                log.info("incident %s changed under us; deciding again (%d)", e, attempt + 1)
        raise TooManyConflicts("five conflicts in a row")

    async def seed(self) -> None:
        """Every configured component exists (operational, observed from now)."""
        now = self.clock()

        async def work(conn: AsyncConnection) -> None:
            for spec in component_specs(self.config):
                await store.ensure_component(conn, spec.id, spec.kind, spec.name, now)
            self.metrics.incidents_open.set(await store.open_count(conn))

        await self._write(work)

    # --- status events ---------------------------------------------------------------------

    async def handle(self, subject: str, event: BaseModel) -> bool:
        """Applies one status event. False if it had been applied before (idempotent on id)."""
        _, decide = SUBJECTS[subject]
        now = self.clock()
        at = min(getattr(event, "occurred_at", now), now)
        event_id = getattr(event, "id")

        async def work(conn: AsyncConnection) -> bool:
            if not await store.mark_processed(conn, event_id, subject, now):
                return False
            known = await store.components(conn)
            effects = decide(event, Known(self.config, {c: k.detail for c, k in known.items()}))
            for change in effects.changes:
                await store.apply_change(conn, change, status_of(change.kind, change.detail), at)
            for key, value in effects.facts.items():
                await store.put_fact(conn, key, value, now)
            if effects.signal is not None:
                current = await store.latest_incident(conn, effects.signal.key)
                steps = on_signal(effects.signal, current, at, self.policy, uuid4().hex)
                await self._record(conn, steps, now)
            return True

        applied = await self._write(work)
        self.metrics.events.labels(subject).inc()
        if applied:
            self._changed()
        return applied

    async def settle_due(self) -> int:
        """Resolves incidents whose quiet period has passed. Returns how many."""
        now = self.clock()

        async def work(conn: AsyncConnection) -> int:
            steps = [s for i in await store.monitoring(conn)
                     if (s := settle(i, now, self.policy)) is not None]
            await self._record(conn, steps, now)
            return len(steps)

        done = await self._write(work)
        if done:
            self._changed()
        return done

    async def prune(self) -> None:
        """Drops what can never matter again: processed ids past the stream's age, sent alerts."""
        now = self.clock()

        async def work(conn: AsyncConnection) -> None:
            await store.prune_processed(conn, now - timedelta(days=91))
            await outbox.prune(conn, now - timedelta(days=7))

        await self._write(work)

    # --- operators -------------------------------------------------------------------------

    async def open_incident(self, *, title: str, component: str, impact: str, status: str,
                            body: str, actor: str) -> Incident:
        now = self.clock()
        step = manual_open(new_id=uuid4().hex, title=title, component=component, impact=impact,
                           status=status, body=body, at=now, actor=actor)

        async def work(conn: AsyncConnection) -> Incident:
            await self._record(conn, [step], now)
            return step.incident

        return await self._done(await self._write(work))

    async def update_incident(self, incident_id: str, *, status: str | None, body: str,
                              actor: str, resolve: bool = False) -> Incident:
        async def work(conn: AsyncConnection) -> Incident:
            now = self.clock()
            current = await store.incident(conn, incident_id)
            if current is None:
                raise NotFound(incident_id)
            if not current.is_open:
                raise AlreadyResolved(incident_id)
            step = (manual_resolve(current, body=body, at=now, actor=actor) if resolve
                    else manual_update(current, status=status, body=body, at=now, actor=actor))
            await self._record(conn, [step], now)
            return step.incident

        return await self._done(await self._write(work))

    async def _done(self, incident: Incident) -> Incident:
        self._changed()
        return incident

    # --- what every transition takes with it -----------------------------------------------

    async def _record(self, conn: AsyncConnection, steps: list[Transition], now: datetime) -> None:
        for step in steps:
            await store.save_transition(conn, step)
            await self._publish(conn, step, now)
            if alerts.should_alert(step, last_alert_at=step.incident.last_alert_at, now=now,
                                   policy=self.policy):
                if await self._alert(conn, step, now):
                    await store.set_last_alert(conn, step.incident.id, step.at)
        if steps:
            self.metrics.incidents_open.set(await store.open_count(conn))

    async def _publish(self, conn: AsyncConnection, step: Transition, now: datetime) -> None:
        """incident.* for the bus, through the outbox: sent once the transaction holds."""
        i = step.incident
        subject, model = EVENT_OF.get(step.kind, UPDATED)
        extra = {"duration_s": i.duration_s} if model is ev.IncidentResolved else {}
        event = model(source=self.source, incident_id=i.id, title=i.title, component=i.component,
                      status=i.status, impact=i.impact, message=step.body,  # type: ignore[arg-type]
                      started_at=i.started_at, resolved_at=i.resolved_at, **extra)
        await outbox.enqueue(conn, channel="bus", kind="bus", item_id=event.id, at=now,
                             incident_id=i.id,
                             payload={"subject": subject, "event": event.model_dump(mode="json")})

    async def _alert(self, conn: AsyncConnection, step: Transition, now: datetime) -> bool:
        payload = alerts.alert_payload(step, url=f"{self.public_url}/incidents/{step.incident.id}")
        recent = await outbox.recent_counts(conn, now - timedelta(minutes=1))
        channels = self.config.notifier.channels
        send, suppressed = alerts.channels_for(step, channels, recent, self.policy)
        for name in suppressed:
            self.metrics.alerts_suppressed.labels(channel_label(name)).inc()
            log.warning("alert for incident %s to %s dropped: over %d a minute", step.incident.id,
                        name, self.policy.max_alerts_per_minute)
        for name in send:
            await outbox.enqueue(conn, channel=name, kind=channels[name].kind, payload=payload,
                                 at=now, incident_id=step.incident.id)
        told = 0
        for sub in await outbox.subscribers(conn):
            if alerts.subscriber_wants(step, sub.components):
                await outbox.enqueue(conn, channel=f"subscriber:{sub.id}", kind=f"subscriber_{sub.kind}",
                                     target=sub.address, payload=payload, at=now,
                                     incident_id=step.incident.id)
                told += 1
        return bool(send or told)
