"""`make bench`, the gateway section: time to first token through the gateway, and what the
gateway path (HTTP -> gateway -> NATS -> router -> simulator) adds over calling the simulator
directly with our adapter. Router and gateway run as their own processes, as in production.

Rows (sequential unless said): non-streamed latency direct and through the gateway; time to
first token (TTFT) of a streamed answer direct, through the gateway, and through the gateway with
the official openai SDK as the client; the gateway's TTFT at CONCURRENCY streams in flight.
Bounded: BENCH_N calls per row (default 1000), each row at most 60 s.
"""

import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import openai
from rich.console import Console
from rich.table import Table

from services.cli.mesh import Mesh
from services.providers import make_provider
from services.providers.base import ChatCall, ProviderSpec
from services.providers.streaming import StreamTimeouts, TextDelta
from services.runtime.natsd import NatsServer, free_port

N = int(os.environ.get("BENCH_N", "1000"))
CONCURRENCY = 50
ROW_LIMIT_S = 60.0
MESSAGES = [{"role": "user", "content": "What is your refund policy?"}]
TIMEOUTS = StreamTimeouts(first_token=10, idle=10, total=30)


async def _row(name: str, call: Callable[[], Awaitable[float]], n: int) -> dict:
    """`call` returns the figure to report (seconds): latency or time to first token."""
    for _ in range(min(50, n)):  # warm pools, connections and caches
        await call()
    figures = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while len(figures) < n and time.perf_counter() - wall0 < ROW_LIMIT_S:
        figures.append(await call())
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    q = statistics.quantiles(figures, n=100)
    return {"name": name, "n": len(figures), "cpu_ms": cpu / len(figures) * 1000,
            "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "rps": len(figures) / wall}


async def _concurrent(name: str, call: Callable[[], Awaitable[float]], n: int) -> dict:
    slots = asyncio.Semaphore(CONCURRENCY)
    figures: list[float] = []
    errors = 0

    async def one() -> None:
        nonlocal errors
        async with slots:
            try:
                figures.append(await call())
            except (aiohttp.ClientError, AssertionError, TimeoutError):
                errors += 1

    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(one() for _ in range(n))), ROW_LIMIT_S)
    wall = time.perf_counter() - t0
    q = statistics.quantiles(figures, n=100)
    return {"name": name, "n": n, "cpu_ms": None, "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000,
            "rps": n / wall, "errors": errors}


async def _ttft_over_http(http: aiohttp.ClientSession, url: str, body: bytes) -> float:
    """Seconds to the first content chunk of a streamed answer; reads the stream to its end."""
    t0 = time.perf_counter()
    first = None
    async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
        assert r.status == 200, r.status
        async for line in r.content:
            if first is None and line.startswith(b"data: ") and b'"content":"' in line \
                    and b'"content":""' not in line:
                first = time.perf_counter() - t0
        assert line.strip() == b"" or b"[DONE]" in line
    assert first is not None, "no text in the stream"
    return first


async def _rows(sim_url: str, gw_url: str) -> list[dict]:
    direct = make_provider(ProviderSpec(name="openai", kind="openai", base_url=f"{sim_url}/openai/v1",
                                        api_key="k"))
    call = ChatCall(model="gpt-4o-mini", messages=MESSAGES, max_tokens=64)
    plain = json.dumps({"model": "chat", "messages": MESSAGES, "max_tokens": 64}).encode()
    streamed = json.dumps({"model": "chat", "messages": MESSAGES, "max_tokens": 64, "stream": True}).encode()
    chat_url = f"{gw_url}/v1/chat/completions"

    async def direct_latency() -> float:
        t0 = time.perf_counter()
        await direct.complete(call, timeout=10)
        return time.perf_counter() - t0

    async def direct_ttft() -> float:
        t0, first = time.perf_counter(), None
        async for event in direct.stream(call, timeouts=TIMEOUTS):
            if first is None and isinstance(event, TextDelta):
                first = time.perf_counter() - t0
        assert first is not None
        return first

    async with aiohttp.ClientSession() as http, openai.AsyncOpenAI(
            base_url=f"{gw_url}/v1", api_key="k", max_retries=0) as sdk:
        async def gateway_latency() -> float:
            t0 = time.perf_counter()
            async with http.post(chat_url, data=plain, headers={"Content-Type": "application/json"}) as r:
                assert r.status == 200
                await r.read()
            return time.perf_counter() - t0

        async def sdk_ttft() -> float:
            t0, first = time.perf_counter(), None
            async for chunk in await sdk.chat.completions.create(model="chat", messages=MESSAGES,
                                                                 max_tokens=64, stream=True):
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.perf_counter() - t0
            assert first is not None
            return first

        try:
            return [
                await _row("latency direct: adapter -> simulator", direct_latency, N),
                await _row("latency via gateway (HTTP -> gateway -> NATS -> router -> simulator)",
                           gateway_latency, N),
                await _row("TTFT direct: adapter stream -> simulator", direct_ttft, N),
                await _row("TTFT via gateway", lambda: _ttft_over_http(http, chat_url, streamed), N),
                await _row("TTFT via gateway, openai SDK as the client", sdk_ttft, min(N, 300)),
                await _concurrent(f"TTFT via gateway, {CONCURRENCY} streams in flight",
                                  lambda: _ttft_over_http(http, chat_url, streamed), N),
            ]
        finally:
            await direct.aclose()


def show_rows(rows: list[dict]) -> None:
    table = Table(title="The gateway: time to first token and added latency (p50/p99 are the figure)")
    for col in ("row", "calls", "client CPU ms/call", "p50 ms", "p99 ms", "calls/s", "errors"):
        table.add_column(col, justify="left" if col == "row" else "right")
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for r in rows:
        table.add_row(r["name"], str(r["n"]), fmt(r["cpu_ms"]), fmt(r["p50_ms"]), fmt(r["p99_ms"]),
                      f"{r['rps']:.0f}", str(r.get("errors", "-")))
    Console().print(table)
    direct, via = rows[0]["p50_ms"], rows[1]["p50_ms"]
    ttft_direct, ttft_via = rows[2]["p50_ms"], rows[3]["p50_ms"]
    Console().print(f"gateway adds {via - direct:.2f} ms (p50) to a non-streamed answer and "
                    f"{ttft_via - ttft_direct:.2f} ms (p50) to the time to first token")


async def run(sim_port: int) -> list[dict]:
    """The section's rows, printed as a table; the simulator is already running on `sim_port`."""
    with tempfile.TemporaryDirectory() as home, NatsServer(Path(home) / "nats") as bus:
        gw_port = free_port()
        mesh = Mesh(nats_url=bus.url, home=Path(home), simulator_port=sim_port, gateway_port=gw_port,
                    env={"LIFELINE_LOG_LEVEL": "WARNING"})
        mesh.start_service("router")
        mesh.start_service("gateway")
        try:
            mesh.wait_ready()
            rows = await _rows(f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{gw_port}")
        finally:
            mesh.stop_all()

    return rows
