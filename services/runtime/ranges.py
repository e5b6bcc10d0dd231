"""Reading a range of a JetStream stream without disturbing anyone: an ephemeral pull consumer of
our own (no acks, memory storage, deleted afterwards; the server drops it by itself after a
minute if we die), so durable consumers and their positions are untouched.

Used by the backup agent (KV buckets, the STATUS stream) and by the ingesting services when they
replay LLM_EVENTS for a point-in-time recovery (schemas/backup.py ReplayRequest).
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

FETCH_TIMEOUT = 2.0  # seconds: a fetch only waits when the server has nothing (we check first)


async def read_stream(js: JetStreamContext, stream: str, *, subjects: list[str] | None = None,
                      start_seq: int | None = None, since: datetime | None = None,
                      last_per_subject: bool = False, batch: int = 500,
                      timeout: float = 60.0) -> AsyncIterator[list[Msg]]:
    """Yields the stream's messages in order, a batch at a time, from `start_seq` or `since`
    (else the start; `last_per_subject`: only each subject's newest) up to its end as it was
    when the reading began. Raises TimeoutError if the server keeps messages back past `timeout`
    seconds, rather than end early."""
    info = await js.stream_info(stream)
    last = info.state.last_seq
    if not info.state.messages or (start_seq is not None and start_seq > last):
        return
    filters = subjects or list(info.config.subjects or [])
    if start_seq is not None:
        policy = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": start_seq}
    elif since is not None:
        policy = {"deliver_policy": DeliverPolicy.BY_START_TIME, "opt_start_time": since}
    elif last_per_subject:
        policy = {"deliver_policy": DeliverPolicy.LAST_PER_SUBJECT}
    else:
        policy = {"deliver_policy": DeliverPolicy.ALL}
    name = f"range-{uuid.uuid4().hex}"
    config = ConsumerConfig(
        name=name, ack_policy=AckPolicy.NONE, mem_storage=True, num_replicas=1,
        inactive_threshold=60.0, max_ack_pending=-1,
        **({"filter_subject": filters[0]} if len(filters) == 1 else {"filter_subjects": filters}),
        **policy)
    created = await js.add_consumer(stream, config)
    if not created.num_pending:
        await js.delete_consumer(stream, name)
        return
    psub = await js.pull_subscribe_bind(consumer=name, stream=stream)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            try:
                msgs = await psub.fetch(batch, timeout=FETCH_TIMEOUT)
            except (NatsTimeout, TimeoutError):
                # Nothing came: done only if the server says nothing is left (a fetch can time
                # out on a loaded machine; a backup must not end early without a word).
                pending = (await psub.consumer_info()).num_pending
                if not pending:
                    return
                if loop.time() > deadline:
                    raise TimeoutError(f"reading {stream}: {pending} messages still to come "
                                       f"after {timeout:g}s") from None
                continue
            yield msgs
            if msgs[-1].metadata.num_pending == 0 or msgs[-1].metadata.sequence.stream >= last:
                return
    finally:
        await psub.unsubscribe()
        try:
            await js.delete_consumer(stream, name)
        except NotFoundError:
            pass


@dataclass
class EventRange:
    """One replay request's worth of a stream."""

    messages: list[Msg] = field(default_factory=list)
    last_seq: int = 0  # the last sequence read (the caller continues from last_seq + 1)
    done: bool = False  # to_time or the end of the stream reached
    first_seq: int = 0  # the stream's first sequence: older events are gone (max age)


async def read_range(js: JetStreamContext, stream: str, *, from_seq: int,
                     to_time: datetime | None, limit: int,
                     subjects: list[str] | None = None) -> EventRange:
    """At most `limit` messages from `from_seq` on, leaving out those the stream stored after
    `to_time` (stream order is storage-time order, so the first one ends the range)."""
    info = await js.stream_info(stream)
    out = EventRange(last_seq=from_seq - 1, first_seq=info.state.first_seq)
    async for msgs in read_stream(js, stream, subjects=subjects, start_seq=from_seq, batch=limit):
        for msg in msgs:
            if to_time is not None and msg.metadata.timestamp > to_time:
                out.done = True
                return out
            out.messages.append(msg)
            out.last_seq = msg.metadata.sequence.stream
        out.done = msgs[-1].metadata.num_pending == 0 or out.last_seq >= info.state.last_seq
        return out
    out.done = True  # nothing from from_seq on
    out.last_seq = max(out.last_seq, info.state.last_seq)
    return out
