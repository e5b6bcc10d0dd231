"""The notifier's SQL: components and their history, incidents and their timeline, facts,
processed event ids, subscribers. Functions take an open connection so that the caller decides
what one transaction holds (an event's effects, its alerts and its processed mark together).
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from . import tables as t
from .incidents import Incident, Transition
from .signals import Change


class Conflict(Exception):
    """Another writer changed the incident first; the caller re-reads and decides again."""


@dataclass(frozen=True)
class Component:
    id: str
    kind: str
    name: str
    status: str
    since: datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class Update:
    id: int
    incident_id: str
    at: datetime
    status: str
    body: str
    transition: str
    actor: str | None


# --- processed events ----------------------------------------------------------------------------

async def mark_processed(conn: AsyncConnection, event_id: str, subject: str, at: datetime) -> bool:
    """False when the event was handled before (a redelivery or a replay)."""
    seen = await conn.scalar(select(t.processed_events.c.event_id)
                             .where(t.processed_events.c.event_id == event_id))
    if seen is not None:
        return False
    await conn.execute(insert(t.processed_events).values(event_id=event_id, subject=subject,
                                                         processed_at=at))
    return True


async def prune_processed(conn: AsyncConnection, before: datetime) -> int:
    """Ids older than the STATUS stream keeps can never come back."""
    result = await conn.execute(t.processed_events.delete()
                                .where(t.processed_events.c.processed_at < before))
    return result.rowcount or 0


# --- components --------------------------------------------------------------------------------

async def components(conn: AsyncConnection) -> dict[str, Component]:
    rows = await conn.execute(select(t.components))
    return {r.id: Component(r.id, r.kind, r.name, r.status, r.since, dict(r.detail or {}))
            for r in rows}


async def ensure_component(conn: AsyncConnection, cid: str, kind: str, name: str,
                           at: datetime) -> None:
    """Known from the configuration: operational until told otherwise, observed from `at`."""
    exists = await conn.scalar(select(t.components.c.id).where(t.components.c.id == cid))
    if exists is not None:
        return
    try:
        async with conn.begin_nested():
            await conn.execute(insert(t.components).values(
                id=cid, kind=kind, name=name, status="operational", since=at, detail={},
                updated_at=at))
    except IntegrityError:  # another instance, starting beside this one, seeded it a moment ago
        return
    await conn.execute(insert(t.component_history).values(
        component=cid, status="operational", started_at=at, reason="first seen"))


async def apply_change(conn: AsyncConnection, change: Change, status: str, at: datetime) -> bool:
    """Stores the new detail; opens a history row when the status changes. True if it did."""
    current = await conn.execute(select(t.components.c.status, t.components.c.since)
                                 .where(t.components.c.id == change.id))
    row = current.first()
    if row is None:
        await conn.execute(insert(t.components).values(
            id=change.id, kind=change.kind, name=change.name, status=status, since=at,
            detail=change.detail, updated_at=at))
        await conn.execute(insert(t.component_history).values(
            component=change.id, status=status, started_at=at, reason=change.reason))
        return True
    at = max(at, row.since)  # another host's clock may lag: history never runs backwards
    changed = row.status != status
    values: dict[str, Any] = {"detail": change.detail, "updated_at": at}
    if changed:
        values.update(status=status, since=at)
        h = t.component_history
        await conn.execute(update(h).where(and_(h.c.component == change.id, h.c.ended_at.is_(None)))
                           .values(ended_at=at))
        await conn.execute(insert(h).values(component=change.id, status=status, started_at=at,
                                            reason=change.reason))
    await conn.execute(update(t.components).where(t.components.c.id == change.id).values(**values))
    return changed


async def history(conn: AsyncConnection, since: datetime) -> dict[str, list[Row[Any]]]:
    h = t.component_history
    rows = await conn.execute(select(h).where(or_(h.c.ended_at.is_(None), h.c.ended_at >= since))
                              .order_by(h.c.component, h.c.started_at))
    out: dict[str, list[Row[Any]]] = {}
    for r in rows:
        out.setdefault(r.component, []).append(r)
    return out


# --- facts -------------------------------------------------------------------------------------

async def put_fact(conn: AsyncConnection, key: str, value: dict[str, Any], at: datetime) -> None:
    result = await conn.execute(update(t.facts).where(t.facts.c.key == key)
                                .values(value=value, at=at))
    if not result.rowcount:
        await conn.execute(insert(t.facts).values(key=key, value=value, at=at))


async def facts(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    return {r.key: dict(r.value) for r in await conn.execute(select(t.facts))}


# --- incidents ---------------------------------------------------------------------------------

def _incident(r: Row[Any]) -> Incident:
    return Incident(**{f: getattr(r, f) for f in Incident.__dataclass_fields__})


async def latest_incident(conn: AsyncConnection, key: str) -> Incident | None:
    """The open incident under `key`, else the one resolved most recently."""
    i = t.incidents
    rows = await conn.execute(select(i).where(i.c.key == key)
                              .order_by(i.c.resolved_at.is_(None).desc(), i.c.resolved_at.desc())
                              .limit(1))
    row = rows.first()
    return _incident(row) if row else None


async def incident(conn: AsyncConnection, incident_id: str) -> Incident | None:
    row = (await conn.execute(select(t.incidents).where(t.incidents.c.id == incident_id))).first()
    return _incident(row) if row else None


async def incidents(conn: AsyncConnection, *, unresolved: bool | None = None, limit: int = 50,
                    since: datetime | None = None) -> list[Incident]:
    i = t.incidents
    q = select(i).order_by(i.c.started_at.desc()).limit(limit)
    if unresolved is True:
        q = q.where(i.c.resolved_at.is_(None))
    elif unresolved is False:
        q = q.where(i.c.resolved_at.is_not(None))
    if since is not None:
        q = q.where(i.c.started_at >= since)
    return [_incident(r) for r in await conn.execute(q)]


async def open_count(conn: AsyncConnection) -> int:
    return await conn.scalar(select(func.count()).select_from(t.incidents)
                             .where(t.incidents.c.resolved_at.is_(None))) or 0


async def updates(conn: AsyncConnection, incident_ids: Sequence[str]) -> dict[str, list[Update]]:
    """Each incident's timeline, newest first."""
    if not incident_ids:
        return {}
    u = t.incident_updates
    rows = await conn.execute(select(u).where(u.c.incident_id.in_(list(incident_ids)))
                              .order_by(u.c.at.desc(), u.c.id.desc()))
    out: dict[str, list[Update]] = {}
    for r in rows:
        out.setdefault(r.incident_id, []).append(
            Update(r.id, r.incident_id, r.at, r.status, r.body, r.transition, r.actor))
    return out


