"""SIGKILL of the conversation store (a separate process) mid-load, then a restart: every
answered request is a turn, none is missing and none is doubled."""

import asyncio
import json
import signal
import uuid
from collections import Counter
from pathlib import Path

import nats
import yaml

from schemas import subjects
from services.cli.mesh import Mesh
from services.conversation_store.store import TurnStore
from tests.e2e.conftest import write_config
from tests.fixtures.conversation_store import wait_for_turns

SESSIONS, TURNS = 50, 40  # 2,000 requests, 50 in flight
KILL_AT = 600  # answered requests when the store is killed


async def converse(nc: nats.NATS, session: str, answered: list[dict], at: dict[int, asyncio.Event]) -> None:
    for n in range(TURNS):
        body = {"request_id": f"{session}-{n}-{uuid.uuid4().hex[:8]}", "session_id": session,
                "user_id": f"user-{session}",
                "messages": [{"role": "user", "content": f"{session} question {n}"}]}
        reply = await nc.request(subjects.LLM_COMPLETE, json.dumps(body).encode(), timeout=15)
        answered.append(json.loads(reply.data))
        if event := at.get(len(answered)):
            event.set()


async def test_store_sigkilled_mid_load_then_restarted_keeps_every_answered_turn_once(
        mesh: Mesh, nats_server, pg_url: str, tmp_path: Path):
    config = write_config(tmp_path / "lifeline.yaml")
    data = yaml.safe_load(config.read_text())
    # A short AckWait: what the killed process had fetched but not acked comes back in seconds.
    data["store"] = {"ingest": {"ack_wait_s": 3}}
    config.write_text(yaml.safe_dump(data))
    env = {"LIFELINE_CONFIG": str(config)}
    mesh.db_url = pg_url
    mesh.start_simulator()
    mesh.start_service("router", env=env)
    mesh.start_service("conversation-store", env=env)
    mesh.wait_ready()

    nc = await nats.connect(nats_server.url)
    answered: list[dict] = []
    kill = asyncio.Event()
    load = asyncio.gather(*(converse(nc, f"s{i:02d}", answered, {KILL_AT: kill})
                            for i in range(SESSIONS)))
    await kill.wait()
    mesh.signal("conversation-store", signal.SIGKILL)  # mid-batch, mid-transaction, unacked
    mesh.children["conversation-store"].proc.wait()
    stored_at_kill = await wait_for_turns(pg_url, 0, timeout=0)
    await asyncio.sleep(1)  # the load goes on without a store: the stream holds the events
    mesh.start_service("conversation-store", instance="conversation-store", env=env)
    mesh.wait_ready(["conversation-store"])
    await load
    await nc.close()

    total = SESSIONS * TURNS
    assert Counter(r["status"] for r in answered) == {"ok": total}
    count = await wait_for_turns(pg_url, total, timeout=30)
    print(f"\n{stored_at_kill} turns stored when the store was killed; {count} of {total} after "
          "the restart")
    assert 0 < stored_at_kill < total  # killed mid-load, with work in flight
    async with TurnStore(pg_url) as store:
        rows = [r.request_id async for r in store.records()]
    assert len(rows) == len(set(rows)) == total  # none doubled
    assert set(rows) == {r["request_id"] for r in answered}  # none missing
