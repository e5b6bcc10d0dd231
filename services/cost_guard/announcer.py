"""Sends the outbox: events to JetStream with their message ids, control keys with compare-and-set.

Every cost-guard instance runs one. Two sending the same row is harmless: JetStream drops the
second copy of an event (same Nats-Msg-Id within the duplicate window), and a control write
only happens when the key is not already as wanted, at the revision that was read.
"""

import asyncio
import logging
import time

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from schemas.control import DOWNGRADE_PREFIX, Downgrade, Killswitch
from schemas.streams import CONTROL
from services.runtime.bus import MSG_ID

from . import outbox
from .guard import Guard
from .levels import Effect

log = logging.getLogger(__name__)


class Announcer:
    def __init__(self, guard: Guard, js: JetStreamContext, *, idle_s: float = 1.0) -> None:
        self.guard = guard
        self.js = js
        self.idle_s = idle_s  # also looks this often: rows another instance committed

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.guard.outbox_ready.wait(), self.idle_s)
            except TimeoutError:
                pass
            self.guard.outbox_ready.clear()
            try:
                await self.send_pending()
            except (SQLAlchemyError, NatsError, OSError) as e:  # the next round tries again
                log.warning("outbox not sent yet: %r", e)

    async def send_pending(self) -> int:
        async with self.guard.engine.connect() as conn:
            queued = await outbox.unsent(conn)
        sent = []
        for item in queued:
            try:
                await self._send(item.effect)
            except (NatsError, TimeoutError) as e:
                log.warning("outbox %s not sent: %r; trying again shortly", item.effect.msg_id, e)
                break
            sent.append(item.seq)
        if sent:
            async with self.guard.engine.begin() as conn:
                await outbox.mark_sent(conn, sent, time.time())
        return len(sent)

    async def _send(self, effect: Effect) -> None:
        if effect.kind == "event":
            await self.js.publish(effect.target, effect.payload.encode(),
                                  headers={MSG_ID: effect.msg_id})
            return
        kv = await self.js.key_value(CONTROL.name)
        for _ in range(3):  # a conflicting writer: read again and decide again
            try:
                await _write_control(kv, effect)
                return
            except KeyWrongLastSequenceError:
                continue


async def _write_control(kv: KeyValue, effect: Effect) -> None:
    model: type[BaseModel] = Downgrade if effect.target.startswith(DOWNGRADE_PREFIX) else Killswitch
    wanted = model.model_validate_json(effect.payload)
    try:
        entry = await kv.get(effect.target)
    except KeyNotFoundError:  # absent or deleted
        if effect.kind == "engage":
            await kv.create(effect.target, effect.payload.encode())
            log.warning("control %s set by the cost guard: %s", effect.target,
                        getattr(wanted, "reason", ""))
        return
    current = _parsed(model, entry.value)
    on = bool(current and getattr(current, "engaged", getattr(current, "active", False)))
    if effect.kind == "engage" and on:
        return  # already engaged (by an operator, another budget, another instance)
    if effect.kind == "release" and (not on or current is None
                                     or getattr(current, "actor", None) != wanted.actor):  # type: ignore[attr-defined]
        return  # only what the cost guard engaged for the same cause is released by it
    await kv.update(effect.target, effect.payload.encode(), last=entry.revision)
    log.warning("control %s %s by the cost guard: %s", effect.target,
                "set" if effect.kind == "engage" else "lifted", getattr(wanted, "reason", ""))


def _parsed(model: type[BaseModel], value: bytes | None) -> BaseModel | None:
    if not value:
        return None
    try:
        return model.model_validate_json(value)
    except ValidationError:
        return None
