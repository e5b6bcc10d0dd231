"""conversation.purge deletes every turn of one user and nothing else, announces it on
conversation.purged with the counts, and a late event of that user does not bring turns back."""

import json
from datetime import timedelta

import nats

from schemas import subjects
from schemas.events import ConversationPurged, PurgeReply
from schemas.streams import STATUS
from services.conversation_store.store import TurnStore
from tests.fixtures.conversation_store import (
    StartStore, completed, lifeline, publish_completed, wait_for_turns,
)


async def purge(nc: nats.NATS, body: dict | bytes) -> PurgeReply:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = await nc.request(subjects.CONVERSATION_PURGE, data, timeout=10)
    return PurgeReply.model_validate_json(reply.data)


async def test_purge_removes_every_turn_of_the_user_and_nothing_else(
        nc: nats.NATS, db_url: str, start_store: StartStore):
    js = nc.jetstream()
    await start_store(db_url)
    events = [completed(i, user=f"u-{i % 4}", session=f"s-{i % 4}-{i % 3}") for i in range(120)]
    # The purged user's session also holds a turn nobody signed (before login): it goes too.
    events.append(completed(500, user=None, session="s-2-0"))
    # Another user's turn in a session the purged user started: it stays, with its session.
    events.append(completed(501, user="u-1", session="s-2-1"))
    await publish_completed(js, events)
    assert await wait_for_turns(db_url, len(events)) == len(events)
    async with TurnStore(db_url) as store:
        before = {r.request_id: r.user_id async for r in store.records()}
        conversations_before = await store.count_conversations()

    reply = await purge(nc, {"user_id": "u-2", "reason": "erasure request #42", "actor": "dpo"})

    doomed = {rid for rid, user in before.items() if user == "u-2"} | {events[120].request_id}
    assert reply.error is None
    assert (reply.turns, reply.conversations) == (len(doomed), 2)  # s-2-0, s-2-2 emptied
    async with TurnStore(db_url) as store:
        after = {r.request_id: r async for r in store.records()}
        assert await store.count(user_id="u-2") == 0
        assert await store.count_conversations() == conversations_before - 2
    assert set(after) == set(before) - doomed  # nothing else
    assert after[events[121].request_id].session_id == "s-2-1"

    stored = await js.get_last_msg(STATUS.name, subjects.CONVERSATION_PURGED)
    announced = ConversationPurged.model_validate_json(stored.data)
    assert (announced.id, announced.user_id, announced.turns, announced.conversations,
            announced.reason, announced.actor) == (
        reply.event_id, "u-2", len(doomed), 2, "erasure request #42", "dpo")

    # An event of u-2 from before the purge, arriving late (backlog, redelivery): left out.
    # One from after the purge (the user came back): kept.
    late = completed(900, user="u-2", session="s-9", at=announced.occurred_at - timedelta(seconds=5))
    new = completed(901, user="u-2", session="s-9")
    await publish_completed(js, [late, new])
    assert await wait_for_turns(db_url, 1, user_id="u-2") == 1
    async with TurnStore(db_url) as store:
        assert [r.request_id async for r in store.records(user_id="u-2")] == [new.request_id]


async def test_a_bad_purge_request_is_answered_with_what_is_wrong(
        nc: nats.NATS, sqlite_url: str, start_store: StartStore):
    await start_store(sqlite_url)
    no_reason = await purge(nc, {"user_id": "u-1"})
    assert no_reason.user_id == "u-1" and "reason: Field required" in no_reason.error
    assert "not a valid PurgeRequest" in (await purge(nc, b"[1, 2]")).error


async def test_lifeline_purge_command(nc: nats.NATS, nats_server, sqlite_url: str,
                                      start_store: StartStore):
    await start_store(sqlite_url)
    await publish_completed(nc.jetstream(), [completed(i, user="u-cli") for i in range(3)])
    assert await wait_for_turns(sqlite_url, 3) == 3
    code, out, err = await lifeline("purge", "--user", "u-cli", "--reason", "test", "--json",
                                    env={"NATS_URL": nats_server.url, "USER": "oncall"})
    assert code == 0, out + err
    reply = json.loads(out)
    assert (reply["user_id"], reply["turns"], reply["conversations"]) == ("u-cli", 3, 0)
    assert await wait_for_turns(sqlite_url, 0, timeout=0) == 0