async def save_transition(conn: AsyncConnection, tr: Transition) -> None:
    """Inserts or updates the incident (only from the version it was read at) and adds the
    transition to its timeline. Raises Conflict if someone else got there first."""
    values = asdict(tr.incident)
    if tr.new:
        try:
            async with conn.begin_nested():
                await conn.execute(insert(t.incidents).values(**values))
        except IntegrityError:  # another instance opened one under this key a moment ago
            raise Conflict(tr.incident.key) from None
    else:
        i = t.incidents
        result = await conn.execute(
            update(i).where(and_(i.c.id == tr.incident.id, i.c.version == tr.incident.version - 1))
            # last_alert_at is only ever moved forward, by set_last_alert
            .values(**{k: v for k, v in values.items() if k not in ("id", "last_alert_at")}))
        if result.rowcount != 1:
            raise Conflict(tr.incident.id)
    await conn.execute(insert(t.incident_updates).values(
        incident_id=tr.incident.id, at=tr.at, status=tr.incident.status, body=tr.body,
        transition=tr.kind, actor=tr.actor))


async def set_last_alert(conn: AsyncConnection, incident_id: str, at: datetime) -> None:
    await conn.execute(update(t.incidents).where(t.incidents.c.id == incident_id)
                       .values(last_alert_at=at))


async def monitoring(conn: AsyncConnection) -> list[Incident]:
    rows = await conn.execute(select(t.incidents).where(and_(
        t.incidents.c.status == "monitoring", t.incidents.c.resolved_at.is_(None))))
    return [_incident(r) for r in rows]


# --- admin audit -------------------------------------------------------------------------------

async def record_action(conn: AsyncConnection, *, at: datetime, actor: str, action: str,
                        detail: dict[str, Any], remote: str | None) -> None:
    await conn.execute(insert(t.admin_actions).values(at=at, actor=actor, action=action,
                                                      detail=detail, remote=remote))


async def actions(conn: AsyncConnection, limit: int = 20) -> list[Row[Any]]:
    a = t.admin_actions
    return list(await conn.execute(select(a).order_by(a.c.id.desc()).limit(limit)))


async def fingerprint(conn: AsyncConnection) -> tuple[Any, ...]:
    """Changes whenever anything the page shows changes (by any instance)."""
    return tuple((await conn.execute(select(
        select(func.max(t.component_history.c.id)).scalar_subquery(),
        select(func.max(t.incident_updates.c.id)).scalar_subquery(),
        select(func.max(t.facts.c.at)).scalar_subquery(),
        select(func.count()).select_from(t.component_history).scalar_subquery(),
    ))).one())
