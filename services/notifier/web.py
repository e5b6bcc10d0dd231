"""The status page's HTTP side (public, read-only): the page and its live updates, incident
pages, Statuspage-shaped JSON, the Atom feed, SVG badges, subscribe and unsubscribe.
"""

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anybadge
from aiohttp import web
from aiohttp_sse import sse_response
from sqlalchemy.ext.asyncio import AsyncEngine

from services.runtime.config import LifelineConfig

from . import feed, outbox, store, summary
from .hub import CLOSE, LiveHub
from .metrics import Metrics
from .processing import Processor
from .public_urls import NotPublic, check_public
from .render import Renderer
from .snapshot import IncidentView, Snapshot, load


@dataclass
class Bus:
    """What the notifier needs from NATS: the control KV (whose changes the cost guard
    announces) and event publishing (the senders' outbox)."""

    kv_get: Callable[[str], Awaitable[bytes | None]]
    kv_put: Callable[[str, bytes], Awaitable[None]]
    publish: Callable[[str, bytes, str], Awaitable[None]]


config_key = web.AppKey("config", LifelineConfig)
engine_key = web.AppKey("engine", AsyncEngine)
processor_key = web.AppKey("processor", Processor)
renderer_key = web.AppKey("renderer", Renderer)
hub_key = web.AppKey("hub", LiveHub)
metrics_key = web.AppKey("metrics", Metrics)
clock_key = web.AppKey("clock", Callable[[], datetime])
bus_key = web.AppKey("bus", Bus)
token_key = web.AppKey("admin_token", object)  # admin.TokenCheck (typed there; no import cycle)

LIVENESS_S = 5.0
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
BADGE_COLOURS = {"operational": "#2fcc66", "degraded_performance": "#f1c40f",
                 "partial_outage": "#e67e22", "major_outage": "#e74c3c"}


def base_url(request: web.Request) -> str:
    public = request.app[config_key].notifier.public_url
    return (public or str(request.url.origin())).rstrip("/")


async def snapshot(request: web.Request) -> Snapshot:
    app = request.app
    return await load(app[engine_key], app[config_key], app[clock_key]())


def html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, content_type="text/html", status=status)


