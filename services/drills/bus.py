"""The drill's own bus connection: reading streams, following STATUS, control and limits KV."""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import nats
from nats.errors import NoServersError
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import (
    KeyNotFoundError,
    NoStreamResponseError,
    NotFoundError,
    ServiceUnavailableError,
)
from pydantic import BaseModel

from schemas import subjects
from schemas.streams import STATUS
from services.runtime.bus import MSG_ID
from services.runtime.natsd import is_reachable

from .timeline import BusEvent

READ_LIMIT = 500_000  # messages one stream read takes at most: a drill's window, not a history
RETRIES = 20  # bus calls after a fault (a node lost, a leader being elected) are tried again
T = TypeVar("T")


class DrillError(Exception):
    """The drill cannot run (or cannot go on); said plainly to the operator."""


async def _quiet(error: Exception) -> None:
    """nats-py logs each failed (re)connect with a traceback; the drill counts failures itself."""


async def retried(call: Callable[[], Awaitable[T]], what: str) -> T:
    """A JetStream call that may meet an election in progress: asked again for up to ~10 s."""
    for attempt in range(RETRIES):
        try:
            return await call()
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError, NoStreamResponseError,
                ServiceUnavailableError, nats.errors.ConnectionReconnectingError):
            if attempt == RETRIES - 1:
                raise DrillError(f"the bus did not answer {what}") from None
            await asyncio.sleep(0.5)
    raise AssertionError


class DrillBus:
    def __init__(self, nc: nats.NATS, t0: float) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.t0 = t0
        self.status: list[BusEvent] = []
        self._changed = asyncio.Condition()
        self._status_sub: Any = None

    @classmethod
    async def connect(cls, url: str, t0: float) -> "DrillBus":
        # nats-py retries a first connection as often as a lost one: ask the sockets first.
        if not any(is_reachable(u.strip()) for u in url.split(",")):
            raise DrillError(f"cannot reach NATS at {url}; is the mesh up? (lifeline up)")
        try:
            # Reconnects for a while: bus-node-loss kills the node we may be talking to.
            nc = await nats.connect(url.split(","), connect_timeout=2, reconnect_time_wait=0.25,
                                    max_reconnect_attempts=240, error_cb=_quiet,
                                    name="lifeline-drill")
        except (NoServersError, OSError):
            raise DrillError(f"cannot reach NATS at {url}; is the mesh up? (lifeline up)") from None
        return cls(nc, t0)

    async def close(self) -> None:
        if self._status_sub is not None:
            try:
                await self._status_sub.unsubscribe()
            except nats.errors.Error:
                pass
        await self.nc.close()

    def rel(self, at: datetime) -> float:
        return at.timestamp() - self.t0

    # --- STATUS, live: what a scenario waits for ------------------------------------------------

    async def follow_status(self) -> None:
        async def on_msg(msg: Any) -> None:
            async with self._changed:
                self.status.append(BusEvent(self.rel(msg.metadata.timestamp), msg.subject,
                                            json.loads(msg.data)))
                self._changed.notify_all()
        self._status_sub = await self.js.subscribe(
            ">", stream=STATUS.name, cb=on_msg, ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW)

    async def wait_status(self, subject: str, within: float,
                          where: Callable[[BusEvent], bool] = lambda e: True,
                          after: float = float("-inf")) -> BusEvent | None:
        """The first STATUS event of `subject` stored at or after `after` that `where` accepts."""
        def found() -> BusEvent | None:
            return next((e for e in self.status
                         if e.subject == subject and e.t >= after and where(e)), None)
        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), within)
        except TimeoutError:
            return None
        return found()

    # --- streams, after the fact: the truth of what was stored ----------------------------------

    async def read(self, stream: str, subject: str, since: float) -> list[BusEvent]:
        """Every message of `subject` stored in `stream` since `since` (drill seconds)."""
        return await retried(lambda: self._read(stream, subject, since), f"reading {stream}")

    async def _read(self, stream: str, subject: str, since: float) -> list[BusEvent]:
        try:
            info = await self.js.stream_info(stream)
        except NotFoundError:
            return []
        if info.state.messages == 0:
            return []
        start = datetime.fromtimestamp(self.t0 + since, UTC)
        sub = await self.js.subscribe(subject, stream=stream, ordered_consumer=True, config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=start))
        out: list[BusEvent] = []
        try:
            while len(out) < READ_LIMIT:
                try:
                    msg = await sub.next_msg(timeout=3)
                except nats.errors.TimeoutError:
                    break  # nothing (more) since `since`
                out.append(BusEvent(self.rel(msg.metadata.timestamp), msg.subject, json.loads(msg.data)))
                if msg.metadata.num_pending == 0:
                    break
        finally:
            await sub.unsubscribe()
        return out

    async def last_on(self, stream: str, subject: str) -> BusEvent | None:
        """The last message on one subject (e.g. llm.result.<id>), or None."""
        try:
            raw = await self.js.get_last_msg(stream, subject)
        except NotFoundError:
            return None
        at = raw.time.timestamp() - self.t0 if raw.time else time.time() - self.t0
        return BusEvent(at, subject, json.loads(raw.data or b"{}"))

    async def publish(self, subject: str, event: BaseModel, msg_id: str) -> None:
        payload = event.model_dump_json().encode()
        await retried(lambda: self.js.publish(subject, payload, headers={MSG_ID: msg_id}), subject)

    # --- KV: control (fault switch, kill switch) and limits (run-time budgets) ------------------

    async def kv_get(self, bucket: str, key: str) -> tuple[bytes | None, int]:
        kv = await self.js.key_value(bucket)
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            return None, 0
        return entry.value, entry.revision or 0

    async def kv_put(self, bucket: str, key: str, value: bytes) -> int:
        return await (await self.js.key_value(bucket)).put(key, value)

    async def kv_delete(self, bucket: str, key: str) -> None:
        await (await self.js.key_value(bucket)).delete(key)

    # --- heartbeats: who is alive -------------------------------------------------------------

    async def instances(self, listen_s: float) -> dict[str, set[str]]:
        """Service -> instances heard beating within `listen_s` (one heartbeat interval)."""
        seen: dict[str, set[str]] = {}

        async def on_beat(msg: Any) -> None:
            beat = json.loads(msg.data)
            if not beat.get("stopping"):
                seen.setdefault(beat["service"], set()).add(beat["instance"])
        sub = await self.nc.subscribe(f"{subjects.SERVICE_HEARTBEAT_PREFIX}.>", cb=on_beat)
        await asyncio.sleep(listen_s)
        await sub.unsubscribe()
        return seen
