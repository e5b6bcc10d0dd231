"""A fix for nats-py (2.16): `flush()` must follow what was queued before it.

`Client._send_ping` writes PING straight to the socket, ahead of commands still queued for the
flusher task. So `flush()` returns once the server answered a PING that overtook, say, our
`SUB llm.complete`: a service would call itself ready before the server knows it subscribed
(callers got "no responders"), and `Subscription.drain()` (UNSUB, flush, finish pending) could
finish before the server stopped routing to us, dropping a request. nats.py2 fixed the same bug
in 2017 (nats-io/nats.py2#24) by sending PING through the flusher; this does the same, and
tests/integration/test_nats_flush_order.py fails without it.
"""

import asyncio
from typing import Any

from nats.aio import client as _client

_original = _client.Client._send_ping


async def _send_ping_in_order(self: Any, future: asyncio.Future[Any] | None = None) -> None:
    assert self._transport, "Client.connect must be called first"
    if future is None:
        future = asyncio.Future()
    self._pongs.append(future)
    await self._send_command(_client.PING_PROTO)  # queued behind everything before it
    await self._flush_pending()


def apply() -> None:
    """Idempotent; called when services.runtime.bus is imported."""
    _client.Client._send_ping = _send_ping_in_order  # type: ignore[method-assign]


def revert() -> None:
    """For the test that proves the bug is real."""
    _client.Client._send_ping = _original  # type: ignore[method-assign]
