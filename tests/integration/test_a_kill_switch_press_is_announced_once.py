"""One announcer for kill switches: the admin console's button only writes the control KV (who
and why in the value); the cost guard's control watcher announces the change, once, with the
console's actor. Before, the console announced too: two killswitch.engaged per press, under two
ids. Real nats-server, notifier, cost guard (SQLite), HTTP."""

import aiohttp
import nats

from schemas import subjects
from schemas.control import KILLSWITCH_KEY, Killswitch
from schemas.streams import CONTROL
from tests.fixtures.notifier import ADMIN_TOKEN, notifier_config
from tests.integration.conftest import fast_config


async def press(http: aiohttp.ClientSession, url: str, **fields: str) -> None:
    async with http.post(url + "/admin/killswitch", json=fields,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as r:
        assert r.status == 200, await r.text()


async def test_one_press_gives_one_announcement_with_the_consoles_actor(
        nc: nats.NATS, sqlite_url, start_cost_guard, start_notifier, status_events):
    config = notifier_config(fast_config())
    await start_cost_guard(config, sqlite_url)
    notifier = await start_notifier(config, env={"LIFELINE_ADMIN_TOKEN": ADMIN_TOKEN})
    async with aiohttp.ClientSession() as http:
        await press(http, notifier.status_url, action="engage", actor="alice",
                    reason="runaway agent loop")
        [engaged] = await status_events.wait(subjects.KILLSWITCH_ENGAGED)
        kv = await nc.jetstream().key_value(CONTROL.name)
        entry = await kv.get(KILLSWITCH_KEY)
        assert Killswitch.model_validate_json(entry.value).actor == "alice"
        await press(http, notifier.status_url, action="release", actor="bob", reason="fixed")
        # Everything the engage press caused is stored before the release's announcement.
        [released] = await status_events.wait(subjects.KILLSWITCH_RELEASED)
    assert len(status_events.of(subjects.KILLSWITCH_ENGAGED)) == 1
    assert (engaged["id"], engaged["actor"], engaged["reason"], engaged["scope"]) == (
        f"{KILLSWITCH_KEY}.{entry.revision}", "alice", "runaway agent loop", "all")
    assert engaged["source"].startswith("cost-guard/")
    assert (released["actor"], released["reason"]) == ("bob", "fixed")  # a release says who
    assert len(status_events.of(subjects.KILLSWITCH_RELEASED)) == 1
