"""Two instances of every service (router, conversation store, cost guard, health monitor,
notifier, gateway) as separate processes on one nats-server and one PostgreSQL database: the
work is shared (each instance does some) and none is done twice (each answered request is one
turn and one charge, each provider transition one event, each incident one, each alert one)."""

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import nats
import pytest
import yaml
from nats.aio.msg import Msg

from schemas import subjects
from services.cli.mesh import Mesh
from services.conversation_store.store import TurnStore
from services.runtime.natsd import NatsServer, free_port
from tests.conftest import StatusEvents
from tests.e2e.conftest import write_config
from tests.fixtures.cost_guard import ledger_summary
from tests.fixtures.deploy import Load, ledger_ids, wait_for_rows
from tests.fixtures.deploy import metric as sample
from tests.fixtures.health_monitor import FAST_HEALTH
from tests.fixtures.notifier import Receiver

PAIRS = ["router", "conversation-store", "cost-guard", "health-monitor", "notifier", "gateway"]
PROVIDERS = ("openai", "anthropic", "local")
HTTP_PER_GATEWAY = 20


@pytest.fixture
def pair_mesh(nats_server: NatsServer, pg_url: str, receiver: Receiver,
              tmp_path: Path) -> Iterator[Mesh]:
    """Set up after pg_url, so torn down (every process stopped) before its database is dropped."""
    config = write_config(tmp_path / "lifeline.yaml")
    data = yaml.safe_load(config.read_text())
    data["health"] = FAST_HEALTH
    data["notifier"].update(
        incidents={"resolve_after_s": 0.5, "reopen_within_s": 5, "alert_min_interval_s": 60},
        delivery={"retry_initial_s": 0.2, "retry_max_s": 1.0, "poll_s": 0.2},
        channels={"ops": {"kind": "webhook", "url": f"{receiver.url}/hook"}})
    config.write_text(yaml.safe_dump(data))
    mesh = Mesh(nats_url=nats_server.url, home=tmp_path / "home", simulator_port=free_port(),
                db_url=pg_url, env={"LIFELINE_LOG_LEVEL": "WARNING", "LIFELINE_CONFIG": str(config),
                                    "LIFELINE_HEARTBEAT_INTERVAL": "0.5"})
    yield mesh
    mesh.stop_all()


def start_pairs(mesh: Mesh) -> dict[str, int]:
    """Two of each; the gateways and status pages on ports of their own. Returns gateway ports."""
    gateways = {}
    for service in PAIRS:
        for n in (1, 2):
            env = {}
            if service == "gateway":
                env["LIFELINE_GATEWAY_PORT"] = str(gateways.setdefault(f"gateway-{n}", free_port()))
            if service == "notifier":
                env["LIFELINE_STATUS_PORT"] = str(free_port())
            mesh.start_service(service, instance=f"{service}-{n}", env=env)
    return gateways


async def metric(mesh: Mesh, instance: str, name: str, **labels: str) -> float:
    return await sample(mesh.children[instance].health_url, name, **labels)


async def ask_gateways(gateways: dict[str, int]) -> list[str]:
    """HTTP requests through each gateway in turn; the request ids they answered under."""
    ids = []
    async with aiohttp.ClientSession() as http:
        for n in range(HTTP_PER_GATEWAY):
            for name, port in gateways.items():
                body = {"model": "chat", "messages": [{"role": "user", "content": f"http {n}"}]}
                async with http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body,
                                     headers={"x-lifeline-session-id": f"web-{name}"}) as r:
                    assert r.status == 200, await r.text()
                    ids.append(r.headers["x-lifeline-request-id"])
    return ids


async def set_mode(mesh: Mesh, vendor: str, mode: str) -> None:
    url = f"{mesh.simulator_url}/_sim/vendors/{vendor}"
    async with aiohttp.ClientSession() as http, http.put(url, json={"mode": mode}) as r:
        assert r.status == 200, await r.text()


