"""The bus: one configured broker per service, and idempotent JetStream provisioning."""

import asyncio
import logging
from collections.abc import Callable

from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from nats.errors import ConnectionClosedError, ConnectionReconnectingError, OutboundBufferLimitError
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError, TooManyStalledMsgsError
from opentelemetry import propagate
from opentelemetry.trace import TracerProvider

from schemas.streams import BUCKETS, STREAMS, BucketSpec, StreamSpec

from . import natsfix

natsfix.apply()

log = logging.getLogger(__name__)

MSG_ID = "Nats-Msg-Id"


def make_broker(
    nats_url: str, *, name: str, tracer_provider: TracerProvider | None = None,
    graceful_timeout: float = 20.0,
) -> NatsBroker:
    return NatsBroker(
        nats_url.split(","),
        name=name,
        # Reconnect for ever, every 0.5 s: a service outlives a bus restart (tests restart it).
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type]
        connect_timeout=2,
        graceful_timeout=graceful_timeout,
        middlewares=[NatsTelemetryMiddleware(tracer_provider=tracer_provider)],
        log_level=logging.DEBUG,  # per-message logs are noise at INFO under load
    )


def stream_config(spec: StreamSpec, *, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        retention=RetentionPolicy(spec.retention),
        storage=StorageType.FILE,
        max_age=spec.max_age,
        duplicate_window=spec.duplicate_window,
        num_replicas=replicas,
        description=spec.description,
    )


async def ensure_stream(js: JetStreamContext, spec: StreamSpec, *, replicas: int = 1) -> str:
    """Create the stream, or bring an existing one's config up to date. Returns what it did."""
    wanted = stream_config(spec, replicas=replicas)
    try:
        current = (await js.stream_info(spec.name)).config
    except NotFoundError:
        await js.add_stream(wanted)
        return "created"
    if _same(current, wanted):
        return "unchanged"
    # Retention cannot change on a live stream; everything we version here can.
    wanted.retention = current.retention
    await js.update_stream(wanted)
    log.info("stream %s updated to the current definition", spec.name)
    return "updated"


def _same(current: StreamConfig, wanted: StreamConfig) -> bool:
    fields = ("subjects", "max_age", "duplicate_window", "num_replicas", "description")
    return all(
        (sorted(getattr(current, f) or []) if f == "subjects" else getattr(current, f))
        == (sorted(getattr(wanted, f) or []) if f == "subjects" else getattr(wanted, f))
        for f in fields
    )


async def ensure_bucket(js: JetStreamContext, spec: BucketSpec, *, replicas: int = 1) -> str:
    try:
        info = await js.stream_info(f"KV_{spec.name}")
    except NotFoundError:
        await js.create_key_value(
            KeyValueConfig(bucket=spec.name, history=spec.history, replicas=replicas,
                           ttl=spec.ttl or None, description=spec.description)
        )
        return "created"
    config = info.config
    if (config.max_msgs_per_subject == spec.history and config.num_replicas == replicas
            and (config.max_age or 0.0) == spec.ttl):
        return "unchanged"
    config.max_msgs_per_subject = spec.history
    config.num_replicas = replicas
    config.max_age = spec.ttl
    await js.update_stream(config)
    return "updated"


async def provision(js: JetStreamContext, *, replicas: int = 1) -> dict[str, str]:
    """Idempotent: every service calls it at start-up; concurrent callers are harmless."""
    done = {}
    for spec in STREAMS:
        done[spec.name] = await ensure_stream(js, spec, replicas=replicas)
    for bucket in BUCKETS:
        done[f"KV_{bucket.name}"] = await ensure_bucket(js, bucket, replicas=replicas)
    return done


# A publish that may succeed if sent again: no PubAck in time (the node it went to died, or the
# stream is electing a leader), "no responders" (no stream leader right now), or our connection
# moving between nodes. Sending again is safe: the message id dedupes it. (No responders is also
# what a subject no stream captures gets: that misconfiguration costs `timeout`, then shows.)
TRANSIENT = (
    TimeoutError, NoStreamResponseError, ServiceUnavailableError, ConnectionClosedError,
    ConnectionReconnectingError, OutboundBufferLimitError, TooManyStalledMsgsError,
)


