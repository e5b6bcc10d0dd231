"""llm.stream goes through the engine's own prepare step, so a stream obeys exactly what a
completion obeys: scoped kill switches, a budget downgrade, admission by a real cost guard, the
session's history; and a chain that fails before the first token streams the lower tier's
answer. Real nats-server, real router, real cost guard, the vendor simulator."""


import nats
import pytest

from schemas import subjects
from schemas.control import DOWNGRADE_PREFIX, Downgrade, Killswitch, killswitch_key
from schemas.events import HistoryReply, HistoryRequest
from schemas.streams import CONTROL
from services.runtime.bus import provision
from tests.fixtures.cost_guard import priced_config
from tests.fixtures.degradation import all_vendors, degraded_config
from tests.fixtures.gateway import QUESTION, stream_config, stream_over_bus
from tests.integration.conftest import requests_served
from tests.integration.test_router_carries_session_history import TURNS


def text_of(chunks) -> str:
    return "".join(c.text for c in chunks if c.type == "delta")


async def put_control(nc: nats.NATS, key: str, value: Killswitch | Downgrade) -> None:
    """Written before the router starts: a router is ready only once it has read the bucket."""
    js = nc.jetstream()
    await provision(js)
    await (await js.key_value(CONTROL.name)).put(key, value.model_dump_json().encode())


async def test_a_key_kill_switch_stops_that_keys_streams_only(nc, sim, start_router):
    config = stream_config()
    await put_control(nc, killswitch_key("key:k-leak"), Killswitch(engaged=True, reason="leaked"))
    await start_router(config=config)
    served = await requests_served(sim, "openai")
    stopped = await stream_over_bus(nc, {"messages": [QUESTION], "key_id": "k-leak"})
    assert [c.type for c in stopped] == ["start", "delta", "end"]
    assert (stopped[0].tier, stopped[0].provider) == ("emergency", None)
    assert text_of(stopped) == config.tiers.maintenance_message
    assert await requests_served(sim, "openai") == served  # no vendor was called for it
    other = await stream_over_bus(nc, {"messages": [QUESTION], "key_id": "k-fine"})
    assert (other[0].tier, other[0].provider, other[-1].type) == ("full", "openai", "end")


async def test_a_downgrade_moves_streams_to_the_cheaper_chain(nc, sim, start_router):
    config = stream_config()
    chat = config.routes["chat"].model_copy(update={"downgrade_chain": ["local/llama-3.1-8b"]})
    config = config.model_copy(update={"routes": {**config.routes, "chat": chat}})
    await put_control(nc, DOWNGRADE_PREFIX + "chat", Downgrade(active=True, reason="monthly budget"))
    await start_router(config=config)
    chunks = await stream_over_bus(nc, {"messages": [QUESTION]})
    assert (chunks[0].provider, chunks[0].tier, chunks[-1].type) == ("local", "degraded", "end")
    assert (chunks[-1].provider, chunks[-1].tier) == ("local", "degraded")
    assert await requests_served(sim, "openai") == 0


async def test_a_user_over_budget_is_refused_a_stream(nc, sqlite_url, start_router, start_cost_guard):
    config = priced_config(spend=[{"scope": "user", "period": "day", "limit_usd": 0.05,
                                   "action": "block"}])
    config = config.model_copy(update={"gateway": stream_config().gateway})
    await start_cost_guard(config, sqlite_url)
    await start_router(config=config)
    ends = []
    for _ in range(10):  # about a cent each: the budget is spent after four or five
        chunks = await stream_over_bus(nc, {"messages": [QUESTION], "user_id": "alice",
                                            "max_tokens": 40})
        ends.append(chunks[-1])
        if chunks[-1].type == "error":
            assert len(chunks) == 1  # refused before any provider was called
            break
    kinds = [c.type for c in ends]
    assert 3 <= kinds.count("end") <= 6 and kinds[-1] == "error", kinds
    refused = ends[-1].error
    assert refused.kind == "budget_exhausted" and "user alice" in refused.message
    bob = await stream_over_bus(nc, {"messages": [QUESTION], "user_id": "bob", "max_tokens": 40})
    assert bob[-1].type == "end"  # bob's budget is his own


async def test_a_streamed_turn_carries_the_sessions_history(nc, sim, start_router):
    asked: list[HistoryRequest] = []

    async def answer(msg) -> None:  # the conversation store's reply, by a stand-in
        request = HistoryRequest.model_validate_json(msg.data)
        asked.append(request)
        await msg.respond(HistoryReply(session_id=request.session_id, turns=TURNS)
                          .model_dump_json().encode())

    await nc.subscribe(subjects.CONVERSATION_HISTORY_GET, cb=answer)
    await nc.flush()
    await start_router(config=stream_config())
    alone = await stream_over_bus(nc, {"messages": [QUESTION]})
    carried = await stream_over_bus(nc, {"messages": [QUESTION], "session_id": "s-ana"})
    assert [(a.session_id, a.limit) for a in asked] == [("s-ana", 20)]
    assert carried[-1].type == "end" and "refund policy" in text_of(carried)
    history_words = sum(len(m["content"].split()) for m in TURNS[0].messages) + 8
    assert carried[-1].usage.input_tokens - alone[-1].usage.input_tokens >= history_words


@pytest.mark.parametrize(("question", "answered_by"), [
    ("how do i reset my password", "faq"), ("Write a haiku about databases", "maintenance")])
async def test_a_chain_that_fails_before_the_first_token_streams_the_lower_tier(
        nc, sim, start_router, question, answered_by):
    config = degraded_config()
    config = config.model_copy(update={"gateway": stream_config().gateway})
    await start_router(config=config)
    await all_vendors(sim, "down")
    chunks = await stream_over_bus(nc, {"messages": [{"role": "user", "content": question}]})
    assert [c.type for c in chunks] == ["start", "delta", "end"]
    tier = "minimal" if answered_by == "faq" else "emergency"
    assert (chunks[0].tier, chunks[-1].finish_reason) == (tier, "stop")
    if answered_by == "maintenance":
        assert text_of(chunks) == config.tiers.maintenance_message
    else:
        assert "reset link" in text_of(chunks)
