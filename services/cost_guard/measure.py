"""Measures what admission costs and how well it holds, with every part a separate process.

    python -m services.cost_guard.measure [--db-url URL] [--n 1000] [--concurrency 32]

1. Latency: the same requests through one router with budgets enforced (a cost.reserve before
   and a cost.settle after each call) and without (no budget configured: no round trip); the
   difference of the medians is what admission costs a request.
2. Overshoot: a limit of 100 requests a day for one user, two routers, 50 callers, 150 requests;
   and 200 concurrent requests against a budget that covers 50.

Prints a Markdown table. Not a test: figures on a shared 2-core machine move with its load.
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
import yaml

from schemas import subjects
from services.cli.mesh import Mesh
from services.runtime.natsd import NatsServer, free_port

SHIPPED = Path(__file__).parents[2] / "lifeline.yaml"
BODY = {"messages": [{"role": "user", "content": "Where is my order?"}], "max_tokens": 23}


def _config(path: Path, budgets: dict[str, Any]) -> Path:
    data = yaml.safe_load(SHIPPED.read_text())
    data["providers"]["openai"]["models"]["gpt-4o-mini"].update(input_per_mtok=100,
                                                                 output_per_mtok=400)
    data["budgets"] = {"admission": {"timeout_ms": 5000}, **budgets}
    path.write_text(yaml.safe_dump(data))
    return path


async def _ask(nc: nats.NATS, **fields: Any) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    msg = await nc.request(subjects.LLM_COMPLETE, json.dumps({**BODY, **fields}).encode(), timeout=30)
    return time.perf_counter() - started, json.loads(msg.data)


async def _latencies(nc: nats.NATS, n: int, concurrency: int) -> list[float]:
    queue = list(range(n))
    found: list[float] = []

    async def caller(c: int) -> None:
        while queue:
            queue.pop()
            took, result = await _ask(nc, user_id=f"user-{c}")
            assert result["status"] == "ok", result
            found.append(took)

    await asyncio.gather(*(caller(c) for c in range(concurrency)))
    return found


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else values[0] * 1000


def _start(mesh: Mesh, names: list[str], config: Path) -> None:
    mesh.env["LIFELINE_CONFIG"] = str(config)
    for name in names:
        mesh.start_service("router" if name.startswith("router") else name, instance=name)
    mesh.wait_ready(names, timeout=60)


async def measure(db_url: str | None, n: int, concurrency: int) -> list[str]:
    rows = ["| figure | value |", "|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        server = NatsServer(home / "nats").start()
        mesh = Mesh(nats_url=server.url, home=home / "home", simulator_port=free_port(),
                    db_url=db_url, env={"LIFELINE_LOG_LEVEL": "WARNING"})
        nc = await nats.connect(server.url)
        try:
            mesh.start_simulator()
            enforced = _config(home / "enforced.yaml", {"spend": [
                {"scope": "user", "period": "day", "limit_usd": 1e6}]})
            plain = _config(home / "plain.yaml", {})
            _start(mesh, ["cost-guard"], enforced)
            for label, config in (("without admission", plain), ("with admission", enforced)):
                _start(mesh, ["router-1"], config)
                await _latencies(nc, 100, concurrency)  # warm-up
                for c in (1, concurrency):
                    lat = await _latencies(nc, n, c)
                    rows.append(f"| {label}, {c} in flight: p50 / p99 | "
                                f"{_pct(lat, 50):.2f} / {_pct(lat, 99):.2f} ms |")
                mesh.stop("router-1")
            rows += await _overshoot(mesh, nc, home)
        finally:
            await nc.close()
            mesh.stop_all()
            server.stop()
    return rows


async def _overshoot(mesh: Mesh, nc: nats.NATS, home: Path) -> list[str]:
    rows = []
    limited = _config(home / "limited.yaml", {"rate_limits": {"user": {"requests_per_day": 100}}})
    mesh.stop("cost-guard")
    _start(mesh, ["cost-guard", "router-1", "router-2"], limited)
    queue = list(range(150))
    answered = 0

    async def caller() -> None:
        nonlocal answered
        while queue:
            queue.pop()
            _, result = await _ask(nc, user_id="one-user")
            answered += result["status"] == "ok"

    await asyncio.gather(*(caller() for _ in range(50)))
    rows.append(f"| 100 requests/day, 2 routers, 50 callers, 150 requests: answered | {answered} |")
    for name in ("router-1", "router-2", "cost-guard"):
        mesh.stop(name)

    budget = _config(home / "budget.yaml", {"spend": [
        {"scope": "user", "id": "payer", "period": "day", "limit_usd": 0.505}]})
    _start(mesh, ["cost-guard", "router-1", "router-2"], budget)
    results = await asyncio.gather(*(_ask(nc, user_id="payer") for _ in range(200)))
    spent = sum(r["cost_usd"] for _, r in results)
    ok = sum(r["status"] == "ok" for _, r in results)
    rows.append(f"| 200 concurrent vs a $0.505 budget ($0.01 a request): answered, spent | "
                f"{ok}, ${spent:.4f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db-url", default=None, help="default: SQLite in a temporary directory")
    parser.add_argument("--n", type=int, default=1000, help="requests per latency run")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    print("\n".join(asyncio.run(measure(args.db_url, args.n, args.concurrency))))


if __name__ == "__main__":
    main()
