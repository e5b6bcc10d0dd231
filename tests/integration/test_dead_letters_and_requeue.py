"""What cannot be answered goes to deadletter.llm.queue.<priority> with the reason, the queue keeps
draining, and `lifeline queue` shows it and puts it back."""

import asyncio
import json
import os
import subprocess
import sys

import nats
import pytest

from schemas import subjects
from schemas.streams import DEADLETTER, LLM_QUEUE
from services.cli.queue import report
from services.router.queue_worker import durable
from services.runtime.natsd import NatsServer
from tests.fixtures.degradation import all_vendors, degraded_config, park, request, results, until
from tests.integration.conftest import StartRouter

pytestmark = pytest.mark.timeout(120)


async def dead_letters(nc: nats.NATS) -> list:
    js = nc.jetstream()
    state = (await js.stream_info(DEADLETTER.name)).state
    return [await js.get_msg(DEADLETTER.name, seq) for seq in range(state.first_seq, state.last_seq + 1)
            if state.messages]


async def count_results(nc: nats.NATS) -> int:
    return len(await results(nc))


async def test_malformed_messages_are_dead_lettered_and_the_queue_keeps_draining(
        nc: nats.NATS, sim, start_router: StartRouter):
    await start_router(config=degraded_config())
    await all_vendors(sim, "down")  # so the whole backlog is there when the bad ones are met
    good = [request(f"good {i}") for i in range(100)]
    await park(nc, good[:50])
    js = nc.jetstream()
    await js.publish(subjects.LLM_QUEUE_INTERACTIVE, b"{not json", headers={"Nats-Msg-Id": "bad-1"})
    await js.publish(subjects.LLM_QUEUE_INTERACTIVE, json.dumps({"request_id": "bad-2", "messages": []}).encode(),
                     headers={"Nats-Msg-Id": "bad-2"})
    await park(nc, good[50:])
    await all_vendors(sim, "ok")

    await until(lambda: _has(nc, 101), within=30)
    stored = {r["request_id"]: r for r in await results(nc)}
    assert len(stored) == 101
    assert all(stored[b["request_id"]]["status"] == "ok" for b in good)
    assert stored["bad-2"]["status"] == "error"
    assert stored["bad-2"]["error"]["kind"] == "invalid_request"
    assert "messages" in stored["bad-2"]["error"]["message"]

    letters = await dead_letters(nc)
    assert [m.subject for m in letters] == ["deadletter.llm.queue.interactive"] * 2
    reasons = [m.headers[subjects.DEADLETTER_REASON_HEADER] for m in letters]
    assert "not valid JSON" in reasons[0]
    assert "messages" in reasons[1] and letters[1].headers["Lifeline-Request-Id"] == "bad-2"
    assert letters[0].data == b"{not json"  # the original bytes, for whoever fixes it
    assert (await js.stream_info(LLM_QUEUE.name)).state.messages == 0


async def test_a_message_whose_holders_keep_dying_is_dead_lettered_then_requeued_and_answered(
        nc: nats.NATS, sim, nats_server: NatsServer, start_router: StartRouter):
    config = degraded_config(max_deliver=2, ack_wait_s=0.5)
    first = await start_router("router-1", config=config)  # creates the consumers
    await first.stop()
    js = nc.jetstream()
    victim = request("a question that crashes routers")
    await park(nc, [victim])

    # A router that takes the message and dies with it, twice: AckWait hands it back each time.
    dying = await js.pull_subscribe_bind(durable=durable("interactive"), stream=LLM_QUEUE.name)
    for delivery in (1, 2):
        [msg] = await dying.fetch(1, timeout=5)
        assert msg.metadata.num_delivered == delivery
    await dying.unsubscribe()
    await start_router("router-2", config=config)  # hears the max-deliveries advisory

    await until(lambda: _dead(nc, 1), within=10)
    [letter] = await dead_letters(nc)
    assert letter.subject == "deadletter.llm.queue.interactive"
    assert "max_deliver" in letter.headers[subjects.DEADLETTER_REASON_HEADER]
    assert json.loads(letter.data)["request_id"] == victim["request_id"]
    assert (await js.stream_info(LLM_QUEUE.name)).state.messages == 0  # out of the work queue

    shown = _cli(nats_server, "queue", "--json", "--sample", "0.2")
    assert shown["dead_letters"]["count"] == 1
    assert shown["depth"] == {"interactive": 0, "batch": 0}
    assert "max_deliver" in shown["dead_letters"]["letters"][0]["reason"]

    requeued = _cli(nats_server, "queue", "requeue", "--all", "--json")["requeued"]
    assert [r["seq"] for r in requeued] == [letter.seq]
    await until(lambda: _has(nc, 1), within=10)
    [answer] = await results(nc)
    assert (answer["request_id"], answer["status"]) == (victim["request_id"], "ok")
    assert _cli(nats_server, "queue", "result", victim["request_id"], "--json")["status"] == "ok"
    assert (await js.stream_info(DEADLETTER.name)).state.messages == 0


async def test_the_queue_report_shows_depth_per_priority_and_the_oldest_age(
        nc: nats.NATS, sim, nats_server: NatsServer, start_router: StartRouter):
    await start_router(config=degraded_config(concurrency=2))
    await all_vendors(sim, "down")
    await park(nc, [request(f"i {i}") for i in range(5)])
    await park(nc, [request(f"b {i}", priority="batch") for i in range(3)], priority="batch")
    await asyncio.sleep(0.3)  # the report measures age: let it be some
    data = await report(nats_server.url, sample_s=0.2)
    assert data["depth"] == {"interactive": 5, "batch": 3}
    assert data["in_hand"]["interactive"] <= 2 and data["in_hand"]["batch"] <= 2
    assert data["oldest_age_s"]["interactive"] >= 0.3
    assert data["drain_rate_per_s"] == 0  # every vendor is down: nothing leaves
    assert data["dead_letters"] == {"count": 0, "letters": []}


def _cli(server: NatsServer, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True,
                          text=True, timeout=30, env={**os.environ, "NATS_URL": server.url})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout)


async def _has(nc: nats.NATS, n: int) -> bool:
    return len(await results(nc)) >= n


async def _dead(nc: nats.NATS, n: int) -> bool:
    return (await nc.jetstream().stream_info(DEADLETTER.name)).state.messages >= n
