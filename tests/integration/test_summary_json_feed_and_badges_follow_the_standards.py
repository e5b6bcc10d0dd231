"""What other tools read: /api/v2/summary.json validates against the shape of Atlassian
Statuspage's summary (JSON Schema below, written from their public API), the Atom feed parses
with feedparser, and every component has an SVG badge."""

import asyncio
import xml.etree.ElementTree as ET

import aiohttp
import feedparser
import jsonschema
import nats

from schemas import subjects
from schemas.events import DrillFinished, IncidentOpened, ProviderDown, ProviderUp, TierChanged
from tests.fixtures.notifier import ADMIN_TOKEN, eventually, notifier_config, publish_event

DATE = {"type": "string", "format": "date-time"}
NULLABLE_DATE = {"type": ["string", "null"], "format": "date-time"}
COMPONENT_STATUS = {"enum": ["operational", "degraded_performance", "partial_outage",
                             "major_outage", "under_maintenance"]}
STATUSPAGE_SUMMARY = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["page", "status", "components", "incidents", "scheduled_maintenances"],
    "properties": {
        "page": {"type": "object", "required": ["id", "name", "url", "time_zone", "updated_at"],
                 "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                                "url": {"type": "string"}, "time_zone": {"type": "string"},
                                "updated_at": DATE}},
        "status": {"type": "object", "required": ["indicator", "description"],
                   "properties": {"indicator": {"enum": ["none", "minor", "major", "critical"]},
                                  "description": {"type": "string"}}},
        "components": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "name", "status", "created_at", "updated_at", "position",
                         "description", "showcase", "start_date", "group_id", "page_id",
                         "group", "only_show_if_degraded"],
            "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                           "status": COMPONENT_STATUS, "created_at": DATE, "updated_at": DATE,
                           "position": {"type": "integer"},
                           "description": {"type": ["string", "null"]},
                           "showcase": {"type": "boolean"}, "group": {"type": "boolean"},
                           "group_id": {"type": ["string", "null"]},
                           "page_id": {"type": "string"},
                           "only_show_if_degraded": {"type": "boolean"}}}},
        "incidents": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "name", "status", "created_at", "updated_at", "monitoring_at",
                         "resolved_at", "impact", "shortlink", "started_at", "page_id",
                         "incident_updates"],
            "properties": {
                "id": {"type": "string"}, "name": {"type": "string"},
                "status": {"enum": ["investigating", "identified", "monitoring", "resolved",
                                    "postmortem"]},
                "impact": {"enum": ["none", "minor", "major", "critical"]},
                "created_at": DATE, "updated_at": NULLABLE_DATE, "monitoring_at": NULLABLE_DATE,
                "resolved_at": NULLABLE_DATE, "started_at": DATE, "shortlink": {"type": "string"},
                "page_id": {"type": "string"},
                "incident_updates": {"type": "array", "minItems": 1, "items": {
                    "type": "object",
                    "required": ["id", "status", "body", "incident_id", "created_at",
                                 "updated_at", "display_at", "affected_components",
                                 "deliver_notifications", "custom_tweet", "tweet_id"],
                    "properties": {"id": {"type": "string"}, "body": {"type": "string"},
                                   "status": {"type": "string"},
                                   "incident_id": {"type": "string"}, "created_at": DATE,
                                   "updated_at": DATE, "display_at": DATE,
                                   "deliver_notifications": {"type": "boolean"}}}}}}},
        "scheduled_maintenances": {"type": "array"},
    },
}


