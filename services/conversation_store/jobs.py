"""The store's periodic work: the retention sweep and the ingest-lag reading."""

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from sqlalchemy.exc import SQLAlchemyError

from services.runtime.config.store import RetentionConfig

from . import logic
from .metrics import StoreMetrics
from .store import TurnStore

log = logging.getLogger(__name__)


async def sweep_forever(store: TurnStore, retention: RetentionConfig, metrics: StoreMetrics,
                        clock: Callable[[], datetime]) -> None:
    """Deletes expired turns now and every sweep_interval_s after, until cancelled."""
    while True:
        try:
            deleted = await store.sweep(logic.cutoffs(retention, clock()))
        except (SQLAlchemyError, OSError, TimeoutError) as e:  # the next sweep tries again
            log.warning("retention sweep failed: %r; next in %.0fs", e, retention.sweep_interval_s)
        else:
            metrics.expired_turns.inc(deleted)
            if deleted:
                log.info("retention sweep deleted %d expired turns", deleted)
        await asyncio.sleep(retention.sweep_interval_s)


async def read_lag_forever(js: JetStreamContext, stream: str, durable: str,
                           metrics: StoreMetrics, interval: float) -> None:
    """Sets the lag gauge from the consumer's state every `interval` seconds, until cancelled."""
    while True:
        try:
            info = await js.consumer_info(stream, durable)
        except (NatsError, TimeoutError) as e:  # the bus is away: the last reading stays
            log.debug("ingest lag not read: %r", e)
        else:
            metrics.lag_messages.set((info.num_pending or 0) + (info.num_ack_pending or 0))
        await asyncio.sleep(interval)
