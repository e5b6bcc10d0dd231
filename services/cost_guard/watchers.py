"""The KV buckets the cost guard follows: `control` (kill switches: refuse killed keys, announce
each change once) and `limits` (budgets set at run time)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.js import JetStreamContext
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import subjects
from schemas.control import KILLSWITCH_KEY_PREFIX, Killswitch, scope_of
from schemas.costs import LIMITS_SPEND_KEY
from schemas.events import KillswitchEngaged, KillswitchReleased
from schemas.streams import CONTROL, LIMITS
from services.runtime.config.budgets import RunTimeBudgets

from . import outbox
from .guard import Guard
from .levels import Effect

log = logging.getLogger(__name__)

OnEntry = Callable[[str, int, bytes | None], Awaitable[None]]
BUCKETS = (CONTROL.name, LIMITS.name)


async def watch(js: JetStreamContext, bucket: str, on_entry: OnEntry,
                loaded: asyncio.Event) -> None:
    """on_entry(key, revision, value or None when deleted) for every key now and every change;
    `loaded` is set once the current values are in. Watches again if the bus goes away."""
    while True:
        try:
            kv = await js.key_value(bucket)
            async for entry in await kv.watch(">"):
                if entry is None:  # the current values have all been delivered
                    loaded.set()
                    continue
                deleted = entry.operation in ("DEL", "PURGE")
                await on_entry(entry.key, entry.revision, None if deleted else entry.value)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the bus restarted or the bucket is not there yet: watch again
            log.warning("watching KV %s: %r; watching again in 1 s", bucket, e)
            await asyncio.sleep(1.0)


def on_control(guard: Guard) -> OnEntry:
    async def handle(key: str, revision: int, value: bytes | None) -> None:
        scope = scope_of(key)
        if scope is None:  # downgrade flags and others: not a kill switch
            return
        switch = _killswitch(key, value)
        if key.startswith(KILLSWITCH_KEY_PREFIX):  # admission refuses a killed key
            key_id = key.removeprefix(KILLSWITCH_KEY_PREFIX)
            if switch is not None and switch.engaged:
                guard.killed_keys[key_id] = switch.reason or "engaged"
            else:
                guard.killed_keys.pop(key_id, None)
        try:
            await announce(guard, key, revision, scope, switch, deleted=value is None)
        except SQLAlchemyError as e:  # another instance, or this one's restart, announces it
            log.error("kill switch change %s.%d not announced: %r", key, revision, e)
    return handle


async def announce(guard: Guard, key: str, revision: int, scope: str, switch: Killswitch | None,
                   *, deleted: bool) -> None:
    """killswitch.engaged / released once per change of a kill-switch key, by one instance:
    the one whose transaction records this revision as announced (message id key.revision)."""
    engaged = switch is not None and switch.engaged
    event = (KillswitchEngaged if engaged else KillswitchReleased)(
        id=f"{key}.{revision}", source=guard.source, scope=scope,
        actor=(switch.actor if switch and switch.actor else "unknown"),
        reason=(switch.reason if switch else "") or ("key deleted" if deleted else ""))
    effect = Effect("event", subjects.KILLSWITCH_ENGAGED if engaged
                    else subjects.KILLSWITCH_RELEASED, event.model_dump_json(), event.id)

    async def work(conn: AsyncConnection) -> None:
        if await outbox.first_to_announce(conn, key, revision):
            await outbox.add(conn, [effect], guard.clock().timestamp())
            guard.outbox_ready.set()

    await guard.transaction(work)


def on_limits(guard: Guard) -> OnEntry:
    async def handle(key: str, revision: int, value: bytes | None) -> None:
        if key != LIMITS_SPEND_KEY:
            return
        try:
            budgets = RunTimeBudgets.model_validate_json(value) if value else RunTimeBudgets()
        except ValidationError as e:
            log.error("ignoring run-time budgets (KV %s %s rev %d): %s", LIMITS.name, key,
                      revision, e)
            return
        guard.use(overrides=budgets.spend)
        log.info("run-time budgets: %s", ", ".join(
            f"{b.name}=${b.limit_usd:g}" for b in budgets.spend) or "none")
    return handle


def _killswitch(key: str, value: bytes | None) -> Killswitch | None:
    if value is None:
        return None
    try:
        return Killswitch.model_validate_json(value)
    except ValidationError as e:  # a garbled value is no kill switch; say so, keep watching
        log.error("ignoring control %s = %r: %s", key, value[:200], e)
        return None