async def test_summary_validates_the_feed_parses_and_badges_are_svg(nc: nats.NATS, start_notifier):
    notifier = await start_notifier(notifier_config(), env={"LIFELINE_ADMIN_TOKEN": ADMIN_TOKEN})
    url = notifier.status_url
    told: asyncio.Queue = asyncio.Queue()
    await nc.subscribe(subjects.INCIDENT_OPENED, cb=told.put)
    down = ProviderDown(provider="openai", reason="503s")
    await publish_event(nc, subjects.PROVIDER_DOWN, down)
    await publish_event(nc, subjects.DRILL_FINISHED, DrillFinished(
        drill_id="d1", scenario="primary-down", passed=True, figures={"rto_s": 1.2}))
    # the incident is announced on the bus (incident_id names it; id is the event's own)
    opened = IncidentOpened.model_validate_json((await asyncio.wait_for(told.get(), 5)).data)
    assert opened.component == "provider-openai" and opened.status == "investigating"
    assert opened.incident_id != opened.id and opened.source.startswith("notifier/")
    await publish_event(nc, subjects.TIER_CHANGED, TierChanged(route="chat", from_tier="full",
                                                               to_tier="minimal", reason="all down"))
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as http:
        async with http.post(f"{url}/admin/incidents", json={
                "title": "Slow answers in the EU", "impact": "minor", "component": "route-chat",
                "message": "Looking into it", "actor": "carol"}) as r:
            assert r.status == 201
            manual = (await r.json())["incident_id"]
        async with http.post(f"{url}/admin/incidents/{manual}/updates", json={
                "message": "Found it: a bad deploy", "status": "identified"}) as r:
            assert r.status == 200
        async with http.post(f"{url}/admin/incidents/{manual}/resolve", json={
                "message": "Rolled back"}) as r:
            assert r.status == 200 and (await r.json())["status"] == "resolved"
        async with http.post(f"{url}/admin/incidents/{manual}/resolve", json={}) as r:
            assert r.status == 409
        async with http.post(f"{url}/admin/incidents", json={"title": "x", "impact": "huge"}) as r:
            assert r.status == 400 and "impact must be one of" in (await r.json())["error"]

        async def both_open() -> dict | None:  # applied in order by the durable consumer
            async with http.get(f"{url}/api/v2/summary.json") as r:
                summary = await r.json()
            return summary if len(summary["incidents"]) == 2 else None

        summary = await eventually(both_open, "two open incidents")
        jsonschema.validate(summary, STATUSPAGE_SUMMARY,
                            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        assert summary["status"]["indicator"] == "major"
        statuses = {c["id"]: c["status"] for c in summary["components"]}
        assert statuses["provider-openai"] == "major_outage"
        assert statuses["route-chat"] == "partial_outage"
        assert opened.incident_id in {i["id"] for i in summary["incidents"]}
        async with http.get(url) as r:
            page = " ".join((await r.text()).split())
        assert "primary-down passed" in page  # the latest drill, and a row per kind of drill:
        assert 'id="drills-by-kind"' in page and "<td>primary-down</td><td>passed</td>" in page
        assert sorted(i["name"] for i in summary["incidents"]) == [
            "Provider openai outage — traffic failing over to anthropic",
            "Route chat is answering from cached and static answers only"]

        async with http.get(f"{url}/history.atom") as r:
            assert r.headers["Content-Type"].startswith("application/atom+xml")
            feed = feedparser.parse(await r.read())
        assert not feed.bozo, feed.bozo_exception
        assert feed.version == "atom10"
        titles = [e.title for e in feed.entries]
        assert "Slow answers in the EU" in titles and len(titles) == 3
        rolled = next(e for e in feed.entries if e.title == "Slow answers in the EU")
        assert "Rolled back" in rolled.content[0].value and rolled.link.endswith(manual)

        async with http.get(f"{url}/badge/provider-openai.svg") as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("image/svg+xml")
            svg = ET.fromstring(await r.text())
        assert svg.tag.endswith("svg") and "major outage" in ET.tostring(svg, encoding="unicode")
        async with http.get(f"{url}/badge/provider-nope.svg") as r:
            assert r.status == 404

        await publish_event(nc, subjects.PROVIDER_UP, ProviderUp(provider="openai", reason="ok"))
        async def badge_operational() -> bool:
            async with http.get(f"{url}/badge/provider-openai.svg") as r:
                return "operational" in await r.text()

        await eventually(badge_operational, "the badge turning operational")