async def publish_events(
    js: JetStreamContext, events: list[tuple[str, bytes, str]], *, timeout: float = 15.0,
    attempt_timeout: float = 2.0,
) -> list[BaseException | None]:
    """Stores (subject, payload, message id) events in JetStream; one round trip for all of them
    when nothing goes wrong.

    Straight through nats-py rather than FastStream's publisher pipeline, which cost about
    0.5 ms of CPU per event on the router's hot path (`make bench`). The current trace context
    travels in the headers. An event whose PubAck does not come (within `attempt_timeout`), or
    that finds the stream without a leader, is sent again with the same message id (a no-op for
    the stream within its duplicate window) until `timeout` has passed: in a 3-node cluster a
    SIGKILLed stream leader leaves the stream unwritable for a few seconds until the others elect
    a new one, and a publish in flight to a dead node is never answered at all. Returns, per
    event, None when stored or the last error.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    results: list[BaseException | None] = [None] * len(events)
    pending = list(range(len(events)))
    pause = 0.05
    while True:
        wait = max(0.05, min(attempt_timeout, deadline - loop.time()))
        outcomes = await _publish_once(js, [events[i] for i in pending], timeout=wait)
        retry = []
        for i, outcome in zip(pending, outcomes, strict=True):
            results[i] = outcome
            if isinstance(outcome, TRANSIENT):
                retry.append(i)
        left = deadline - loop.time()
        if not retry or left <= 0:
            return results
        log.debug("%d of %d events not stored yet (%r): sending them again", len(retry),
                 len(events), results[retry[0]])
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, 0.5)
        pending = retry


async def _publish_once(
    js: JetStreamContext, events: list[tuple[str, bytes, str]], *, timeout: float,
) -> list[BaseException | None]:
    futures: list[asyncio.Future[object] | BaseException] = []
    for subject, payload, msg_id in events:
        headers = {MSG_ID: msg_id}
        propagate.inject(headers)
        try:
            futures.append(await js.publish_async(subject, payload, headers=headers))
        except NatsError as e:  # not even sent: reconnecting with a full buffer, closed, ...
            futures.append(e)
    done = await asyncio.gather(
        *(asyncio.wait_for(f, timeout) for f in futures if not isinstance(f, BaseException)),
        return_exceptions=True)
    sent = iter(done)
    outcomes = [f if isinstance(f, BaseException) else next(sent) for f in futures]
    return [o if isinstance(o, BaseException) else None for o in outcomes]


async def watch_bucket(
    js: JetStreamContext, bucket: str, on_change: Callable[[str, bytes | None], None], *,
    loaded: asyncio.Event | None = None, check_s: float = 1.0,
) -> None:
    """Calls on_change(key, value) for every key now in `bucket` and every change after (value
    None when deleted), until cancelled. Survives the bus going away: it watches again, and then
    hands on_change every current value once more (so on_change must be idempotent). `loaded`
    is set once the values the bucket held when the first watch began have all been handed over.

    A KV watch is an ordered consumer. nats-py recreates one when it notices a gap, but not one
    that a restarted nats-server lost altogether (ephemeral consumers do not survive a restart):
    the watch then stays silent for ever while the connection looks fine. So every `check_s` we
    ask the server for the consumer, and when it no longer knows it we watch again (the health
    monitor's store.Follower found this first and does the same for its streams).
    """
    while True:
        watcher = None
        try:
            kv = await js.key_value(bucket)
            watcher = await kv.watch(">")
            delivering = asyncio.create_task(_deliver(watcher, on_change, loaded))
            try:
                await _until_lost(watcher, delivering, check_s)
                log.warning("watching KV %s: the bus lost the watch (restarted?); watching again",
                            bucket)
            finally:
                delivering.cancel()
                await asyncio.gather(delivering, return_exceptions=True)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the bus restarted or the bucket is not there yet
            log.warning("watching KV %s: %r; watching again in 1 s", bucket, e)
            await asyncio.sleep(1.0)
        finally:
            if watcher is not None:
                await _stop_quietly(watcher)


async def _deliver(watcher: KeyValue.KeyWatcher, on_change: Callable[[str, bytes | None], None],
                   loaded: asyncio.Event | None) -> None:
    async for entry in watcher:
        if entry is None:  # the current values have all been delivered
            if loaded is not None:
                loaded.set()
            continue
        deleted = entry.operation in ("DEL", "PURGE")
        on_change(entry.key, None if deleted else entry.value)


async def _until_lost(watcher: KeyValue.KeyWatcher, delivering: asyncio.Task[None],
                      check_s: float) -> None:
    """Returns when the server no longer knows the watch's consumer; raises what delivering
    raised (a bad on_change is a bug to see, not to hide)."""
    while True:
        done, _ = await asyncio.wait([delivering], timeout=check_s)
        if done:
            delivering.result()  # raises its error; a clean end (watch stopped) watches again
            return
        try:
            # nats-py keeps the watch's subscription private and offers no public way to ask
            # whether its consumer still exists. Bounded: a request sent while reconnecting can
            # lose its reply and would wait out the JetStream API's 5 s timeout.
            await asyncio.wait_for(watcher._sub.consumer_info(), check_s)
        except NotFoundError:
            return
        except (NatsError, TimeoutError) as e:  # disconnected: nothing to ask until it is back
            log.debug("cannot check a KV watch: %r", e)


async def _stop_quietly(watcher: KeyValue.KeyWatcher) -> None:
    try:
        await watcher.stop()
    except (NatsError, TimeoutError) as e:  # the connection went first: the server dropped it
        log.debug("stopping a KV watch: %r", e)
