"""conversation.history.get: a session's turns, oldest first; the newest N on request; never more
than one bus message holds; a bad request answered with what is wrong; `lifeline history`."""

import json
from datetime import timedelta

import nats

from schemas import subjects
from schemas.events import HistoryReply
from tests.fixtures.conversation_store import (
    StartStore, completed, lifeline, publish_completed, store_config, utc, wait_for_turns,
)

START = utc(2026, 5, 4, 10)


async def history(nc: nats.NATS, body: dict | bytes) -> HistoryReply:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = await nc.request(subjects.CONVERSATION_HISTORY_GET, data, timeout=10)
    return HistoryReply.model_validate_json(reply.data)


async def test_history_is_oldest_first_and_limited_to_the_newest(
        nc: nats.NATS, db_url: str, start_store: StartStore):
    await start_store(db_url, config=store_config(history={"max_turns": 8}))
    # Published out of order: the store orders by when each answer was given.
    events = [completed(i, session="s-1", at=START + timedelta(seconds=i)) for i in range(10)]
    await publish_completed(nc.jetstream(), events[5:] + events[:5] + [completed(99, session="s-2")])
    assert await wait_for_turns(db_url, 11) == 11

    whole = await history(nc, {"session_id": "s-1"})
    assert [t.request_id for t in whole.turns] == [e.request_id for e in events[2:]]  # max_turns 8
    assert whole.truncated and whole.error is None
    newest = await history(nc, {"session_id": "s-1", "limit": 3})
    assert [t.request_id for t in newest.turns] == [e.request_id for e in events[7:]]
    turn = newest.turns[-1]
    assert (turn.at, turn.route, turn.content, turn.provider, turn.model, turn.tier) == (
        START + timedelta(seconds=9), "chat", "answer 9", "openai", "gpt-4o-mini", "full")
    assert turn.messages == [{"role": "user", "content": "question 9"}]
    nobody = await history(nc, {"session_id": "never-seen"})
    assert (nobody.session_id, nobody.turns, nobody.error, nobody.truncated) == (
        "never-seen", [], None, False)


async def test_a_reply_never_outgrows_one_bus_message(
        nc: nats.NATS, sqlite_url: str, start_store: StartStore):
    await start_store(sqlite_url)
    big = "y" * 150_000  # ten of these are 1.5 MB; NATS carries 1 MB a message by default
    events = [completed(i, session="s-big", content=big, at=START + timedelta(seconds=i))
              for i in range(10)]
    await publish_completed(nc.jetstream(), events)
    assert await wait_for_turns(sqlite_url, 10) == 10
    reply = await history(nc, {"session_id": "s-big"})
    assert reply.truncated and 3 <= len(reply.turns) < 10
    assert [t.request_id for t in reply.turns] == [e.request_id for e in events[-len(reply.turns):]]


async def test_a_bad_history_request_is_answered_with_what_is_wrong(
        nc: nats.NATS, sqlite_url: str, start_store: StartStore):
    await start_store(sqlite_url)
    missing = await history(nc, {"limit": 5})
    assert "session_id: Field required" in missing.error and missing.turns == []
    zero = await history(nc, {"session_id": "s-1", "limit": 0})
    assert zero.session_id == "s-1" and "limit: Input should be greater than 0" in zero.error
    assert "not a valid HistoryRequest" in (await history(nc, b"{nope")).error
    assert (await history(nc, {"session_id": "s-1"})).error is None  # still serving


async def test_lifeline_history_command(nc: nats.NATS, nats_server, sqlite_url: str,
                                        start_store: StartStore):
    await start_store(sqlite_url)
    events = [completed(i, session="s-cli", at=START + timedelta(seconds=i)) for i in range(3)]
    await publish_completed(nc.jetstream(), events)
    assert await wait_for_turns(sqlite_url, 3) == 3
    env = {"NATS_URL": nats_server.url}
    code, out, err = await lifeline("history", "s-cli", "--json", env=env)
    assert code == 0, out + err
    assert [t["request_id"] for t in json.loads(out)["turns"]] == [e.request_id for e in events]
    code, out, _ = await lifeline("history", "s-cli", env=env)
    assert code == 0 and "question 2" in out and "answer 2" in out and "3 turns in session s-cli" in out
