"""The gateway as `lifeline up` runs it (separate processes, shipped config): any OpenAI SDK works
with no key, a vendor dying mid-stream is invisible, and a gateway stopped with SIGTERM mid-stream
finishes the answer it is sending before it exits."""

import asyncio
import signal
import time

import aiohttp
import openai

from services.cli.mesh import Mesh

ASK = [{"role": "user", "content": "What is your refund policy?"}]


async def test_streams_through_the_mesh_survive_a_vendor_and_a_gateway_stop(mesh: Mesh):
    mesh.start_simulator()
    mesh.start_service("router")
    mesh.start_service("gateway")
    mesh.wait_ready()
    base = f"http://127.0.0.1:{mesh.gateway_port}/v1"
    async with aiohttp.ClientSession() as http, openai.AsyncOpenAI(
            base_url=base, api_key="sk-anything", max_retries=0) as client:
        # The primary dies after three words: the caller still gets one whole answer.
        async with http.put(f"{mesh.simulator_url}/_sim/vendors/openai",
                            json={"mode": "cut", "cut_after": 3}) as r:
            assert r.status == 200
        chunks = [c async for c in await client.chat.completions.create(
            model="chat", messages=ASK, stream=True)]
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == (
            "[openai/gpt-4o-mini] You asked: What is your refund policy. This is a simulated answer.")
        assert chunks[-1].choices[0].finish_reason == "stop"

        # A slow answer (150 ms a word) is under way when the gateway is told to stop.
        async with http.put(f"{mesh.simulator_url}/_sim/vendors/openai",
                            json={"mode": "ok", "chunk_delay_ms": 150}) as r:
            assert r.status == 200
        stream = await client.chat.completions.create(model="chat", messages=ASK, stream=True)
        got = [await anext(stream)]
        mesh.signal("gateway", signal.SIGTERM)
        t0 = time.monotonic()
        got += [c async for c in stream]
        assert time.monotonic() - t0 > 1.0  # the answer kept coming after the signal ...
        assert got[-1].choices[0].finish_reason == "stop"  # ... to its proper end
        assert "".join(c.choices[0].delta.content or "" for c in got).endswith("simulated answer.")
        assert await asyncio.to_thread(mesh.children["gateway"].proc.wait, 20) == 0
