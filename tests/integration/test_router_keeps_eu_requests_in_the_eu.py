"""Residency over a real bus: an EU request reaches only EU members, also when all are down."""

import json

import nats

from schemas import subjects
from tests.integration.conftest import StartRouter, requests_served, set_mode

EU_ASK = json.dumps({"messages": [{"role": "user", "content": "Mein Paket?"}], "region": "eu"}).encode()


async def ask(nc: nats.NATS) -> dict:
    return json.loads((await nc.request(subjects.LLM_COMPLETE, EU_ASK, timeout=5)).data)


async def test_an_eu_request_never_reaches_a_non_eu_member_even_with_every_eu_member_down(
        nc: nats.NATS, sim, start_router: StartRouter):
    await start_router()  # shipped chain: openai (us), anthropic (us), local (eu)
    answered = await ask(nc)
    assert (answered["status"], answered["provider"]) == ("ok", "local")
    await set_mode(sim, "local", "down")
    outside = {v: await requests_served(sim, v) for v in ("openai", "anthropic")}
    for _ in range(30):
        result = await ask(nc)
        # It degrades (no model answers: the cache, the FAQ or the maintenance message does) and
        # never crosses.
        assert result["tier"] in ("minimal", "emergency"), result
        assert {a["provider"] for a in result["attempts"]} <= {"local"}
    assert {v: await requests_served(sim, v) for v in outside} == outside
    await set_mode(sim, "local", "ok")
