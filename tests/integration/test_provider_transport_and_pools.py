"""No HTTP answer (refused, cut, stalled) becomes CONNECTION or TIMEOUT within the call's bound,
and each provider's connection pool is its own.

Real things used: aiohttp client, an aiohttp server and raw asyncio TCP servers on 127.0.0.1.
"""

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from schemas.completion import ErrorKind
from services.providers import ChatCall, Provider, ProviderError, ProviderSpec, make_provider

CALL = ChatCall(model="m", messages=[{"role": "user", "content": "hi"}])
OK = {
    "model": "m",
    "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1},
}
SLACK = 0.25  # seconds a timed-out call may overrun its bound (scheduling, closing the socket)


@asynccontextmanager
async def provider_at(
    url: str, *, kind: str = "openai_compatible", max_connections: int = 100
) -> AsyncIterator[Provider]:
    spec = ProviderSpec(name=kind, kind=kind, base_url=url, api_key="k", max_connections=max_connections)  # type: ignore[arg-type]
    provider = make_provider(spec)
    try:
        yield provider
    finally:
        await provider.aclose()


@asynccontextmanager
async def raw_server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    """A TCP server that speaks as little HTTP as the test wants."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


class SlowVendor:
    """An HTTP vendor whose answers wait until released; counts the requests that reached it."""

    def __init__(self) -> None:
        self.arrived = 0
        self.first_arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.arrived += 1
        self.first_arrived.set()
        await self.release.wait()
        return web.json_response(OK)


@asynccontextmanager
async def http_server(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def slow() -> AsyncIterator[tuple[SlowVendor, str]]:
    vendor = SlowVendor()
    async with http_server(vendor.handle) as url:
        yield vendor, url
        vendor.release.set()  # let parked handlers finish so the server stops at once


async def _fast(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response(OK)


async def _fails(provider: Provider, timeout: float) -> tuple[ProviderError, float]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ProviderError) as caught:
        await provider.complete(CALL, timeout=timeout)
    return caught.value, loop.time() - started


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_connection_refused_is_connection(kind: str) -> None:
    async with provider_at(f"http://127.0.0.1:{_closed_port()}", kind=kind) as provider:
        error, _ = await _fails(provider, timeout=5)
    assert error.kind is ErrorKind.CONNECTION
    assert error.status_code is None


async def _read_request_head(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


async def test_server_that_closes_without_answering_is_connection() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request_head(reader)
        writer.close()

    async with raw_server(hang_up) as url, provider_at(url) as provider:
        error, _ = await _fails(provider, timeout=5)
    assert error.kind is ErrorKind.CONNECTION
    assert "ServerDisconnectedError" in error.message


async def test_body_cut_short_is_connection() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"choi")
        await writer.drain()
        writer.close()

    async with raw_server(cut) as url, provider_at(url) as provider:
        error, _ = await _fails(provider, timeout=5)
    assert error.kind is ErrorKind.CONNECTION


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_vendor_slower_than_the_timeout_is_timeout_within_the_bound(slow, kind: str) -> None:
    _, url = slow
    async with provider_at(url, kind=kind) as provider:
        error, elapsed = await _fails(provider, timeout=0.3)
    assert error.kind is ErrorKind.TIMEOUT
    assert 0.3 <= elapsed < 0.3 + SLACK


async def test_a_body_that_stalls_midway_is_timeout_within_the_bound() -> None:
    stalled = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{")
        await writer.drain()
        await stalled.wait()
        writer.close()

    async with raw_server(stall) as url, provider_at(url) as provider:
        error, elapsed = await _fails(provider, timeout=0.3)
        stalled.set()
    assert error.kind is ErrorKind.TIMEOUT
    assert elapsed < 0.3 + SLACK


async def test_a_saturated_pool_does_not_delay_another_provider(slow) -> None:
    vendor, slow_url = slow
    async with (
        http_server(_fast) as fast_url,
        provider_at(slow_url, max_connections=1) as starved,
        provider_at(fast_url, max_connections=1) as healthy,
    ):
        first = asyncio.create_task(starved.complete(CALL, timeout=10))
        await vendor.first_arrived.wait()  # the starved provider's only connection is now busy

        # Its pool really is full: a second call waits for a connection and times out there,
        # without ever reaching the vendor.
        error, _ = await _fails(starved, timeout=0.3)
        assert error.kind is ErrorKind.TIMEOUT
        assert vendor.arrived == 1

        # Meanwhile the other provider answers at once from its own pool.
        loop = asyncio.get_running_loop()
        started = loop.time()
        answer = await healthy.complete(CALL, timeout=5)
        assert answer.content == "ok"
        assert loop.time() - started < 0.2
        assert not first.done()

        vendor.release.set()
        assert (await first).content == "ok"


async def test_aclose_then_reuse_opens_a_fresh_pool() -> None:
    async with http_server(_fast) as url, provider_at(url) as provider:
        assert (await provider.complete(CALL, timeout=5)).content == "ok"
        await provider.aclose()
        await provider.aclose()  # idempotent
        assert (await provider.complete(CALL, timeout=5)).content == "ok"


async def test_error_bodies_are_read_within_the_bound_too() -> None:
    done = asyncio.Event()

    async def slow_error(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request_head(reader)
        body = json.dumps({"error": {"message": "x"}}).encode()
        # Promises 10 bytes more than it sends, then goes quiet.
        head = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n" % (len(body) + 10)
        writer.write(head + body)
        await writer.drain()
        await done.wait()
        writer.close()

    async with raw_server(slow_error) as url, provider_at(url) as provider:
        error, elapsed = await _fails(provider, timeout=0.3)
        done.set()
    assert error.kind is ErrorKind.TIMEOUT
    assert elapsed < 0.3 + SLACK
