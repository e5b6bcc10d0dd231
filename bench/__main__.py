"""`make bench`: Lifeline's hot paths beside what users would otherwise pick, in one run.

1. Provider call overhead: our aiohttp adapters vs the official `openai` / `anthropic` SDKs,
   sequential calls to the simulator (in its own process, so only client CPU is counted).
2. The router path: a request over NATS through a router process to the simulator, vs calling
   the simulator directly with our adapter; sequential latency, throughput at concurrency, and
   the same load with the primary down (client-visible errors, p99).
3. The peer: LiteLLM's proxy (its own venv, bench/litellm_peer.py) with the same chain and
   fallback against the same simulator, same rows. BENCH_PEER=0 skips it.

Every loop is bounded in count (BENCH_N, default 1000) and each section in time (60 s). The whole
set runs BENCH_RUNS times (default 3), each with a fresh bus, router and proxy; every figure shown
is the median over the runs (the JSON keeps each run's rows too).
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import anthropic
import nats
import openai
from rich.console import Console
from rich.table import Table

from bench import gateway as gateway_bench
from bench import litellm_peer
from services.cli.mesh import Mesh
from services.providers import make_provider
from services.providers.base import ChatCall, ProviderSpec
from services.runtime.natsd import NatsServer, free_port

N = int(os.environ.get("BENCH_N", "1000"))
RUNS = max(1, int(os.environ.get("BENCH_RUNS", "3")))
CONCURRENCY = 50
SECTION_LIMIT_S = 60.0
MESSAGES = [{"role": "user", "content": "What is your refund policy?"}]
console = Console()


def process_cpu_s(pid: int) -> float:
    """utime + stime of another process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def with_server_cpu(pid: int, run: Awaitable[dict]) -> dict:
    """Adds the CPU another process (the router) spent per call while `run` ran."""
    before = process_cpu_s(pid)
    row = await run
    row["server_cpu_ms"] = (process_cpu_s(pid) - before) / row["n"] * 1000
    return row


async def measure(name: str, call: Callable[[], Awaitable[object]], n: int = N) -> dict:
    for _ in range(min(50, n)):  # warm pools and caches
        await call()
    latencies = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - t)
        if time.perf_counter() - wall0 > SECTION_LIMIT_S:
            break
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    done = len(latencies)
    q = statistics.quantiles(latencies, n=100)
    return {"name": name, "n": done, "cpu_ms": cpu / done * 1000, "p50_ms": q[49] * 1000,
            "p99_ms": q[98] * 1000, "rps": done / wall}


async def throughput(name: str, call: Callable[[], Awaitable[object]], n: int = N) -> dict:
    """n calls, CONCURRENCY at a time: latency as each caller sees it, and client-visible errors."""
    slots = asyncio.Semaphore(CONCURRENCY)
    latencies: list[float] = []
    errors = 0

    async def one() -> None:
        nonlocal errors
        async with slots:
            t = time.perf_counter()
            try:
                await call()
            except Exception:
                errors += 1
            latencies.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(one() for _ in range(n))), SECTION_LIMIT_S)
    wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100)
    return {"name": name, "n": n, "cpu_ms": None, "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000,
            "rps": n / wall, "errors": errors}


def start_simulator(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "services.simulator", "--port", str(port)],
                            stdout=subprocess.PIPE)
    assert proc.stdout and proc.stdout.readline().startswith(b"simulator listening")
    return proc


async def provider_overhead(sim: str) -> list[dict]:
    ours_oa = make_provider(ProviderSpec(name="openai", kind="openai", base_url=f"{sim}/openai/v1", api_key="k"))
    ours_an = make_provider(ProviderSpec(name="anthropic", kind="anthropic", base_url=f"{sim}/anthropic", api_key="k"))
    sdk_oa = openai.AsyncOpenAI(base_url=f"{sim}/openai/v1", api_key="k", max_retries=0)
    sdk_an = anthropic.AsyncAnthropic(base_url=f"{sim}/anthropic", api_key="k", max_retries=0)
    oa_call = ChatCall(model="gpt-4o-mini", messages=MESSAGES, max_tokens=64)
    an_call = ChatCall(model="claude-haiku-4-5", messages=MESSAGES, max_tokens=64)
    try:
        return [
            await measure("lifeline OpenAIProvider (aiohttp)", lambda: ours_oa.complete(oa_call, timeout=10)),
            await measure("openai.AsyncOpenAI (official SDK)", lambda: sdk_oa.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, max_tokens=64)),
            await measure("lifeline AnthropicProvider (aiohttp)", lambda: ours_an.complete(an_call, timeout=10)),
            await measure("anthropic.AsyncAnthropic (official SDK)", lambda: sdk_an.messages.create(
                model="claude-haiku-4-5", messages=MESSAGES, max_tokens=64)),
        ]
    finally:
        await ours_oa.aclose()
        await ours_an.aclose()
        await sdk_oa.close()
        await sdk_an.close()


