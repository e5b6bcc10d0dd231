"""Everything the status page, summary.json, the feed and the badges show, read in one go."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from services.runtime.config import LifelineConfig

from . import store, uptime
from .components import LABELS, component_specs, page_indicator
from .incidents import Incident, human
from .store import Update


@dataclass(frozen=True)
class ComponentView:
    id: str
    kind: str
    name: str
    description: str
    status: str
    since: datetime
    updated_at: datetime
    days: list[uptime.Day]
    uptime: float | None

    @property
    def label(self) -> str:
        return LABELS.get(self.status, self.status)


@dataclass(frozen=True)
class IncidentView:
    incident: Incident
    updates: list[Update]

    @property
    def duration(self) -> str | None:
        d = self.incident.duration_s
        return human(d) if d is not None else None


@dataclass(frozen=True)
class Snapshot:
    now: datetime
    page_name: str
    indicator: str
    description: str
    components: list[ComponentView]
    open_incidents: list[IncidentView]
    past_incidents: list[IncidentView]
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def by_kind(self, kind: str) -> list[ComponentView]:
        return [c for c in self.components if c.kind == kind]

    @property
    def updated_at(self) -> datetime:
        times = [c.updated_at for c in self.components]
        times += [i.incident.updated_at for i in self.open_incidents + self.past_incidents]
        return max(times, default=self.now)


async def load(engine: AsyncEngine, config: LifelineConfig, now: datetime, *,
               past: int = 20) -> Snapshot:
    days = config.notifier.history_days
    async with engine.connect() as conn:
        known = await store.components(conn)
        spans = await store.history(conn, now - timedelta(days=days))
        open_ = await store.incidents(conn, unresolved=True, limit=100)
        closed = await store.incidents(conn, unresolved=False, limit=past)
        timeline = await store.updates(conn, [i.id for i in open_ + closed])
        facts = await store.facts(conn)
    order = {s.id: n for n, s in enumerate(component_specs(config))}
    descriptions = {s.id: s.description for s in component_specs(config)}
    views = []
    for c in sorted(known.values(), key=lambda c: (order.get(c.id, len(order)), c.id)):
        history = [uptime.Span(r.status, r.started_at, r.ended_at) for r in spans.get(c.id, [])]
        views.append(ComponentView(
            id=c.id, kind=c.kind, name=c.name, description=descriptions.get(c.id, c.kind),
            status=c.status, since=c.since, updated_at=c.since,
            days=uptime.daily(history, now, days), uptime=uptime.overall(history, now, days)))
    indicator, description = page_indicator({c.id: c.status for c in views},
                                             [i.impact for i in open_])
    return Snapshot(
        now=now, page_name=config.notifier.page_name, indicator=indicator,
        description=description, components=views,
        open_incidents=[IncidentView(i, timeline.get(i.id, [])) for i in open_],
        past_incidents=[IncidentView(i, timeline.get(i.id, [])) for i in closed],
        facts=facts)
