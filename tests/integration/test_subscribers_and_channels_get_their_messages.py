"""End users subscribe by e-mail or webhook to the components they care about, are told when
service resumes, and leave with one link; on-call gets Slack, PagerDuty and e-mail formats,
each checked at a real local receiver (aiohttp; aiosmtpd for SMTP)."""

import asyncio

import aiohttp
import nats

from schemas import subjects
from schemas.events import ProviderDown, ProviderUp, ServiceDown
from tests.fixtures.notifier import channel_env, channels, notifier_config, publish_event


async def test_subscribers_hear_of_their_components_and_unsubscribe_with_one_link(
        nc: nats.NATS, start_notifier, receiver, smtp_server):
    smtp_port, mailbox = smtp_server
    config = notifier_config(channels=channels(receiver, smtp_port=smtp_port),
                             smtp={"host": "127.0.0.1", "port": smtp_port,
                                   "from_addr": "status@lifeline.test"},
                             subscriber_webhooks="any")  # the receiver is on loopback
    notifier = await start_notifier(config, env=channel_env(receiver))
    url = notifier.status_url
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/subscribe", json={
                "webhook": f"{receiver.url}/sub/openai", "components": ["provider-openai"]}) as r:
            assert r.status == 201
            hook_sub = await r.json()
        async with http.post(f"{url}/subscribe", json={
                "webhook": f"{receiver.url}/sub/chat", "components": ["route-chat"]}) as r:
            assert r.status == 201
        async with http.post(f"{url}/subscribe", data={"email": "dana@example.com"}) as r:
            assert r.status == 200 and "unsubscribe" in (await r.text()).lower()
        for bad, why in [({"email": "nope"}, "not an e-mail"), ({}, "one of them"),
                         ({"webhook": "ftp://x"}, "http"),
                         ({"webhook": "http://x", "components": ["provider-x"]}, "unknown")]:
            async with http.post(f"{url}/subscribe", json=bad) as r:
                assert r.status == 400 and why in (await r.json())["error"], bad

    await publish_event(nc, subjects.PROVIDER_DOWN, ProviderDown(provider="openai", reason="503"))
    await publish_event(nc, subjects.PROVIDER_UP, ProviderUp(provider="openai", reason="ok"))
    told = await receiver.wait_for(
        lambda: receiver.at("/sub/openai") if len(receiver.at("/sub/openai")) >= 2 else None)
    assert [r.json()["type"] for r in receiver.at("/sub/openai")] == [
        "incident.opened", "incident.resolved"]
    assert all(r.json()["unsubscribe_url"] == hook_sub["unsubscribe_url"] for r in told)
    assert receiver.at("/sub/chat") == []  # not a component they asked for

    # the mail subscriber (every component) and the on-call mailbox: opened and resolved each
    mails = await mailbox.wait_for(4)
    by_to = {}
    for m in mails:
        by_to.setdefault(m["To"], []).append(m)
    dana, oncall = by_to["dana@example.com"], by_to["oncall@example.com"]
    assert [m["Subject"].split("]")[1].strip() for m in dana] == ["[Opened", "[Resolved"]
    assert dana[0]["List-Unsubscribe"].strip().startswith(f"<{url}/unsubscribe/")
    assert "failing over to anthropic" in dana[0].get_payload()
    assert "oncall@example.com" in oncall[1]["To"] and "lasted" in oncall[1]["Subject"]

    # Slack: incoming-webhook format; PagerDuty: Events API v2 trigger then resolve
    slack = [r.json() for r in receiver.at("/slack")]
    assert [s["text"].split("]")[0] for s in slack] == [":rotating_light: [Opened", ":white_check_mark: [Resolved"]
    assert slack[0]["blocks"][0]["type"] == "section"
    pd = [r.json() for r in receiver.at("/pd/v2/enqueue")]
    assert [p["event_action"] for p in pd] == ["trigger", "resolve"]
    assert pd[0]["routing_key"] == "pd-routing-key-0123456789abcdef"
    assert pd[0]["payload"]["severity"] == "error" and pd[0]["payload"]["source"]
    assert pd[0]["dedup_key"] == pd[1]["dedup_key"]

    # one link, and they hear no more
    async with aiohttp.ClientSession() as http:
        async with http.get(hook_sub["unsubscribe_url"]) as r:
            assert r.status == 200 and "no more" in await r.text()
        async with http.get(hook_sub["unsubscribe_url"]) as r:
            assert r.status == 404
    await publish_event(nc, subjects.PROVIDER_DOWN, ProviderDown(provider="openai", reason="503"))
    await publish_event(nc, subjects.SERVICE_DOWN, ServiceDown(service="router", instance="r1"))
    await receiver.wait_for(lambda: len(receiver.at("/hook")) >= 4)
    await mailbox.wait_for(8)  # dana hears of both, on-call of both
    assert len(receiver.at("/sub/openai")) == 2


async def test_webhook_subscribers_are_called_only_on_the_public_internet(
        nc: nats.NATS, start_notifier, receiver, tmp_path):
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'page.db'}"
    # A closed network's page (`any`) takes a subscriber on loopback.
    notifier = await start_notifier(notifier_config(subscriber_webhooks="any"), db_url=db_url)
    async with aiohttp.ClientSession() as http, http.post(
            f"{notifier.status_url}/subscribe", json={"webhook": f"{receiver.url}/sub"}) as r:
        assert r.status == 201
    await notifier.stop()

    # The default, `public`: inside addresses are refused when someone subscribes ...
    notifier = await start_notifier(notifier_config(), db_url=db_url, instance="notifier-2")
    async with aiohttp.ClientSession() as http:
        for url, where in [(f"{receiver.url}/sub", "127.0.0.1"),
                           ("http://169.254.169.254/latest/meta-data/", "169.254.169.254")]:
            async with http.post(f"{notifier.status_url}/subscribe", json={"webhook": url}) as r:
                error = (await r.json())["error"]
                assert r.status == 400 and error.startswith(
                    "the webhook URL must point to the public internet:") and where in error
    # ... and at delivery, for the subscription made before: given up, never called.
    await publish_event(nc, subjects.PROVIDER_DOWN, ProviderDown(provider="openai", reason="503"))
    failed = {"channel": "subscribers"}
    for _ in range(200):
        if notifier.metrics.get_sample_value("lifeline_notifier_alerts_failed_total", failed):
            break
        await asyncio.sleep(0.05)
    assert notifier.metrics.get_sample_value("lifeline_notifier_alerts_failed_total", failed) == 1
    assert receiver.at("/sub") == []


async def test_webhook_subscriptions_can_be_turned_off(start_notifier):
    notifier = await start_notifier(notifier_config(subscriber_webhooks="off"))
    async with aiohttp.ClientSession() as http, http.post(
            f"{notifier.status_url}/subscribe", json={"webhook": "https://example.com/h"}) as r:
        assert r.status == 400
        assert (await r.json())["error"] == "webhook subscriptions are not enabled here: subscribe by e-mail"
