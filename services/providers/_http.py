"""One provider's own HTTP connection pool, and the one POST every adapter makes."""

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from services.providers.errors import classify_transport_error

# The call's `timeout` is the only bound (asyncio.timeout below); aiohttp's 5-minute default
# would just be a second, different clock.
_NO_SESSION_TIMEOUT = aiohttp.ClientTimeout(total=None)


class HttpPool:
    """A ClientSession with its own TCPConnector, so a slow vendor cannot starve another's pool.

    Created lazily inside the running loop (aiohttp binds a session to the loop that made it, and
    nothing should connect at import or construction time); `aclose()` releases the sockets.
    """

    def __init__(self, max_connections: int) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0)
        self._session = aiohttp.ClientSession(connector=connector, timeout=_NO_SESSION_TIMEOUT)
        return self._session

    async def post(
        self, url: str, headers: dict[str, str], body: dict[str, Any], *, timeout: float
    ) -> tuple[int, Mapping[str, str], bytes]:
        """(status, headers, raw body); raises ProviderError(TIMEOUT | CONNECTION) if no answer.

        `timeout` (seconds) covers waiting for a pooled connection, connecting, sending, and
        reading the whole body.
        """
        session = self._session
        if session is None or session.closed:
            session = self._open()
        data = json.dumps(body).encode()
        try:
            async with asyncio.timeout(timeout):
                async with session.post(url, data=data, headers=headers) as resp:
                    return resp.status, resp.headers, await resp.read()
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            raise classify_transport_error(exc, timeout=timeout) from exc

    @asynccontextmanager
    async def open_stream(
        self, url: str, headers: dict[str, str], body: dict[str, Any]
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A POST whose body the caller reads as it arrives (streaming); the caller bounds the
        time and maps aiohttp's errors. Leaving the block releases (or closes) the connection."""
        session = self._session
        if session is None or session.closed:
            session = self._open()
        async with session.post(url, data=json.dumps(body).encode(), headers=headers) as resp:
            yield resp

    async def get(
        self, url: str, headers: dict[str, str], *, timeout: float
    ) -> tuple[int, Mapping[str, str], bytes]:
        """A GET (the models list a health probe asks for), bounded and classified like post()."""
        session = self._session
        if session is None or session.closed:
            session = self._open()
        try:
            async with asyncio.timeout(timeout):
                async with session.get(url, headers=headers) as resp:
                    return resp.status, resp.headers, await resp.read()
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            raise classify_transport_error(exc, timeout=timeout) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
