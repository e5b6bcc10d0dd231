"""The durable queue of everything the notifier sends: an outbox table.

Rows are written in the same transaction as the incident change that caused them, so an alert
exists exactly when its transition does (a JetStream work queue would need a second, separate
write after the commit). Delivery is in order per channel: only the oldest undelivered row of
a channel is eligible, so a PagerDuty resolve never overtakes its trigger while the receiver is
down. Any instance may deliver; a row is claimed by a conditional UPDATE on its lease, which
works the same on SQLite and PostgreSQL.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from . import tables as t


@dataclass(frozen=True)
class Item:
    seq: int
    id: str
    channel: str
    kind: str
    target: str | None
    incident_id: str | None
    payload: dict[str, Any]
    created_at: datetime
    attempts: int


async def enqueue(conn: AsyncConnection, *, channel: str, kind: str, payload: dict[str, Any],
                  at: datetime, incident_id: str | None = None, target: str | None = None,
                  item_id: str | None = None) -> str:
    item_id = item_id or uuid4().hex
    await conn.execute(insert(t.outbox).values(
        id=item_id, channel=channel, kind=kind, target=target, incident_id=incident_id,
        payload=payload, created_at=at, next_attempt_at=at, attempts=0))
    return item_id


async def recent_counts(conn: AsyncConnection, since: datetime) -> dict[str, int]:
    o = t.outbox
    rows = await conn.execute(select(o.c.channel, func.count()).where(o.c.created_at >= since)
                              .group_by(o.c.channel))
    return {channel: n for channel, n in rows}


async def due(conn: AsyncConnection, now: datetime, *, scan: int = 500) -> tuple[list[Item], datetime | None]:
    """The head of each channel's queue if it is due now, and when the next one falls due."""
    o = t.outbox
    rows = await conn.execute(select(o).where(and_(o.c.delivered_at.is_(None), o.c.failed_at.is_(None)))
                              .order_by(o.c.seq).limit(scan))
    heads: dict[str, Any] = {}
    for r in rows:
        heads.setdefault(r.channel, r)
    ready, next_due = [], None
    for r in heads.values():
        when = max(r.next_attempt_at, r.lease_until or r.next_attempt_at)
        if when <= now:
            ready.append(Item(r.seq, r.id, r.channel, r.kind, r.target, r.incident_id,
                              dict(r.payload), r.created_at, r.attempts))
        elif next_due is None or when < next_due:
            next_due = when
    return ready, next_due


async def claim(conn: AsyncConnection, item: Item, now: datetime, lease_s: float) -> bool:
    """True if this caller now holds `item` for `lease_s` (nobody else can have it)."""
    o = t.outbox
    result = await conn.execute(
        update(o).where(and_(o.c.seq == item.seq, o.c.delivered_at.is_(None),
                             o.c.failed_at.is_(None), o.c.attempts == item.attempts,
                             or_(o.c.lease_until.is_(None), o.c.lease_until <= now)))
        .values(lease_until=now + timedelta(seconds=lease_s), attempts=item.attempts + 1))
    return result.rowcount == 1


async def delivered(conn: AsyncConnection, item: Item, now: datetime) -> None:
    await conn.execute(update(t.outbox).where(t.outbox.c.seq == item.seq)
                       .values(delivered_at=now, lease_until=None, last_error=None))


async def retry(conn: AsyncConnection, item: Item, at: datetime, error: str) -> None:
    await conn.execute(update(t.outbox).where(t.outbox.c.seq == item.seq)
                       .values(next_attempt_at=at, lease_until=None, last_error=error[:2000]))


async def failed(conn: AsyncConnection, item: Item, now: datetime, error: str) -> None:
    await conn.execute(update(t.outbox).where(t.outbox.c.seq == item.seq)
                       .values(failed_at=now, lease_until=None, last_error=error[:2000]))


async def prune(conn: AsyncConnection, before: datetime) -> None:
    o = t.outbox
    await conn.execute(delete(o).where(and_(o.c.created_at < before,
                                            or_(o.c.delivered_at.is_not(None), o.c.failed_at.is_not(None)))))


# --- subscribers -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Subscriber:
    id: str
    kind: str
    address: str
    components: list[str]
    token: str


async def subscribe(conn: AsyncConnection, *, kind: str, address: str, components: list[str],
                    at: datetime) -> Subscriber:
    """Stores (or, for a known address, re-scopes) a subscription; returns it with its token."""
    s = t.subscribers
    row = (await conn.execute(select(s).where(and_(s.c.kind == kind, s.c.address == address)))).first()
    if row is not None:
        await conn.execute(update(s).where(s.c.id == row.id).values(components=components))
        return Subscriber(row.id, kind, address, components, row.token)
    sub = Subscriber(uuid4().hex, kind, address, components, secrets.token_urlsafe(24))
    await conn.execute(insert(s).values(id=sub.id, kind=kind, address=address,
                                        components=components, token=sub.token, created_at=at))
    return sub


async def unsubscribe(conn: AsyncConnection, token: str) -> Subscriber | None:
    s = t.subscribers
    row = (await conn.execute(select(s).where(s.c.token == token))).first()
    if row is None:
        return None
    await conn.execute(delete(s).where(s.c.id == row.id))
    return Subscriber(row.id, row.kind, row.address, list(row.components), row.token)


async def subscribers(conn: AsyncConnection) -> list[Subscriber]:
    rows = await conn.execute(select(t.subscribers).order_by(t.subscribers.c.created_at))
    return [Subscriber(r.id, r.kind, r.address, list(r.components), r.token) for r in rows]


async def subscriber(conn: AsyncConnection, sub_id: str) -> Subscriber | None:
    r = (await conn.execute(select(t.subscribers).where(t.subscribers.c.id == sub_id))).first()
    return Subscriber(r.id, r.kind, r.address, list(r.components), r.token) if r else None