@pytest.mark.timeout(240)
async def test_two_of_every_service_share_the_work_and_do_none_twice(
        pair_mesh: Mesh, nc: nats.NATS, status_events: StatusEvents, receiver: Receiver,
        pg_url: str):
    mesh = pair_mesh
    probes: list[dict] = []

    async def on_probe(msg: Msg) -> None:
        probes.append(json.loads(msg.data))

    await nc.subscribe(subjects.HEALTH_PROBE, cb=on_probe)
    mesh.start_simulator()
    gateways = start_pairs(mesh)
    await asyncio.to_thread(mesh.wait_ready, timeout=90)
    for provider in PROVIDERS:  # the first verdicts: each published once, by one of the two
        await status_events.wait_for(subjects.PROVIDER_UP, 15, provider=provider)

    # Requests: over the bus (the queue group picks a router) and over HTTP through each gateway.
    load = Load(nc, callers=6, per_caller=30)
    _, http_ids = await asyncio.gather(load.run(), ask_gateways(gateways))
    answered = load.ok_ids() + http_ids
    assert load.statuses() == {"ok": 6 * 30}

    # An outage of the primary: detected, announced and alerted once, then recovered.
    seen = len(status_events.events)
    await set_mode(mesh, "openai", "down")
    await status_events.wait_for(subjects.PROVIDER_DOWN, 15, after=seen, provider="openai")
    await set_mode(mesh, "openai", "ok")
    await status_events.wait_for(subjects.PROVIDER_UP, 15, after=seen, provider="openai")
    await receiver.wait_for(lambda: {r.headers.get("X-Lifeline-Event") for r in receiver.got}
                            >= {"incident.opened", "incident.resolved"}, timeout=20)
    probes_at_recovery = len(probes)
    await asyncio.sleep(2.0)  # room for a duplicate, were there one; probes go on meanwhile

    # Each answered request is one turn and one charge: nothing lost, nothing twice.
    turns, ledger = await asyncio.gather(
        wait_for_rows(lambda: turn_rows(pg_url), len(answered), within=30),
        wait_for_rows(lambda: ledger_ids(pg_url), len(answered), within=30))
    assert sorted(t for t, _ in turns) == sorted(answered)
    assert sorted(ledger) == sorted(answered)

    # Shared: both routers answered, both stores wrote, both cost guards charged, both gateways
    # served; and the per-instance counts add up to the whole, not more.
    by_router = Counter(source for _, source in turns)
    stored = {i: await metric(mesh, i, "lifeline_store_turns_ingested_total")
              for i in ("conversation-store-1", "conversation-store-2")}
    charged = {i: await metric(mesh, i, "lifeline_cost_spend_usd_total", scope="global")
               for i in ("cost-guard-1", "cost-guard-2")}
    served = {i: await metric(mesh, i, "lifeline_gateway_requests_total")
              for i in ("gateway-1", "gateway-2")}
    statuses = {i: await metric(mesh, i, "lifeline_notifier_status_events_total")
                for i in ("notifier-1", "notifier-2")}
    late = probes[probes_at_recovery:]
    probers = {p: sorted({x["source"] for x in late if x["provider"] == p}) for p in PROVIDERS}
    print(f"\n{len(answered)} answered: routers {dict(by_router)}, stores {stored}, "
          f"cost guards {charged}, gateways {served}, notifiers {statuses}, probers {probers}")
    assert set(by_router) == {"router/router-1", "router/router-2"}
    assert all(stored.values()) and sum(stored.values()) == len(answered)
    assert all(charged.values())
    spent = (await ledger_summary(pg_url))["spent_usd"]
    assert sum(charged.values()) == pytest.approx(spent, rel=1e-9)  # each charge counted once
    assert served == {"gateway-1": HTTP_PER_GATEWAY, "gateway-2": HTTP_PER_GATEWAY}
    assert all(statuses.values())

    # The health monitors: each transition once, every provider probed by one of them only,
    # and both of them probing.
    openai = status_events.of(subjects.PROVIDER_DOWN, provider="openai") + status_events.of(
        subjects.PROVIDER_UP, provider="openai")
    assert sorted(e["state"] for e in openai) == ["down", "up", "up"]
    transitions = [b for _, s, b in status_events.events if s.startswith("provider.")]
    assert len({e["id"] for e in transitions}) == len(transitions) == 3 + 2
    assert all(len(sources) == 1 for sources in probers.values()), probers
    assert len({s for sources in probers.values() for s in sources}) == 2, probers
    assert not status_events.of(subjects.SERVICE_DOWN)  # and no instance was taken for dead

    # The notifiers: one incident, opened once and resolved once, each alert delivered once.
    assert len(status_events.of(subjects.INCIDENT_OPENED)) == 1
    assert len(status_events.of(subjects.INCIDENT_RESOLVED)) == 1
    alerts = Counter(r.headers.get("X-Lifeline-Event") for r in receiver.at("/hook"))
    assert alerts == {"incident.opened": 1, "incident.resolved": 1}, alerts
    keys = [r.headers["Idempotency-Key"] for r in receiver.at("/hook")]
    assert len(keys) == len(set(keys))
    mesh.stop_all()  # before pg_url's database is dropped


async def turn_rows(db_url: str) -> list[tuple[str, str | None]]:
    """(request id, router instance) of every turn stored."""
    async with TurnStore(db_url) as store:
        return [(r.request_id, r.source) async for r in store.records()]
