"""What `sync_interval: always` costs: JetStream publish throughput and PubAck latency with the
server's default fsync cadence (every 2 minutes) and with an fsync before every acknowledgement,
on one node (R1) and on a 3-node cluster on loopback (R3). docs/operations.md quotes its output.

    PYTHONPATH=$PWD .venv/bin/python infra/nats/measure_sync.py [--events 5000] [--in-flight 64]

Events are llm.completed-sized (about 1.5 kB), each with its own message id, published as the
router does (runtime.bus.publish_events: many in flight, each PubAck awaited).
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import nats

from schemas.streams import LLM_EVENTS
from services.runtime.bus import ensure_stream, publish_events
from services.runtime.natsd import NatsCluster, NatsServer

PAYLOAD = b"x" * 1500


async def measure(urls: list[str], replicas: int, events: int, in_flight: int) -> tuple[float, float, float]:
    nc = await nats.connect(urls)
    try:
        js = nc.jetstream()
        await ensure_stream(js, LLM_EVENTS, replicas=replicas)
        latencies: list[float] = []
        queue = iter(range(events))

        async def sender() -> None:
            for n in queue:
                started = time.perf_counter()
                [failure] = await publish_events(js, [("llm.completed", PAYLOAD, f"m-{n}")])
                assert failure is None, failure
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
        latencies.sort()
        return (events / elapsed, statistics.median(latencies) * 1000,
                latencies[int(len(latencies) * 0.99)] * 1000)
    finally:
        await nc.close()


async def main(events: int, in_flight: int) -> None:
    print(f"{events} events of {len(PAYLOAD)} B, {in_flight} in flight\n")
    print("| replicas | sync_interval | events/s | PubAck p50 ms | PubAck p99 ms |")
    print("|---|---|---|---|---|")
    for replicas in (1, 3):
        for sync in (None, "always"):
            with tempfile.TemporaryDirectory() as tmp:
                if replicas == 1:
                    bus = NatsServer(Path(tmp), sync_interval=sync).start()
                    urls = [bus.url]
                else:
                    bus = NatsCluster(Path(tmp), sync_interval=sync).start()
                    urls = bus.url.split(",")
                try:
                    rate, p50, p99 = await measure(urls, replicas, events, in_flight)
                finally:
                    bus.stop()
            print(f"| R{replicas} | {sync or 'default (2 min)'} | {rate:,.0f} | {p50:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.in_flight))
