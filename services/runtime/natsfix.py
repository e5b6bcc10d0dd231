"""Fixes for nats-py (2.16).

1. `flush()` must follow what was queued before it.

`Client._send_ping` writes PING straight to the socket, ahead of commands still queued for the
flusher task. So `flush()` returns once the server answered a PING that overtook, say, our
`SUB llm.complete`: a service would call itself ready before the server knows it subscribed
(callers got "no responders"), and `Subscription.drain()` (UNSUB, flush, finish pending) could
finish before the server stopped routing to us, dropping a request. nats.py2 fixed the same bug
in 2017 (nats-io/nats.py2#24) by sending PING through the flusher; this does the same, and
tests/integration/test_nats_flush_order.py fails without it.

2. A pull subscription's `fetch()` must time out with nats.errors.TimeoutError. When its deadline
passes between the no-wait probe and the long poll, `_fetch_n` raises a bare asyncio.TimeoutError;
FastStream 0.7.8's pull loops catch only the nats one, so the loop task dies (logged as an error,
restarted by FastStream's supervisor) and a batch subscriber loses the messages it had gathered
for that batch: they wait unacknowledged for AckWait before the server redelivers them. The nats
error is a subclass of asyncio's, so every caller that caught either still does.
tests/integration/test_nats_fetch_timeout.py fails without it.
"""

import asyncio
from typing import Any

from nats.aio import client as _client
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.client import JetStreamContext

_original = _client.Client._send_ping
_PullSubscription = JetStreamContext.PullSubscription
_original_fetch = _PullSubscription.fetch


async def _send_ping_in_order(self: Any, future: asyncio.Future[Any] | None = None) -> None:
    assert self._transport, "Client.connect must be called first"
    if future is None:
        future = asyncio.Future()
    self._pongs.append(future)
    await self._send_command(_client.PING_PROTO)  # queued behind everything before it
    await self._flush_pending()


async def _fetch_timing_out_as_nats(self: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await _original_fetch(self, *args, **kwargs)
    except NatsTimeoutError:
        raise
    except asyncio.TimeoutError:
        raise NatsTimeoutError from None


def apply() -> None:
    """Idempotent; called when services.runtime.bus is imported."""
    _client.Client._send_ping = _send_ping_in_order  # type: ignore[method-assign]
    _PullSubscription.fetch = _fetch_timing_out_as_nats  # type: ignore[method-assign]


def revert() -> None:
    """For the tests that prove the bugs are real."""
    _client.Client._send_ping = _original  # type: ignore[method-assign]
    _PullSubscription.fetch = _original_fetch  # type: ignore[method-assign]
