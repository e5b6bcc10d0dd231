"""Live updates: re-renders the page's live block when anything it shows changed, and hands the
HTML to every open page (server-sent events).

A change made by this instance pokes the hub at once; a change made by another instance is seen
by polling a cheap fingerprint of the tables every `poll_s`, and only while pages are open.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

CLOSE = ""  # sent to every client on shutdown: the stream ends


class LiveHub:
    def __init__(self, *, render: Callable[[], Awaitable[str]],
                 fingerprint: Callable[[], Awaitable[tuple[Any, ...]]], poll_s: float) -> None:
        self.render = render
        self.fingerprint = fingerprint
        self.poll_s = poll_s
        self.clients: set[asyncio.Queue[str]] = set()
        self.poked = asyncio.Event()
        self.last_print: tuple[Any, ...] | None = None
        self.last_html: str | None = None

    def poke(self) -> None:
        self.poked.set()

    def join(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self.clients.add(queue)
        return queue

    def leave(self, queue: asyncio.Queue[str]) -> None:
        self.clients.discard(queue)

    def close(self) -> None:
        for queue in list(self.clients):
            self._offer(queue, CLOSE)

    @staticmethod
    def _offer(queue: asyncio.Queue[str], html: str) -> None:
        """Only the newest page matters: a slow client skips the ones it missed."""
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(html)

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            try:
                await asyncio.wait_for(self.poked.wait(), self.poll_s)
            except TimeoutError:
                pass
            poked = self.poked.is_set()
            self.poked.clear()
            if not self.clients:
                continue
            try:
                await self.refresh(force=poked)
            except SQLAlchemyError as e:  # the database is away: the pages keep what they show
                log.warning("live page refresh: %r", e)

    async def refresh(self, *, force: bool = False) -> None:
        fingerprint = await self.fingerprint()
        if not force and fingerprint == self.last_print:
            return
        self.last_print = fingerprint
        html = await self.render()
        if html == self.last_html:
            return
        self.last_html = html
        for queue in list(self.clients):
            self._offer(queue, html)