async def router_path(sim_port: int, home: Path) -> list[dict]:
    with NatsServer(home / "nats") as bus:
        mesh = Mesh(nats_url=bus.url, home=home, simulator_port=sim_port,
                    env={"LIFELINE_LOG_LEVEL": "WARNING"})
        mesh.start_service("router")
        mesh.wait_ready()
        nc = await nats.connect(bus.url)
        direct = make_provider(ProviderSpec(name="openai", kind="openai",
                                            base_url=f"http://127.0.0.1:{sim_port}/openai/v1", api_key="k"))
        body = json.dumps({"messages": MESSAGES, "max_tokens": 64}).encode()
        call = ChatCall(model="gpt-4o-mini", messages=MESSAGES, max_tokens=64)

        async def via_router() -> None:
            reply = await nc.request("llm.complete", body, timeout=10)
            assert b'"status":"ok"' in reply.data, reply.data[:200]

        pid = mesh.children["router"].proc.pid
        try:
            return [
                await measure("direct: adapter -> simulator", lambda: direct.complete(call, timeout=10)),
                await with_server_cpu(pid, measure("lifeline: NATS -> router -> simulator", via_router)),
                await throughput(f"direct, {CONCURRENCY} at a time", lambda: direct.complete(call, timeout=10)),
                await with_server_cpu(pid, throughput(f"lifeline router, {CONCURRENCY} at a time", via_router)),
                await with_server_cpu(pid, primary_down(
                    sim_port, throughput(f"lifeline router, {CONCURRENCY} at a time, openai down", via_router))),
            ]
        finally:
            await direct.aclose()
            await nc.close()
            mesh.stop_all()


async def primary_down(sim_port: int, run: Awaitable[dict]) -> dict:
    """Runs `run` with the simulated primary answering 503, then clears the fault."""
    url = f"http://127.0.0.1:{sim_port}/_sim/vendors/openai"
    async with aiohttp.ClientSession() as http:
        await http.put(url, json={"mode": "down"})
        try:
            return await run
        finally:
            await http.put(url, json={"mode": "ok"})


def show(title: str, rows: list[dict]) -> None:
    table = Table(title=title)
    cols = ["client", "calls", "client CPU ms/call", "p50 ms", "p99 ms", "calls/s", "errors"]
    with_server = any("server_cpu_ms" in r for r in rows)
    if with_server:
        cols.insert(3, "server CPU ms/call")
    for col in cols:
        table.add_column(col, justify="right" if col != "client" else "left")
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for r in rows:
        cells = [r["name"], str(r["n"]), fmt(r["cpu_ms"]), fmt(r["p50_ms"]), fmt(r["p99_ms"]),
                 f"{r['rps']:.0f}", str(r.get("errors", "-"))]
        if with_server:
            cells.insert(3, fmt(r.get("server_cpu_ms")))
        table.add_row(*cells)
    console.print(table)


def median_rows(runs: list[list[dict]]) -> list[dict]:
    """One row per name: the median of each number over the runs that have that row."""
    names = list(dict.fromkeys(r["name"] for rows in runs for r in rows))
    out = []
    for name in names:
        rows = [r for rows in runs for r in rows if r["name"] == name]
        row: dict = {"name": name, "runs": len(rows)}
        for key in ("n", "cpu_ms", "server_cpu_ms", "p50_ms", "p99_ms", "rps", "errors",
                    "primary_attempts_per_call"):
            values = [r[key] for r in rows if r.get(key) is not None]
            if values:
                row[key] = statistics.median(values)
            elif key in ("cpu_ms",):
                row[key] = None
        out.append(row)
    return out


def summary(sections: dict[str, list[dict]]) -> list[dict]:
    """The headline: added latency over a direct call, throughput, and the primary-down tail."""
    def find(section: str, start: str) -> dict | None:
        return next((r for r in sections.get(section, []) if r["name"].startswith(start)), None)
    direct = find("Lifeline router", "direct: adapter")
    rows = []
    for who, section, seq, load, down in (
        ("Lifeline router", "Lifeline router", "lifeline: NATS", f"lifeline router, {CONCURRENCY} at a time",
         "lifeline router, {c} at a time, openai down"),
        ("LiteLLM proxy", "LiteLLM proxy (peer)", "litellm proxy -> simulator", f"litellm proxy, {CONCURRENCY} at a time",
         "litellm proxy, {c} at a time, openai down"),
    ):
        s, t = find(section, seq), find(section, load)
        d = find(section, down.format(c=CONCURRENCY))
        if not (direct and s and t and d):
            continue
        rows.append({"who": who, "added_p50_ms": s["p50_ms"] - direct["p50_ms"],
                     "added_p99_ms": s["p99_ms"] - direct["p99_ms"], "server_cpu_ms": t.get("server_cpu_ms"),
                     "rps": t["rps"], "down_p99_ms": d["p99_ms"], "down_errors": d.get("errors", 0)})
    return rows