async def index(request: web.Request) -> web.Response:
    return html(request.app[renderer_key].page(await snapshot(request)))


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `page` carries the re-rendered live block on every change."""
    app = request.app
    hub, metrics = app[hub_key], app[metrics_key]
    queue = hub.join()
    metrics.sse_clients.inc()
    try:
        async with sse_response(request) as resp:
            # The page may have been rendered before a change this stream would not repeat.
            await resp.send(app[renderer_key].live(await snapshot(request)), event="page")
            while resp.is_connected():
                try:  # wake now and then to notice a reader that went away (the pings fail)
                    page = await asyncio.wait_for(queue.get(), LIVENESS_S)
                except TimeoutError:
                    continue
                if page == CLOSE:
                    break
                await resp.send(page, event="page")
        return resp
    except ConnectionResetError:  # the reader left while we were writing: nothing to answer
        return web.Response(status=204)
    finally:
        hub.leave(queue)
        metrics.sse_clients.dec()


async def summary_json(request: web.Request) -> web.Response:
    return web.json_response(summary.summary(await snapshot(request), base_url(request)))


async def status_json(request: web.Request) -> web.Response:
    return web.json_response(summary.status(await snapshot(request), base_url(request)))


async def components_json(request: web.Request) -> web.Response:
    snap = await snapshot(request)
    return web.json_response({"page": summary.page(snap, base_url(request)),
                              "components": [summary.component(c, n)
                                             for n, c in enumerate(snap.components, 1)]})


async def _views(request: web.Request, *, unresolved: bool | None, limit: int = 50) -> list[IncidentView]:
    async with request.app[engine_key].connect() as conn:
        found = await store.incidents(conn, unresolved=unresolved, limit=limit)
        timeline = await store.updates(conn, [i.id for i in found])
    return [IncidentView(i, timeline.get(i.id, [])) for i in found]


async def incidents_json(request: web.Request) -> web.Response:
    views = await _views(request, unresolved=None)
    return web.json_response(summary.incidents(await snapshot(request), base_url(request), views))


async def unresolved_json(request: web.Request) -> web.Response:
    views = await _views(request, unresolved=True)
    return web.json_response(summary.incidents(await snapshot(request), base_url(request), views))


async def incident_page(request: web.Request) -> web.Response:
    incident_id = request.match_info["incident_id"]
    async with request.app[engine_key].connect() as conn:
        found = await store.incident(conn, incident_id)
        timeline = await store.updates(conn, [incident_id])
    if found is None:
        return html(request.app[renderer_key].message("Not found", f"No incident {incident_id}."), 404)
    return html(request.app[renderer_key].incident(IncidentView(found, timeline.get(incident_id, []))))


async def history_page(request: web.Request) -> web.Response:
    return html(request.app[renderer_key].history(await _views(request, unresolved=None, limit=200)))


async def atom(request: web.Request) -> web.Response:
    views = await _views(request, unresolved=None, limit=50)
    app = request.app
    body = feed.atom(views, url=base_url(request), title=app[config_key].notifier.page_name,
                     updated=max((v.incident.updated_at for v in views), default=app[clock_key]()))
    return web.Response(body=body, content_type="application/atom+xml", charset="utf-8")


async def badge(request: web.Request) -> web.Response:
    cid = request.match_info["component"]
    async with request.app[engine_key].connect() as conn:
        found = (await store.components(conn)).get(cid)
    if found is None:
        raise web.HTTPNotFound(text=f"no component {cid!r}")
    svg = anybadge.Badge(label=found.name, value=found.status.replace("_", " "),
                         default_color=BADGE_COLOURS.get(found.status, "#95a5a6")).badge_svg_text
    # Short cache: READMEs embed badges through image proxies that would keep a stale outage.
    return web.Response(text=svg, content_type="image/svg+xml",
                        headers={"Cache-Control": "max-age=30"})


# --- subscribers -------------------------------------------------------------------------------

async def subscribe_form(request: web.Request) -> web.Response:
    snap = await snapshot(request)
    return html(request.app[renderer_key].subscribe(snap.components))


async def read_fields(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        data = await request.json()
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="the body must be a JSON object")
        return data
    form = await request.post()
    out: dict[str, Any] = {k: form.get(k) for k in form}
    out["components"] = list(form.getall("components", []))
    return out


def wants_json(request: web.Request) -> bool:
    return (request.content_type == "application/json"
            or "application/json" in request.headers.get("Accept", ""))


async def subscribe(request: web.Request) -> web.Response:
    app = request.app
    data = await read_fields(request)
    email, hook = (data.get("email") or "").strip(), (data.get("webhook") or "").strip()
    components = [str(c) for c in data.get("components") or []]
    problem = None
    if bool(email) == bool(hook):
        problem = "give an e-mail address or a webhook URL (one of them)"
    elif email and not EMAIL.match(email):
        problem = f"{email!r} is not an e-mail address"
    elif email and app[config_key].notifier.smtp is None:
        problem = "e-mail subscriptions are not enabled here (no smtp configured)"
    elif hook and not re.match(r"^https?://", hook):
        problem = "the webhook URL must start with http:// or https://"
    elif hook and (mode := app[config_key].notifier.subscriber_webhooks) == "off":
        problem = "webhook subscriptions are not enabled here: subscribe by e-mail"
    elif hook and mode == "public":
        try:
            await check_public(hook)
        except NotPublic as e:
            problem = f"the webhook URL must point to the public internet: {e}"
    async with app[engine_key].connect() as conn:
        known = set(await store.components(conn))
    if problem is None and (unknown := [c for c in components if c not in known]):
        problem = f"unknown components: {', '.join(unknown)}"
    if problem:
        if wants_json(request):
            return web.json_response({"error": problem}, status=400)
        return html(app[renderer_key].message("Not subscribed", problem, "/subscribe", "Try again"), 400)
    processor = app[processor_key]
    async with processor.write_lock, app[engine_key].begin() as conn:
        sub = await outbox.subscribe(conn, kind="email" if email else "webhook",
                                     address=email or hook, components=components,
                                     at=app[clock_key]())
    link = f"{base_url(request)}/unsubscribe/{sub.token}"
    if wants_json(request):
        return web.json_response({"id": sub.id, "kind": sub.kind, "address": sub.address,
                                  "components": sub.components, "unsubscribe_url": link}, status=201)
    return html(app[renderer_key].message(
        "Subscribed", f"{sub.address} will be told when {'these components' if components else 'anything'} "
        "breaks and when service resumes. Keep this link to unsubscribe with one click:", link))


async def unsubscribe(request: web.Request) -> web.Response:
    app = request.app
    async with app[processor_key].write_lock, app[engine_key].begin() as conn:
        gone = await outbox.unsubscribe(conn, request.match_info["token"])
    if gone is None:
        return html(app[renderer_key].message("Not found", "That link is not (or no longer) valid."), 404)
    return html(app[renderer_key].message("Unsubscribed", f"{gone.address} will get no more updates."))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/", index), web.get("/events", events),
        web.get("/api/v2/summary.json", summary_json), web.get("/api/v2/status.json", status_json),
        web.get("/api/v2/components.json", components_json),
        web.get("/api/v2/incidents.json", incidents_json),
        web.get("/api/v2/incidents/unresolved.json", unresolved_json),
        web.get("/incidents/{incident_id}", incident_page), web.get("/history", history_page),
        web.get("/history.atom", atom), web.get("/badge/{component}.svg", badge),
        web.get("/subscribe", subscribe_form), web.post("/subscribe", subscribe),
        web.get("/unsubscribe/{token}", unsubscribe), web.post("/unsubscribe/{token}", unsubscribe),
    ]


async def close_streams(app: web.Application) -> None:
    """on_shutdown: end every open event stream, or shutdown would wait for them."""
    app[hub_key].close()
    await asyncio.sleep(0)
