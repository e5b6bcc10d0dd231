"""One provider's own HTTP connection pool, and the one POST every adapter makes."""

import asyncio
import json
from collections.abc import Mapping
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

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