def show_summary(rows: list[dict]) -> None:
    table = Table(title=f"Summary: medians of {RUNS} run(s), n={N}, {CONCURRENCY} in flight")
    for col in ("", "added p50 ms", "added p99 ms", "server CPU ms/call", "calls/s",
                "p99 ms, primary down", "errors, primary down"):
        table.add_column(col, justify="right" if col else "left")
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for r in rows:
        table.add_row(r["who"], fmt(r["added_p50_ms"]), fmt(r["added_p99_ms"]), fmt(r["server_cpu_ms"]),
                      f"{r['rps']:.0f}", fmt(r["down_p99_ms"]), str(r["down_errors"]))
    console.print(table)


def write_results(sections: dict[str, list[dict]], runs: list[dict[str, list[dict]]],
                  headline: list[dict]) -> Path:
    """bench/results/<UTC time>.json and .md: the medians (and each run, in the JSON)."""
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (out / f"{stamp}.json").write_text(json.dumps({"n": N, "concurrency": CONCURRENCY, "runs": RUNS,
                                                   "summary": headline, "sections": sections,
                                                   "each_run": runs}, indent=2))
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    lines = [f"# make bench {stamp} (n={N}, {CONCURRENCY} in flight, medians of {RUNS} runs)", "",
             "| | added p50 ms | added p99 ms | server CPU ms/call | calls/s | p99 ms, primary down "
             "| errors, primary down |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['who']} | {fmt(r['added_p50_ms'])} | {fmt(r['added_p99_ms'])} | "
              f"{fmt(r['server_cpu_ms'])} | {r['rps']:.0f} | {fmt(r['down_p99_ms'])} | {r['down_errors']} |"
              for r in headline]
    lines.append("")
    for title, rows in sections.items():
        lines += [f"## {title}", "", "| client | calls | server CPU ms | p50 ms | p99 ms | calls/s | errors |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['n']:.0f} | {fmt(r.get('server_cpu_ms'))} | {fmt(r['p50_ms'])} | "
                  f"{fmt(r['p99_ms'])} | {r['rps']:.0f} | {r.get('errors', '-')} |" for r in rows]
        lines.append("")
    (out / f"{stamp}.md").write_text("\n".join(lines))
    return out / f"{stamp}.md"


async def one_run(port: int) -> dict[str, list[dict]]:
    sections: dict[str, list[dict]] = {}
    sections["Provider call overhead"] = await provider_overhead(f"http://127.0.0.1:{port}")
    with tempfile.TemporaryDirectory() as home:
        sections["Lifeline router"] = await router_path(port, Path(home))
    sections["Gateway"] = await gateway_bench.run(port)  # bench/gateway.py: TTFT, added latency
    if os.environ.get("BENCH_PEER", "1") != "0":
        # The peer users would otherwise pick: LiteLLM's proxy, same chain, same simulator.
        litellm_peer.ensure_litellm_venv()
        sections["LiteLLM proxy (peer)"] = await litellm_peer.run_peer(port, N, CONCURRENCY)
    return sections


async def main() -> None:
    port = free_port()
    sim = start_simulator(port)
    runs: list[dict[str, list[dict]]] = []
    try:
        for i in range(RUNS):
            console.print(f"run {i + 1} of {RUNS} ...")
            runs.append(await one_run(port))
    finally:
        sim.terminate()
        sim.wait(10)
    sections = {title: median_rows([run[title] for run in runs if title in run]) for title in runs[0]}
    show("Provider call overhead (sequential, simulator in its own process)", sections["Provider call overhead"])
    show("The router path", sections["Lifeline router"])
    gateway_bench.show_rows(sections["Gateway"])
    if "LiteLLM proxy (peer)" in sections:
        show("LiteLLM proxy, same chain and simulator", sections["LiteLLM proxy (peer)"])
    headline = summary(sections)
    show_summary(headline)
    console.print(f"results: {write_results(sections, runs, headline)}")


if __name__ == "__main__":
    asyncio.run(main())
