"""The outbox worker: claims the head of each channel's queue, sends it, and records the outcome;
a failure waits with exponential backoff, and only an alert older than `give_up_after_s` (or
one that can never be accepted) is given up. Runs as a background task of the status page app.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.runtime.config.notifier import DeliveryConfig

from . import alerts, outbox
from .metrics import Metrics, channel_label
from .senders import GiveUp, Retry, Senders

log = logging.getLogger(__name__)


class Delivery:
    def __init__(self, engine: AsyncEngine, config: DeliveryConfig, senders: Senders, *,
                 clock: Callable[[], datetime], metrics: Metrics, write_lock: asyncio.Lock) -> None:
        self.engine = engine
        self.config = config
        self.senders = senders
        self.clock = clock
        self.metrics = metrics
        self.write_lock = write_lock
        self.wake = asyncio.Event()  # set when this instance enqueued something

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            try:
                next_due = await self.deliver_due()
            except (SQLAlchemyError, OSError) as e:  # the database is away: try again shortly
                log.warning("alert delivery: %r", e)
                next_due = None
            except Exception:  # a bug in one send must not stop every later alert: say it loudly
                log.exception("alert delivery failed unexpectedly; carrying on")
                next_due = None
            wait = self.config.poll_s
            if next_due is not None:
                wait = min(wait, max(0.0, (next_due - self.clock()).total_seconds()))
            if wait > 0:
                try:
                    await asyncio.wait_for(self.wake.wait(), wait)
                except TimeoutError:
                    pass
            self.wake.clear()

    async def deliver_due(self) -> datetime | None:
        """Sends every channel's due head once; returns when to look again (None: poll)."""
        now = self.clock()
        async with self.engine.connect() as conn:
            ready, next_due = await outbox.due(conn, now)
        claimed = []
        for item in ready:
            async with self.write_lock, self.engine.begin() as conn:
                if await outbox.claim(conn, item, now, self.config.lease_s):
                    claimed.append(item)
        await asyncio.gather(*(self._deliver(item) for item in claimed))
        return now if claimed else next_due  # something moved: each channel may have a next

    async def _deliver(self, item: outbox.Item) -> None:
        label = channel_label(item.channel)
        try:
            await self.senders.send(item)
        except GiveUp as e:
            await self._finish(item, str(e))
            log.error("alert %s to %s given up: %s", item.id, item.channel, e)
            if item.kind != "bus":
                self.metrics.alerts_failed.labels(label).inc()
            return
        except Retry as e:
            now = self.clock()
            if now - item.created_at > timedelta(seconds=self.config.give_up_after_s):
                await self._finish(item, f"too old; last error: {e}")
                log.error("alert %s to %s given up after %d attempts: %s", item.id,
                          item.channel, item.attempts + 1, e)
                if item.kind != "bus":
                    self.metrics.alerts_failed.labels(label).inc()
                return
            wait = alerts.backoff(item.attempts + 1, initial=self.config.retry_initial_s,
                                  maximum=self.config.retry_max_s)
            async with self.write_lock, self.engine.begin() as conn:
                await outbox.retry(conn, item, now + timedelta(seconds=wait), str(e))
            log.info("alert %s to %s: %s; again in %.1fs", item.id, item.channel, e, wait)
            if item.kind != "bus":
                self.metrics.alert_attempts_failed.labels(label).inc()
            return
        await self._finish(item, None)
        if item.kind != "bus":
            self.metrics.alerts_sent.labels(label).inc()

    async def _finish(self, item: outbox.Item, error: str | None) -> None:
        """Delivered (error None) or given up."""
        async with self.write_lock, self.engine.begin() as conn:
            if error is None:
                await outbox.delivered(conn, item, self.clock())
            else:
                await outbox.failed(conn, item, self.clock(), error)
