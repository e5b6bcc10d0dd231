"""Where the health monitor's state lives on the bus (nats-py directly):

- the `provider-health` KV: each transition is a compare-and-set on the provider's key, so when
  several monitor instances decide the same thing at once exactly one of them makes it;
- the STATUS stream: provider.* and service.* events, replayed from the start at start-up (90 days
  kept) and followed live - the uptime accounting is built from them, so it survives restarts
  with no database of its own, and every instance computes the same figures.

Both are followed with ordered consumers that survive a restart of the bus (Follower).
"""

import asyncio
import logging
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import (
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from schemas import subjects
from schemas.control import ProviderHealth
from schemas.streams import PROVIDER_HEALTH, STATUS

log = logging.getLogger(__name__)

REPLAYED = (subjects.PROVIDER_DOWN, subjects.PROVIDER_UP, subjects.PROVIDER_DEGRADED,
            subjects.SERVICE_DOWN, subjects.SERVICE_UP)
OnEntry = Callable[[str, int, bytes | None], None]  # key, revision, value (None: deleted)


class HealthKV:
    def __init__(self, js: JetStreamContext) -> None:
        self.js = js
        self._kv: KeyValue | None = None

    async def kv(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self.js.key_value(PROVIDER_HEALTH.name)
        return self._kv

    async def write(self, provider: str, value: ProviderHealth, last: int | None) -> int | None:
        """Compare-and-set: the new revision, or None if someone else changed the key first."""
        kv = await self.kv()
        data = value.model_dump_json().encode()
        try:
            if last is None:
                return await kv.create(provider, data)
            return await kv.update(provider, data, last=last)
        except KeyWrongLastSequenceError:
            return None

    async def get(self, provider: str) -> tuple[int, ProviderHealth] | None:
        kv = await self.kv()
        try:
            entry = await kv.get(provider)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        return entry.revision or 0, ProviderHealth.model_validate_json(entry.value or b"")


class Follower:
    """An ordered consumer (ephemeral, in order, no acks) that outlives a restart of the bus.

    nats-py recreates an ordered consumer when it notices a gap, but not one the server lost
    altogether (a restarted nats-server keeps no ephemeral consumers): the subscription then
    stays silent. So every `check_s` we ask for the consumer, and when the server no longer knows
    it we subscribe again from the message after the last one seen. `caught_up` is set once what
    the stream held at the first subscription has been delivered.
    """

    def __init__(self, js: JetStreamContext, *, stream: str, filters: list[str],
                 on_msg: Callable[[Msg], None], deliver_policy: DeliverPolicy,
                 check_s: float = 1.0) -> None:
        self.js = js
        self.stream = stream
        self.filters = filters
        self.on_msg = on_msg
        self.deliver_policy = deliver_policy
        self.check_s = check_s
        self.caught_up = asyncio.Event()
        self.last_seq = 0
        self.sub: Subscription | None = None

    async def _on_message(self, msg: Msg) -> None:
        try:
            self.on_msg(msg)
        finally:
            self.last_seq = max(self.last_seq, msg.metadata.sequence.stream)
            if msg.metadata.num_pending == 0:
                self.caught_up.set()

    async def subscribe(self) -> None:
        resume = self.last_seq and self.deliver_policy is not DeliverPolicy.LAST_PER_SUBJECT
        config = ConsumerConfig(filter_subjects=self.filters)
        if resume:
            config.opt_start_seq = self.last_seq + 1
        self.sub = await self.js.subscribe(
            "", stream=self.stream, cb=self._on_message, ordered_consumer=True, config=config,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if resume else self.deliver_policy)
        info = await self.sub.consumer_info()
        if info.num_pending == 0 and info.delivered.stream_seq == 0:
            self.caught_up.set()

    async def supervise(self) -> None:
        """Until cancelled: subscribe again whenever the server has lost the consumer."""
        while True:
            await asyncio.sleep(self.check_s)
            try:
                assert self.sub is not None
                await self.sub.consumer_info()
                continue
            except NotFoundError:
                log.warning("the bus lost the %s consumer (restarted?): following again", self.stream)
            except (NatsError, TimeoutError) as e:  # disconnected: nothing to do until it is back
                log.debug("cannot check the %s consumer: %r", self.stream, e)
                continue
            try:
                await self.sub.unsubscribe()
            except NatsError:
                pass
            try:
                await self.subscribe()
            except (NatsError, TimeoutError) as e:
                log.warning("following %s again failed: %r; retrying", self.stream, e)

    async def close(self) -> None:
        if self.sub is not None:
            try:
                await self.sub.unsubscribe()
            except NatsError:
                pass  # the connection closed first: the server dropped the consumer with it


def status_follower(js: JetStreamContext, on_msg: Callable[[Msg], None]) -> Follower:
    """Every provider.* and service.* event the STATUS stream holds (90 days), then the new ones."""
    return Follower(js, stream=STATUS.name, filters=list(REPLAYED), on_msg=on_msg,
                    deliver_policy=DeliverPolicy.ALL)


def kv_follower(js: JetStreamContext, on_entry: OnEntry) -> Follower:
    """The provider-health KV: each key's current value, then every change (a KV watch that
    survives a bus restart; values seen again are ignored by revision)."""
    prefix = f"$KV.{PROVIDER_HEALTH.name}."

    def on_msg(msg: Msg) -> None:
        deleted = (msg.headers or {}).get("KV-Operation") in ("DEL", "PURGE")
        on_entry(msg.subject.removeprefix(prefix), msg.metadata.sequence.stream,
                 None if deleted else msg.data)

    return Follower(js, stream=f"KV_{PROVIDER_HEALTH.name}", filters=[f"{prefix}>"],
                    on_msg=on_msg, deliver_policy=DeliverPolicy.LAST_PER_SUBJECT)
