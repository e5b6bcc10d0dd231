"""A real 3-node NATS cluster on loopback, streams with 3 replicas, two routers, the conversation
store and the cost guard as separate processes on PostgreSQL. Under steady load the node that
leads LLM_EVENTS (and holds service connections) is SIGKILLed: every answered request is one turn
and one ledger row, the services reconnect to the other nodes on their own, and the longest gap
between answers is measured.

What the gap is made of: the killed node led the stream, so until the other two elect a new
leader (the Raft election timeout, 4-9 s in nats-server) no event can be stored, and a router
holds each answer until its events are (runtime.bus.publish_events sends them again with the
same message id). An answer never goes out with its turn and its charge lost.
"""

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
import yaml

from schemas.streams import LLM_EVENTS
from services.cli.mesh import Mesh
from services.runtime.natsd import NatsCluster, free_port
from tests.e2e.conftest import write_config
from tests.fixtures.conversation_store import lifeline
from tests.fixtures.deploy import Load, connections, ledger_ids, metric, turn_ids, wait_for_rows

SERVICES = {"router-1": "router", "router-2": "router", "conversation-store": "conversation-store",
            "cost-guard": "cost-guard"}
CONNECTIONS = ["lifeline-conversation-store", "lifeline-cost-guard", "lifeline-router",
               "lifeline-router"]
PUBLISH_BUDGET_S = 15.0  # runtime.bus.publish_events' default timeout
BEFORE_KILL, AFTER_KILL = 200, 300  # answers


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    # As infra/nats/cluster/*.conf run it: every write fsynced before it is acknowledged.
    cluster = NatsCluster(tmp_path / "nats", sync_interval="always").start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_mesh(cluster: NatsCluster, pg_url: str, tmp_path: Path) -> Iterator[Mesh]:
    """Set up after pg_url, so torn down (every process stopped) before its database is dropped."""
    config = write_config(tmp_path / "lifeline.yaml")
    data = yaml.safe_load(config.read_text())
    # What a dead consumer leader had handed out comes back after AckWait: 5 s, not 30 s, for
    # the store's (the cost guard's ledger is fixed at 10 s).
    data["store"] = {"ingest": {"ack_wait_s": 5}}
    config.write_text(yaml.safe_dump(data))
    mesh = Mesh(nats_url=cluster.url, home=tmp_path / "home", simulator_port=free_port(),
                gateway_port=free_port(), status_port=free_port(), db_url=pg_url,
                env={"LIFELINE_LOG_LEVEL": "WARNING", "LIFELINE_STREAM_REPLICAS": "3",
                     "LIFELINE_CONFIG": str(config)})
    yield mesh
    mesh.stop_all()


async def lead_stream_from(nc: nats.NATS, stream: str, node: str) -> None:
    """Moves the stream's leadership to `node` (a leader stepdown with a preferred placement)."""
    js = nc.jetstream()
    for _ in range(20):
        if (await js.stream_info(stream)).cluster.leader == node:
            return
        reply = await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}",
                                 json.dumps({"placement": {"preferred": node}}).encode(), timeout=5)
        assert json.loads(reply.data).get("success"), reply.data
        await asyncio.sleep(0.5)
    raise AssertionError(f"{stream} would not move its leader to {node}")


async def new_leader(nc: nats.NATS, stream: str, *, dead: str, within: float) -> str:
    js = nc.jetstream()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            leader = (await js.stream_info(stream)).cluster.leader
            if leader and leader != dead:
                return leader
        except (nats.errors.Error, TimeoutError):
            pass  # no leader to answer yet
        await asyncio.sleep(0.1)
    raise AssertionError(f"{stream} had no new leader within {within}s")


@pytest.mark.timeout(240)
async def test_a_killed_nats_node_loses_no_answered_request_turn_or_charge(
        cluster: NatsCluster, cluster_mesh: Mesh, pg_url: str):
    mesh = cluster_mesh
    mesh.start_simulator()
    for name, service in SERVICES.items():
        mesh.start_service(service, instance=name)
    mesh.wait_ready(list(SERVICES), timeout=60)

    # The victim: the node most of our services are connected to, made leader of LLM_EVENTS, so
    # the kill takes both a stream leader and live connections. The test's own caller connects
    # to the other two: what is measured is the mesh's recovery, not the caller's.
    victim = max(cluster.nodes, key=lambda n: len(connections(n)))
    survivors = [n for n in cluster.nodes if n is not victim]
    nc = await nats.connect([n.url for n in survivors])
    await lead_stream_from(nc, LLM_EVENTS.name, cluster.name_of(victim))
    on_victim = connections(victim)
    assert on_victim, "no service connected to the node to be killed"

    load = Load(nc)
    running = asyncio.create_task(load.run())
    try:
        await load.until(BEFORE_KILL, within=60)
        killed_at, answered_at_kill = time.monotonic(), len(load.answers)
        victim.kill()  # SIGKILL
        leader = await new_leader(nc, LLM_EVENTS.name, dead=cluster.name_of(victim), within=30)
        elected_after = time.monotonic() - killed_at
        await load.until(answered_at_kill + AFTER_KILL, within=60)
    finally:
        stopped_at = time.monotonic()
        load.stop.set()
        await running

    # Every service is connected again, to the nodes that are left, without being restarted.
    reconnected: list[str] = []
    for _ in range(100):
        reconnected = sorted(name for n in survivors for name in connections(n))
        if reconnected == CONNECTIONS:
            break
        await asyncio.sleep(0.1)
    assert reconnected == CONNECTIONS
    assert all(mesh.children[name].proc.poll() is None for name in SERVICES)
    # The operator's command takes the whole cluster's URL too, and gets past the dead node.
    dead_first = ",".join(n.url for n in [victim, *survivors])
    code, out, err = await lifeline("ask", "What is your refund policy?", "--json",
                                    env={"NATS_URL": dead_first})
    assert code == 0 and json.loads(out)["status"] == "ok", err
    asked = json.loads(out)["request_id"]
    # Exactly the connections the dead node held were re-established, each once.
    reconnects = [await metric(mesh.children[name].health_url, "lifeline_nats_reconnects")
                  for name in SERVICES]
    assert sum(reconnects) == len(on_victim), (reconnects, on_victim)

    ok = [*load.ok_ids(), asked]
    assert load.statuses() == {"ok": len(load.answers)}
    assert len(ok) == len(set(ok))
    turns, ledger = await asyncio.gather(
        wait_for_rows(lambda: turn_ids(pg_url), len(ok), within=30),
        wait_for_rows(lambda: ledger_ids(pg_url), len(ok), within=30))
    gap, gap_began = load.longest_gap(until=stopped_at)
    print(f"\nkilled {cluster.name_of(victim)} (LLM_EVENTS leader; connected: {', '.join(on_victim)}) "
          f"after {answered_at_kill} answers; {leader} led LLM_EVENTS {elected_after:.1f}s later\n"
          f"{len(load.answers)} answered ({load.retries} asked again by the caller), "
          f"{len(turns)} turns, {len(ledger)} ledger rows\n"
          f"longest gap between answers: {gap:.2f}s, from {gap_began - killed_at:+.2f}s after the kill")
    assert sorted(turns) == sorted(ok)  # each answered request a turn, none twice, none extra
    assert sorted(ledger) == sorted(ok)  # and a charge
    # Answers came back before any router gave up storing an event (which would lose it).
    assert gap < PUBLISH_BUDGET_S
    assert load.retries <= load.callers  # at most the requests in flight at the kill
    mesh.stop_all()  # before pg_url's database is dropped
