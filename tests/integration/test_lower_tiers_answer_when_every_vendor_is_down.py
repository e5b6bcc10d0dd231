"""Every simulated vendor down: the FAQ, the cache, the queue and the maintenance message answer."""

import json

import nats

from schemas import subjects
from schemas.streams import LLM_QUEUE, STATUS
from tests.fixtures.degradation import all_vendors, ask, cache_entries, degraded_config, until
from tests.integration.conftest import StartRouter

BOOK = "Can you recommend a good book about sailing?"
FAQ_PASSWORD = ("Choose \"Forgot password?\" on the sign-in page and enter your email address: we "
                "send a reset link that is valid for one hour. Check your spam folder if it does "
                "not arrive.")


async def test_faq_cache_queue_and_maintenance_each_answer_their_questions(
        nc: nats.NATS, sim, start_router: StartRouter):
    config = degraded_config()
    await start_router(config=config)
    earlier = await ask(nc, BOOK)
    assert (earlier["status"], earlier["tier"], earlier["cached"]) == ("ok", "full", False)
    await until(lambda: _at_least(nc, 1), within=5)  # the answer reached the shared cache

    await all_vendors(sim, "down")

    faq = await ask(nc, "how do i reset my password")
    assert (faq["status"], faq["tier"], faq["cached"], faq["answered_by"]) == (
        "ok", "minimal", False, "faq:password-reset")
    assert faq["content"] == FAQ_PASSWORD
    assert faq["attempts"], "the chain was tried before the FAQ answered"

    for text in (BOOK, "  can you recommend a GOOD book about sailing?", "Can you recommend a good book about sailing"):
        cached = await ask(nc, text)
        assert (cached["status"], cached["tier"], cached["cached"], cached["answered_by"]) == (
            "ok", "minimal", True, "cache"), text
        assert cached["content"] == earlier["content"]

    rule = await ask(nc, "Why was I charged twice this month?")
    assert (rule["tier"], rule["answered_by"]) == ("minimal", "rule:billing")
    assert "https://help.example.com/billing/invoices" in rule["content"]

    parked = await ask(nc, "Write a haiku about databases", allow_queue=True)
    assert (parked["status"], parked["tier"], parked["ticket"]) == (
        "queued", "emergency", parked["request_id"])
    stored = await nc.jetstream().get_last_msg(LLM_QUEUE.name, subjects.LLM_QUEUE_INTERACTIVE)
    assert json.loads(stored.data)["request_id"] == parked["ticket"]

    maintenance = await ask(nc, "Write a haiku about databases")
    assert (maintenance["status"], maintenance["tier"], maintenance["answered_by"]) == (
        "ok", "emergency", "maintenance")
    assert maintenance["content"] == config.tiers.maintenance_message
    assert maintenance["ticket"] is None

    # One tier.changed per move (full -> minimal -> emergency), not one per request.
    changes = await _tier_changes(nc)
    assert [(c["from_tier"], c["to_tier"]) for c in changes] == [
        (None, "full"), ("full", "minimal"), ("minimal", "emergency")]


async def test_a_route_with_its_cache_off_never_serves_a_stored_answer(
        nc: nats.NATS, sim, start_router: StartRouter):
    config = degraded_config()
    off = config.tiers.cache.model_copy(update={"enabled": False})
    tiers = config.tiers.model_copy(update={"cache": off})
    await start_router(config=config.model_copy(update={"tiers": tiers}))
    assert (await ask(nc, BOOK))["tier"] == "full"
    await all_vendors(sim, "down")
    answer = await ask(nc, BOOK)
    assert (answer["tier"], answer["cached"], answer["answered_by"]) == ("emergency", False, "maintenance")
    assert await cache_entries(nc) == 0


async def _at_least(nc: nats.NATS, n: int) -> bool:
    return await cache_entries(nc) >= n


async def _tier_changes(nc: nats.NATS) -> list[dict]:
    js = nc.jetstream()
    sub = await js.subscribe(subjects.TIER_CHANGED, stream=STATUS.name, ordered_consumer=True)
    pending = (await js.stream_info(STATUS.name, subjects_filter=subjects.TIER_CHANGED)).state
    changes = []
    for _ in range(pending.messages):
        changes.append(json.loads((await sub.next_msg(timeout=2)).data))
    await sub.unsubscribe()
    return changes
