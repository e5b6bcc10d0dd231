"""When the drain may call, and how fast: the queue worker's waiting room.

- route_wait: a route may be called when one of its members is not open, not cooling after a
  429, not down per the health monitor and not revoked, and the kill switch is released;
- until / wait_change: sleep until then, the backoff, or a change (KV watch, a drained call's
  success), never polling in a loop;
- take_token: the drain's pace (drain.py DrainRate), this router's share of it (Peers), one
  token per call, interactive callers first.
"""

import asyncio
import time
from collections.abc import Callable

from schemas.completion import ResultError
from services.runtime.config import LifelineConfig

from . import logic
from .drain import DrainRate, Peers, Priority, TokenBucket
from .engine import Engine


class Gate:
    def __init__(self, config: LifelineConfig, engine: Engine, *, heartbeat_interval: float,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.config, self.engine = config, engine
        self.clock, self.wall = clock, wall
        self.rate = DrainRate(config.tiers.queue)
        self.bucket = TokenBucket()
        self.peers = Peers(timeout=3 * heartbeat_interval)
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def changed(self) -> None:
        """Wake every waiter: they look again."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def stop(self) -> None:
        self._stopping.set()
        self.changed()

    def route_wait(self, route: str, region: str | None) -> float | None:
        """Seconds until the route may be called (0: now), or None: until something changes."""
        if self.engine.killswitch is not None:
            return None  # parked work waits for the release, not for a maintenance message
        members = logic.plan(self.config, route, region)
        if isinstance(members, ResultError):
            return 0.0  # the engine answers it with the error
        now = self.clock()
        due = self.engine.availability.due_back([(m.provider, m.key) for m in members], now)
        return None if due is None else max(0.0, due - now)

    def any_route_wait(self) -> float | None:
        waits = [w for r in self.config.routes if (w := self.route_wait(r, None)) is not None]
        return min(waits) if waits else None

    async def until(self, wait_of: Callable[[], float | None], *, not_before: float = 0.0,
                    until_wall: float = float("inf")) -> bool:
        """Waits until wait_of() says 0 and `not_before` (monotonic) has passed. False when
        stopping or at `until_wall` (unix seconds). A change wakes it and ends the backoff."""
        while not self._stopping.is_set():
            left = until_wall - self.wall()
            if left <= 0:
                return False
            wait = wait_of()
            backoff = not_before - self.clock()
            if wait == 0 and backoff <= 0:
                return True
            timeout = min(t for t in (wait, backoff if backoff > 0 else None, left) if t is not None)
            if await self.wait_change(None if timeout == float("inf") else timeout):
                not_before = 0.0
        return False

    async def wait_change(self, timeout: float | None) -> bool:
        """True if something changed (or we are stopping) within `timeout` seconds."""
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def take_token(self, priority: Priority) -> None:
        """Returns once this router may make one more drained call."""
        self.bucket.waiting[priority] += 1
        try:
            while True:
                now = self.clock()
                self.rate.share = 1 / self.peers.alive(now)
                wait = self.bucket.take(now, self.rate.rate(now), priority)
                if wait == 0:
                    return
                await asyncio.sleep(wait)
        finally:
            self.bucket.waiting[priority] -= 1
