"""The router obeys the `control` and `provider-health` KV buckets, live."""

import json
import time

import nats

from schemas import subjects
from schemas.control import (
    DOWNGRADE_PREFIX, KILLSWITCH_KEY, Downgrade, Killswitch, ProviderHealth, killswitch_key,
)
from schemas.streams import CONTROL, PROVIDER_HEALTH
from tests.integration.conftest import StartRouter, fast_config, requests_served

ASK = json.dumps({"messages": [{"role": "user", "content": "Where is my order?"}]}).encode()


async def ask(nc: nats.NATS) -> dict:
    return json.loads((await nc.request(subjects.LLM_COMPLETE, ASK, timeout=5)).data)


async def first_answer_where(nc: nats.NATS, predicate, *, within: float) -> tuple[dict, float]:
    """Ask until an answer satisfies `predicate`; fail if that takes longer than `within` s."""
    started = time.monotonic()
    while True:
        result = await ask(nc)
        elapsed = time.monotonic() - started
        if predicate(result):
            return result, elapsed
        assert elapsed < within, f"still {result['tier']} after {elapsed:.2f}s"


async def test_the_kill_switch_stops_every_vendor_call_within_a_second(
        nc: nats.NATS, sim, start_router: StartRouter):
    await start_router()
    assert (await ask(nc))["tier"] == "full"
    kv = await nc.jetstream().key_value(CONTROL.name)
    await kv.put(KILLSWITCH_KEY, Killswitch(engaged=True, reason="runaway spend").model_dump_json().encode())
    result, elapsed = await first_answer_where(nc, lambda r: r["tier"] == "emergency", within=1.0)
    assert result["status"] == "ok" and "temporarily unavailable" in result["content"]
    served = {v: await requests_served(sim, v) for v in ("openai", "anthropic", "local")}
    for _ in range(20):
        assert (await ask(nc))["tier"] == "emergency"
    assert {v: await requests_served(sim, v) for v in served} == served  # nobody called

    await kv.delete(KILLSWITCH_KEY)
    await first_answer_where(nc, lambda r: r["tier"] == "full", within=1.0)


async def test_a_provider_the_health_monitor_calls_down_is_skipped_until_it_is_up(
        nc: nats.NATS, sim, start_router: StartRouter):
    await start_router()
    kv = await nc.jetstream().key_value(PROVIDER_HEALTH.name)
    await kv.put("openai", ProviderHealth(state="down", reason="5 failed probes").model_dump_json().encode())
    await first_answer_where(nc, lambda r: r["provider"] == "anthropic", within=1.0)
    before = await requests_served(sim, "openai")
    for _ in range(10):
        result = await ask(nc)
        assert (result["provider"], result["fallback_depth"], len(result["attempts"])) == ("anthropic", 1, 1)
    assert await requests_served(sim, "openai") == before

    await kv.put("openai", ProviderHealth(state="up").model_dump_json().encode())
    await first_answer_where(nc, lambda r: r["provider"] == "openai", within=1.0)


async def test_a_garbled_control_value_is_ignored_and_the_router_keeps_serving(
        nc: nats.NATS, start_router: StartRouter):
    await start_router()
    kv = await nc.jetstream().key_value(CONTROL.name)
    await kv.put(KILLSWITCH_KEY, b"{engaged: yes")
    for _ in range(5):  # a model answers (a fallback may, on a loaded machine): not maintenance
        result = await ask(nc)
        assert result["status"] == "ok" and result["tier"] in ("full", "degraded"), result
    # The watch survived it: a valid value right after is obeyed.
    await kv.put(KILLSWITCH_KEY, Killswitch(engaged=True).model_dump_json().encode())
    await first_answer_where(nc, lambda r: r["tier"] == "emergency", within=1.0)


async def test_route_and_key_kill_switches_stop_their_traffic_only_within_a_second(
        nc: nats.NATS, sim, start_router: StartRouter):
    await start_router()
    kv = await nc.jetstream().key_value(CONTROL.name)
    engaged = Killswitch(engaged=True, reason="runaway key").model_dump_json().encode()
    await kv.put(killswitch_key("key:k-leak"), engaged)
    leaked = json.dumps({"messages": [{"role": "user", "content": "hi"}], "key_id": "k-leak"}).encode()

    async def ask_as(body: bytes) -> dict:
        return json.loads((await nc.request(subjects.LLM_COMPLETE, body, timeout=5)).data)
    started = time.monotonic()
    while (await ask_as(leaked))["tier"] != "emergency":
        assert time.monotonic() - started < 1.0, "key kill switch not obeyed within a second"
    served = {v: await requests_served(sim, v) for v in ("openai", "anthropic", "local")}
    for _ in range(10):
        assert (await ask_as(leaked))["tier"] == "emergency"
    assert {v: await requests_served(sim, v) for v in served} == served  # no vendor call
    assert (await ask(nc))["tier"] == "full"  # every other key is served

    await kv.put(killswitch_key("route:chat"), engaged)
    result, _ = await first_answer_where(nc, lambda r: r["tier"] == "emergency", within=1.0)
    await kv.delete(killswitch_key("route:chat"))
    await kv.delete(killswitch_key("key:k-leak"))
    await first_answer_where(nc, lambda r: r["tier"] == "full", within=1.0)
    assert (await ask_as(leaked))["tier"] == "full"


async def test_a_downgrade_flag_moves_the_route_to_its_cheaper_chain_within_a_second(
        nc: nats.NATS, sim, start_router: StartRouter):
    await start_router(config=fast_config(downgrade_chain=["local/llama-3.1-8b"]))
    kv = await nc.jetstream().key_value(CONTROL.name)
    await kv.put(DOWNGRADE_PREFIX + "chat", Downgrade(active=True, reason="monthly budget").model_dump_json().encode())
    result, elapsed = await first_answer_where(nc, lambda r: r["provider"] == "local", within=1.0)
    assert result["tier"] == "degraded"
    before = await requests_served(sim, "openai")
    for _ in range(5):
        assert (await ask(nc))["provider"] == "local"
    assert await requests_served(sim, "openai") == before
    await kv.put(DOWNGRADE_PREFIX + "chat", Downgrade(active=False).model_dump_json().encode())
    await first_answer_where(nc, lambda r: r["provider"] == "openai", within=1.0)
