"""The admin console: state changes need the token (401 without it, or with a wrong one), are
recorded with the actor, and the big red button really stops the mesh: the next request
through a real router is answered by the maintenance tier, and the cost guard's announcement
of the change opens the incident."""

import json
import logging
import time

import aiohttp
import nats
import pytest

from schemas import subjects
from schemas.control import KILLSWITCH_KEY, Killswitch
from schemas.streams import CONTROL
from tests.fixtures.notifier import ADMIN_TOKEN, eventually, notifier_config
from tests.integration.conftest import fast_config

ASK = json.dumps({"messages": [{"role": "user", "content": "Where is my order?"}]}).encode()
CHANGES = [("/admin/killswitch", {"action": "engage", "reason": "x"}),
           ("/admin/incidents", {"title": "t"}),
           ("/admin/incidents/nope/updates", {"message": "m"}),
           ("/admin/incidents/nope/resolve", {})]


async def tier_within(nc: nats.NATS, tier: str, seconds: float) -> dict:
    started = time.monotonic()
    while True:
        answer = json.loads((await nc.request(subjects.LLM_COMPLETE, ASK, timeout=5)).data)
        if answer["tier"] == tier:
            return answer
        assert time.monotonic() - started < seconds, f"still {answer['tier']}"


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + ADMIN_TOKEN},
    {"Authorization": "Bearer " + ADMIN_TOKEN + "x"}])
async def test_every_change_is_refused_without_the_right_token(start_notifier, headers, caplog):
    caplog.set_level(logging.DEBUG)
    notifier = await start_notifier(notifier_config(), env={"LIFELINE_ADMIN_TOKEN": ADMIN_TOKEN})
    async with aiohttp.ClientSession() as http:
        for path, body in CHANGES:
            async with http.post(notifier.status_url + path, json=body, headers=headers) as r:
                assert r.status == 401, (path, r.status, await r.text())
            # a browser form with a wrong token too
            async with http.post(notifier.status_url + path, data={**body, "token": "guess"}) as r:
                assert r.status == 401
        async with http.get(notifier.status_url + "/admin") as r:  # reading is public
            assert r.status == 200
        async with http.get(notifier.status_url + "/admin/killswitch?token=" + ADMIN_TOKEN) as r:
            assert r.status == 405  # a token never travels in a URL
    assert not any(ADMIN_TOKEN in r.getMessage() for r in caplog.records)


async def test_with_no_token_configured_admin_is_off(start_notifier):
    notifier = await start_notifier(notifier_config(), env={})
    async with aiohttp.ClientSession() as http:
        async with http.post(notifier.status_url + "/admin/incidents", json={"title": "t"},
                             headers={"Authorization": "Bearer anything"}) as r:
            assert r.status == 401
            assert "LIFELINE_ADMIN_TOKEN" in (await r.json())["error"]


async def test_the_kill_switch_button_puts_the_router_on_the_maintenance_tier(
        nc: nats.NATS, sqlite_url, start_router, start_cost_guard, start_notifier, page, caplog):
    caplog.set_level(logging.DEBUG)
    await start_router()
    await start_cost_guard(fast_config(), sqlite_url)  # announces the button's KV write
    notifier = await start_notifier(notifier_config(fast_config()),
                                    env={"LIFELINE_ADMIN_TOKEN": ADMIN_TOKEN})
    assert (await tier_within(nc, "full", 1))["tier"] == "full"

    await page.goto(notifier.status_url + "/admin")
    form = page.locator("#killswitch form")
    await form.locator('[name="token"]').fill(ADMIN_TOKEN)
    await form.locator('[name="actor"]').fill("alice")
    await form.locator('[name="reason"]').fill("runaway agent loop")
    await page.click("#engage")
    await page.wait_for_selector('#killswitch-state[data-engaged="true"]', timeout=5000)
    assert "alice" in await page.inner_text("#killswitch-state")

    answer = await tier_within(nc, "emergency", 1.0)  # obeyed at once (the router watches KV)
    assert answer["status"] == "ok" and answer["provider"] is None
    kv = await nc.jetstream().key_value(CONTROL.name)
    switch = Killswitch.model_validate_json((await kv.get(KILLSWITCH_KEY)).value)
    assert (switch.engaged, switch.actor, switch.reason) == (True, "alice", "runaway agent loop")

    async with aiohttp.ClientSession() as http:  # the incident, from the cost guard's announcement
        async def unresolved() -> list:
            async with http.get(notifier.status_url + "/api/v2/incidents/unresolved.json") as r:
                return (await r.json())["incidents"]

        open_ = await eventually(unresolved, "the kill switch incident")
    assert [i["name"] for i in open_] == ["Kill switch engaged (all routes): answers are the maintenance message"]
    assert "alice" in open_[0]["incident_updates"][0]["body"]
    await page.goto(notifier.status_url + "/admin")
    assert "killswitch.engage by alice" in " ".join((await page.inner_text("#audit")).split())

    form = page.locator("#killswitch form")
    await form.locator('[name="token"]').fill(ADMIN_TOKEN)
    await form.locator('[name="actor"]').fill("bob")
    await page.click("#release")
    await page.wait_for_selector('#killswitch-state[data-engaged="false"]', timeout=5000)
    await tier_within(nc, "full", 1.0)
    assert not any(ADMIN_TOKEN in r.getMessage() for r in caplog.records)
