"""`python -m services.simulator` runs as a real process: announces its port, serves, stops on SIGTERM.

Uses: a subprocess of the current interpreter, raw aiohttp.
"""

import asyncio
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"^simulator listening on (http://127\.0\.0\.1:(\d+))\n$")


@asynccontextmanager
async def _simulator(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.simulator", "--port", "0", *args,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=10)).decode()
        match = LISTENING.match(line)
        assert match, f"unexpected first line {line!r}"
        assert int(match.group(2)) > 0
        yield process, match.group(1)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_announces_its_port_serves_and_exits_0_on_sigterm() -> None:
    async with _simulator() as (process, url), aiohttp.ClientSession() as http:
        async with http.get(f"{url}/healthz") as r:
            assert r.status == 200 and await r.json() == {"status": "ok"}
        async with http.get(f"{url}/_sim/vendors") as r:
            assert list((await r.json())["vendors"]) == ["openai", "anthropic", "local"]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=5) == 0
        assert process.stdout is not None
        assert await process.stdout.read() == b""  # exactly one line, ever


async def test_vendor_options_replace_the_defaults_and_sigint_stops_it() -> None:
    async with _simulator("--vendor", "acme=anthropic", "--vendor", "vllm=openai") as (process, url):
        async with aiohttp.ClientSession() as http, http.get(f"{url}/_sim/vendors") as r:
            vendors = (await r.json())["vendors"]
        assert {name: v["format"] for name, v in vendors.items()} == {"acme": "anthropic", "vllm": "openai"}
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), timeout=5) == 0


async def test_a_bad_vendor_option_is_refused_with_a_usage_error() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.simulator", "--vendor", "acme=cohere",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=10)
    assert process.returncode == 2 and stdout == b""
    assert b"NAME=FORMAT" in stderr and b"anthropic" in stderr
