"""Statuspage-shaped JSON (`/api/v2/summary.json` and friends), so existing tooling reads us.

Shape as Atlassian Statuspage publishes it: page, status{indicator, description}, components[],
incidents[] (unresolved, each with incident_updates[]), scheduled_maintenances[].
"""

from datetime import datetime
from typing import Any

from .snapshot import ComponentView, IncidentView, Snapshot

PAGE_ID = "lifeline"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def page(snap: Snapshot, url: str) -> dict[str, Any]:
    return {"id": PAGE_ID, "name": snap.page_name, "url": url, "time_zone": "Etc/UTC",
            "updated_at": _iso(snap.updated_at)}


def component(c: ComponentView, position: int) -> dict[str, Any]:
    return {
        "id": c.id, "name": c.name, "status": c.status, "created_at": _iso(c.since),
        "updated_at": _iso(c.updated_at), "position": position, "description": c.description,
        "showcase": True, "start_date": None, "group_id": None, "page_id": PAGE_ID,
        "group": False, "only_show_if_degraded": False,
    }


def incident(view: IncidentView, url: str) -> dict[str, Any]:
    i = view.incident
    return {
        "id": i.id, "name": i.title, "status": i.status, "created_at": _iso(i.started_at),
        "updated_at": _iso(i.updated_at), "monitoring_at": _iso(i.monitoring_at),
        "resolved_at": _iso(i.resolved_at), "impact": i.impact,
        "shortlink": f"{url}/incidents/{i.id}", "started_at": _iso(i.started_at),
        "page_id": PAGE_ID,
        "incident_updates": [{
            "id": str(u.id), "status": u.status, "body": u.body, "incident_id": i.id,
            "created_at": _iso(u.at), "updated_at": _iso(u.at), "display_at": _iso(u.at),
            "affected_components": None, "deliver_notifications": u.transition != "monitoring",
            "custom_tweet": None, "tweet_id": None,
        } for u in view.updates],
        "components": [],
        # Ours, beside Statuspage's fields: what the resolution measured.
        "duration_s": i.duration_s,
    }


def summary(snap: Snapshot, url: str) -> dict[str, Any]:
    return {
        "page": page(snap, url),
        "status": {"indicator": snap.indicator, "description": snap.description},
        "components": [component(c, n) for n, c in enumerate(snap.components, 1)],
        "incidents": [incident(v, url) for v in snap.open_incidents],
        "scheduled_maintenances": [],
    }


def status(snap: Snapshot, url: str) -> dict[str, Any]:
    return {"page": page(snap, url),
            "status": {"indicator": snap.indicator, "description": snap.description}}


def incidents(snap: Snapshot, url: str, views: list[IncidentView]) -> dict[str, Any]:
    return {"page": page(snap, url), "incidents": [incident(v, url) for v in views]}
