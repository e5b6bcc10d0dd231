"""bus-node-loss on a 3-node NATS cluster (streams replicated 3 times): the node leading the queue's
stream is SIGKILLed under load; JetStream takes writes again after its election, every request it
acknowledged is answered, and callers barely notice."""

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from schemas.streams import LLM_QUEUE
from services.runtime.bus import provision
from services.runtime.natsd import NatsCluster
from tests.e2e.drills.drill_mesh import cli_env, drill_config, start_mesh

LIFELINE = str(Path(sys.executable).parent / "lifeline")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nodes = NatsCluster(tmp_path / "nats").start()
    yield nodes
    nodes.stop()


async def provisioned(url: str) -> str:
    """Streams and buckets with 3 replicas before the services start, and the queue stream's
    leader. (Services that all provision a fresh cluster at once can time out on JetStream's API.)"""
    nc = await nats.connect(url.split(","))
    js = nc.jetstream(timeout=10)
    try:
        for _ in range(20):
            try:
                await provision(js, replicas=3)
                break
            except (nats.errors.Error, nats.js.errors.Error):
                await asyncio.sleep(0.5)
        return (await js.stream_info(LLM_QUEUE.name)).cluster.leader
    finally:
        await nc.close()


async def test_losing_the_queue_streams_leader_loses_nothing_acknowledged(
        cluster: NatsCluster, tmp_path: Path):
    leader = await provisioned(cluster.url)
    victim = next(n for i, n in enumerate(cluster.nodes) if leader == f"lifeline-{i + 1}")
    config = drill_config(tmp_path / "lifeline.yaml")
    mesh = await asyncio.to_thread(start_mesh, cluster.url, tmp_path / "home", config,
                                   services=(), env={"LIFELINE_STREAM_REPLICAS": "3"})
    try:
        done = await asyncio.to_thread(subprocess.run, [
            LIFELINE, "drill", "bus-node-loss", "--json", "--node-port", str(victim.port),
            "--report", str(tmp_path / "report")],
            env=cli_env(mesh), capture_output=True, text=True, timeout=100)
        assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-3000:]
        result = json.loads(done.stdout)
        f = result["figures"]
        print(f"\nbus-node-loss (leader {leader} killed): {f} {result['notes']}")
        assert victim.proc is not None and victim.proc.poll() is not None  # it really died
        assert f["queue_acked"] > 0 and f["queue_lost"] == 0 and f["lost"] == 0
        assert f["write_recovery_s"] is not None and f["write_recovery_s"] < 30
        assert f["errors"] <= 10 and f["rto_s"] is not None
        assert result["passed"] is True, [v for v in result["verdicts"] if not v["ok"]]
    finally:
        await asyncio.to_thread(mesh.stop_all)
