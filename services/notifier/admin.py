"""The admin console: read it freely; every change needs the admin token and is recorded with
the actor. The token comes from an environment variable and is kept only as its SHA-256 digest,
compared in constant time; it is never logged and never read from a URL (URLs end up in logs).
"""

import hashlib
import hmac
import json
import logging
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from schemas.control import KILLSWITCH_KEY, Killswitch, killswitch_key

from . import store
from .incidents import IMPACTS, OPEN_STATUSES
from .processing import AlreadyResolved, NotFound
from .snapshot import IncidentView
from .web import (
    read_fields, bus_key, clock_key, config_key, engine_key, html, processor_key, renderer_key,
    snapshot, token_key, wants_json,
)

log = logging.getLogger(__name__)


class TokenCheck:
    def __init__(self, token: str | None) -> None:
        self.digest = hashlib.sha256(token.encode()).digest() if token else None

    def ok(self, given: str | None) -> bool:
        if self.digest is None or not given:
            return False
        return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), self.digest)


def _given_token(request: web.Request, data: dict[str, Any]) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    token = data.get("token")
    return token if isinstance(token, str) else None


async def authorised(request: web.Request) -> tuple[dict[str, Any], str]:
    """The request's fields and its actor; raises 401 without the right token."""
    data = await read_fields(request)
    check: TokenCheck = request.app[token_key]  # type: ignore[assignment]
    if not check.ok(_given_token(request, data)):
        reason = ("admin is disabled: set " + request.app[config_key].notifier.admin_token_env
                  if check.digest is None else "missing or wrong admin token")
        log.warning("refused admin %s %s from %s: %s", request.method, request.path,
                    request.remote, reason)
        raise web.HTTPUnauthorized(text=json.dumps({"error": reason}), content_type="application/json",
                                   headers={"WWW-Authenticate": 'Bearer realm="lifeline-admin"'})
    actor = str(data.get("actor") or request.headers.get("X-Lifeline-Actor") or "").strip()
    return data, actor[:128] or "admin"


async def audit(request: web.Request, actor: str, action: str, detail: dict[str, Any]) -> None:
    app = request.app
    async with app[processor_key].write_lock, app[engine_key].begin() as conn:
        await store.record_action(conn, at=app[clock_key](), actor=actor, action=action,
                                  detail=detail, remote=request.remote)


def done(request: web.Request, body: dict[str, Any], status: int = 200) -> web.Response:
    """JSON for API callers; back to the console for a browser's form post."""
    if wants_json(request):
        return web.json_response(body, status=status)
    raise web.HTTPSeeOther("/admin")


def bad(request: web.Request, message: str, status: int = 400) -> web.Response:
    if wants_json(request):
        return web.json_response({"error": message}, status=status)
    return html(request.app[renderer_key].message("Refused", message, "/admin", "Back"), status)


async def console(request: web.Request) -> web.Response:
    app = request.app
    snap = await snapshot(request)
    raw = await app[bus_key].kv_get(KILLSWITCH_KEY)
    try:
        switch = Killswitch.model_validate_json(raw) if raw else None
    except ValidationError:
        switch = None
    async with app[engine_key].connect() as conn:
        actions = await store.actions(conn)
    return html(app[renderer_key].admin(
        killswitch=switch, components=snap.components, open_incidents=snap.open_incidents,
        impacts=list(IMPACTS), statuses=list(OPEN_STATUSES), actions=actions))


async def killswitch(request: web.Request) -> web.Response:
    """The big red button: writes the control KV every router obeys, with who and why.

    The write is the whole action. The cost guard's control watcher announces every change of
    the bucket once (killswitch.engaged/released, id `<key>.<revision>`), whoever wrote it: the
    console, `lifeline killswitch` or the cost guard itself. Announcing here as well would tell
    the status page twice, under two ids. A release is written (engaged: false, with its actor
    and reason), not deleted, so the announcement can say who released it and why.
    """
    data, actor = await authorised(request)
    action, scope = data.get("action"), str(data.get("scope") or "all")
    reason = str(data.get("reason") or "").strip() or f"{action}d from the admin console"
    if action not in ("engage", "release"):
        return bad(request, "action must be engage or release")
    try:
        key = killswitch_key(scope)
    except ValueError as e:
        return bad(request, str(e))
    value = Killswitch(engaged=action == "engage", reason=reason, actor=actor, scope=scope,
                       at=request.app[clock_key]())
    await request.app[bus_key].kv_put(key, value.model_dump_json().encode())
    await audit(request, actor, f"killswitch.{action}", {"scope": scope, "reason": reason})
    return done(request, {"killswitch": action == "engage", "scope": scope, "actor": actor,
                          "reason": reason})


def _choice(data: dict[str, Any], field: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    value = data.get(field) or default
    if value is not None and value not in allowed:
        raise ValueError(f"{field} must be one of {', '.join(allowed)}, not {value!r}")
    return value


async def open_incident(request: web.Request) -> web.Response:
    data, actor = await authorised(request)
    title = str(data.get("title") or "").strip()
    if not title:
        return bad(request, "title is required")
    try:
        impact = _choice(data, "impact", IMPACTS, "minor")
        status = _choice(data, "status", OPEN_STATUSES, "investigating")
    except ValueError as e:
        return bad(request, str(e))
    incident = await request.app[processor_key].open_incident(
        title=title, component=str(data.get("component") or "other"), impact=impact or "minor",
        status=status or "investigating", body=str(data.get("message") or title), actor=actor)
    await audit(request, actor, "incident.open", {"incident_id": incident.id, "title": title})
    return done(request, {"incident_id": incident.id, "status": incident.status}, status=201)


async def update_incident(request: web.Request) -> web.Response:
    data, actor = await authorised(request)
    return await _change(request, data, actor, resolve=False)


async def resolve_incident(request: web.Request) -> web.Response:
    data, actor = await authorised(request)
    return await _change(request, data, actor, resolve=True)


async def _change(request: web.Request, data: dict[str, Any], actor: str, *, resolve: bool) -> web.Response:
    incident_id = request.match_info["incident_id"]
    message = str(data.get("message") or "").strip()
    try:
        status = _choice(data, "status", OPEN_STATUSES + ("resolved",), None)
    except ValueError as e:
        return bad(request, str(e))
    if not message and not resolve:
        return bad(request, "message is required")
    try:
        incident = await request.app[processor_key].update_incident(
            incident_id, status=status, body=message, actor=actor, resolve=resolve)
    except NotFound:
        return bad(request, f"no incident {incident_id}", 404)
    except AlreadyResolved:
        return bad(request, f"incident {incident_id} is already resolved", 409)
    action = "incident.resolve" if resolve or incident.status == "resolved" else "incident.update"
    await audit(request, actor, action, {"incident_id": incident_id, "status": incident.status})
    view = IncidentView(incident, [])
    return done(request, {"incident_id": incident.id, "status": incident.status,
                          "duration_s": incident.duration_s, "duration": view.duration})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/admin", console),
        web.post("/admin/killswitch", killswitch),
        web.post("/admin/incidents", open_incident),
        web.post("/admin/incidents/{incident_id}/updates", update_incident),
        web.post("/admin/incidents/{incident_id}/resolve", resolve_incident),
    ]
