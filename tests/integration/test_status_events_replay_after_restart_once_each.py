"""The STATUS consumer is durable: events published while the notifier is down are applied when
it comes back, each once (idempotent on the event id, whatever the message id), and a message
that cannot be parsed goes to deadletter.<subject> with the reason and stops nothing."""

import asyncio

import aiohttp
import nats

from schemas import subjects
from schemas.events import BackupCompleted, BackupFailed, ServiceDown
from tests.fixtures.notifier import eventually, notifier_config, publish_event


async def incidents(url: str) -> list[dict]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/api/v2/incidents.json") as r:
        return (await r.json())["incidents"]


async def test_missed_events_are_applied_once_after_a_restart(nc: nats.NATS, store_url, start_notifier):
    config = notifier_config()
    first = await start_notifier(config, db_url=store_url, instance="notifier-a")
    failed = BackupFailed(snapshot_id="s1", stage="verify", reason="checksum mismatch")
    await publish_event(nc, subjects.BACKUP_FAILED, failed)
    await eventually(lambda: incidents(first.status_url), "the backup incident")
    await first.stop()

    dead: asyncio.Queue = asyncio.Queue()
    await nc.subscribe(subjects.deadletter(subjects.SERVICE_DOWN), cb=dead.put)
    js = nc.jetstream()
    # while nobody listens: the backup succeeds, a redelivered copy of the failure (new message
    # id, same event id) arrives late, garbage arrives, and the router dies
    await publish_event(nc, subjects.BACKUP_COMPLETED, BackupCompleted(
        snapshot_id="s2", target="dir", artifacts=1, rows=1, bytes=1, duration_s=0.1, events_seq=1))
    await js.publish(subjects.BACKUP_FAILED, failed.model_dump_json().encode(),
                     headers={"Nats-Msg-Id": "another-message-id"})
    await js.publish(subjects.SERVICE_DOWN, b"{not json", headers={"Nats-Msg-Id": "garbage-1"})
    await publish_event(nc, subjects.SERVICE_DOWN, ServiceDown(service="router", instance="r1",
                                                               reason="no heartbeat for 6s"))

    second = await start_notifier(config, db_url=store_url, instance="notifier-b")

    async def both() -> list[dict] | None:
        found = await incidents(second.status_url)
        return found if len(found) == 2 else None

    found = await eventually(both, "the router incident after the restart")
    by_name = {i["name"]: i for i in found}
    backup = by_name["Backup failed at the verify stage"]
    assert backup["status"] == "resolved"  # the late copy of the failure did not reopen it
    assert [u["status"] for u in backup["incident_updates"]] == ["resolved", "investigating"]
    assert by_name["Service router is down"]["status"] == "investigating"

    letter = await asyncio.wait_for(dead.get(), 5)
    assert letter.data == b"{not json"
    assert "json" in letter.headers[subjects.DEADLETTER_REASON_HEADER].lower()
    # and the page's fact about the last backup is the newest one
    async with aiohttp.ClientSession() as http, http.get(second.status_url) as r:
        assert "snapshot s2" in await r.text()


async def test_an_event_that_keeps_failing_is_set_aside_and_the_rest_flow(
        nc: nats.NATS, pg_url, start_notifier):
    """PostgreSQL refuses a 300-character component id (SQLite would store it): not a passing
    trouble, so after a few tries it is dead-lettered instead of blocking every later event."""
    notifier = await start_notifier(notifier_config(), db_url=pg_url)
    dead: asyncio.Queue = asyncio.Queue()
    await nc.subscribe(subjects.deadletter(subjects.SERVICE_DOWN), cb=dead.put)
    await publish_event(nc, subjects.SERVICE_DOWN, ServiceDown(service="x" * 300, instance="i"))
    await publish_event(nc, subjects.SERVICE_DOWN, ServiceDown(service="router", instance="r1"))

    letter = await asyncio.wait_for(dead.get(), 10)
    assert "failed 5 times" in letter.headers[subjects.DEADLETTER_REASON_HEADER]

    async def router_incident() -> list[dict]:
        return [i for i in await incidents(notifier.status_url) if "router" in i["name"]]

    await eventually(router_incident, "the next event applied")
