"""What every service stands on: bus connection and provisioning, /healthz and /readyz,
heartbeats, telemetry, and a graceful stop on SIGTERM.

A service's app.py builds its handlers on a NatsRouter and hands it here; nothing connects
until start().
"""

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any
from datetime import UTC, datetime

from faststream.nats import NatsRouter
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import ServiceUnavailableError
from prometheus_client import Gauge

from schemas import subjects
from schemas.events import Heartbeat

from .bus import make_broker, provision
from .health import HealthServer
from .logs import configure_logging
from .settings import Settings
from .telemetry import tracer_provider

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]


class Service:
    def __init__(self, name: str, settings: Settings, router: NatsRouter) -> None:
        self.name = name
        self.settings = settings
        self.source = f"{name}/{settings.instance}"
        self.tracer_provider = tracer_provider(name, settings.instance, settings.otel_exporter)
        self.broker = make_broker(
            settings.nats_url, name=f"lifeline-{name}", tracer_provider=self.tracer_provider,
            graceful_timeout=settings.graceful_timeout,
        )
        self.router = router  # also read by schemas/asyncapi.py to document the handlers
        self._heartbeat_pub = router.publisher(
            subjects.heartbeat(name), schema=Heartbeat,
            description=f"every {settings.heartbeat_interval:g}s per {name} instance: alive, "
                        "where its health endpoint is, how much work it holds")
        self.broker.include_router(router)
        self.health = HealthServer(name, host=settings.health_host, port=settings.health_port)
        self.health.add_check(self._bus_ready)
        self.metrics = self.health.metrics  # register this service's metrics here (/metrics)
        Gauge("lifeline_nats_connected", "1 while connected to a NATS server, else 0",
              registry=self.metrics).set_function(lambda: float(self._bus_connected()))
        Gauge("lifeline_nats_reconnects", "Times the NATS connection was re-established since the "
              "process started (only grows)", registry=self.metrics).set_function(self._reconnects)
        self.started_at = datetime.now(UTC)
        self.in_flight: Callable[[], int] = lambda: 0
        self._on_start: list[Hook] = []
        self._on_stop: list[Hook] = []
        self._on_intake_closed: list[Hook] = []
        self._on_drained: list[Hook] = []
        self._accepting = False
        self._stopped = False
        # Set once this instance takes no new messages (its subscriptions drained) while it may
        # still be finishing work it had taken.
        self.intake_closed = asyncio.Event()
        self._heartbeat: asyncio.Task[None] | None = None

    def on_start(self, hook: Hook) -> None:
        """Runs after the bus is connected and provisioned, before handlers take messages."""
        self._on_start.append(hook)

    def on_intake_closed(self, hook: Hook) -> None:
        """Runs on stop once the subscriptions are drained, before in-flight work is awaited and
        the connection drains: close intake of your own here (pull consumers, fetch loops)."""
        self._on_intake_closed.append(hook)

    def on_drained(self, hook: Hook) -> None:
        """Runs on stop once in-flight work has finished, while the bus connection is still
        open: the last publishes (flush what is still to be sent)."""
        self._on_drained.append(hook)

    def on_stop(self, hook: Hook) -> None:
        """Runs after handlers have stopped and in-flight work has finished (close pools here)."""
        self._on_stop.append(hook)

    def _bus_ready(self) -> str | None:
        if not self._accepting:
            return "not accepting work (starting or stopping)"
        return None if self._bus_connected() else "not connected to NATS"

    def _bus_connected(self) -> bool:
        try:
            return self.broker.connection.is_connected
        except Exception:  # FastStream raises IncorrectState before connect
            return False

    def _reconnects(self) -> float:
        try:
            return float(self.broker.connection.stats["reconnects"])
        except Exception:  # not connected yet: FastStream raises IncorrectState
            return 0.0

    async def start(self, *, connect_timeout: float = 30.0) -> None:
        await self._connect(connect_timeout)
        await self._provision(connect_timeout)
        for hook in self._on_start:
            await hook()
        await self.broker.start()
        # A round trip, so the server has every subscription before we call ourselves ready.
        await self.broker.connection.flush()
        await self.health.start()
        self._accepting = True
        self._heartbeat = asyncio.create_task(self._beat(), name=f"{self.name}-heartbeat")
        log.info("%s ready: health %s, bus %s", self.source, self.health.url,
                 self.settings.nats_url)

    async def _provision(self, timeout: float) -> None:
        """Streams and buckets as schemas/streams.py defines them. A JetStream cluster that is
        still forming (no meta leader yet), or busy creating replicated streams for every
        service starting beside this one, answers late or "unavailable": ask again, up to
        `timeout`, rather than die and leave it to a restart policy."""
        js = self.broker.config.connection_state.stream
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                done = await provision(js, replicas=self.settings.stream_replicas)
                log.debug("provisioned %s", done)
                return
            except (NatsTimeout, NoRespondersError, ServiceUnavailableError) as e:
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"{self.name}: JetStream not ready within {timeout:g}s: "
                                       f"{e!r}") from e
                log.warning("%s: provisioning streams: %r; again in 1 s", self.name, e)
                await asyncio.sleep(1.0)

    async def _connect(self, timeout: float) -> None:
        # The broker retries for ever (the bus may still be starting under `lifeline up` or
        # compose); past `timeout` we give up and say so plainly instead of hanging unseen.
        try:
            await asyncio.wait_for(self.broker.connect(), timeout)
        except TimeoutError:
            raise RuntimeError(
                f"{self.name}: cannot reach NATS at {self.settings.nats_url} within {timeout:g}s"
            ) from None

    async def stop(self) -> None:
        """Stop taking work, let in-flight work finish (up to graceful_timeout), then close.

        Safe to call twice; the second call does nothing.
        """
        if self._stopped:
            return
        self._stopped = True
        self._accepting = False
        if self._heartbeat:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
            # A last beat that says so: the health monitor does not call a clean stop an outage.
            await self._bounded("the last heartbeat", self._send_beat(stopping=True), 2.0)
        await self._drain_intake()
        grace = self.settings.graceful_timeout
        for hook in self._on_drained:
            await self._bounded(getattr(hook, "__qualname__", repr(hook)), hook(), grace)
        # unsubscribes the rest, waits for running handlers (up to graceful_timeout), closes
        await self._bounded("the bus connection", self.broker.stop(), grace + 5.0)
        for hook in reversed(self._on_stop):
            await self._bounded(getattr(hook, "__qualname__", repr(hook)), hook(), grace)
        await self._bounded("the health server", self.health.stop(), 5.0)
        self.tracer_provider.shutdown()

    async def _bounded(self, what: str, step: Awaitable[None], seconds: float) -> None:
        """One step of a stop, abandoned with a warning if it overruns: a stop must end (an
        orchestrator kills what does not), and the log says which step held it up. JetStream
        messages not yet acked are redelivered to the other instances either way."""
        try:
            await asyncio.wait_for(step, seconds)
        except TimeoutError:
            log.warning("%s: stopping: %s did not finish in %.0fs; going on", self.source, what,
                        seconds)

    async def _drain_intake(self) -> None:
        """Hand new work to the other instances, then finish every message already taken.

        FastStream's own stop marks the subscriber stopped *before* unsubscribing, and a message
        that reaches a stopped subscriber is dropped without a reply. So we go first: drain each
        subscription (UNSUB, then process what the server already sent; a queue group routes new
        requests to the other members), and wait until the buffered and running handlers are done.
        JetStream messages not yet acked are redelivered by the server, so they are handed back.
        """
        timeout = self.settings.graceful_timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        subscribers = list(self.broker.subscribers)
        for sub in subscribers:
            nats_sub = getattr(sub, "subscription", None)
            if isinstance(nats_sub, Subscription):
                try:
                    await asyncio.wait_for(nats_sub.drain(), max(0.1, deadline - loop.time()))
                except (TimeoutError, NatsError) as e:
                    log.warning("%s: draining %s: %r", self.source, nats_sub.subject, e)
                sub.subscription = None
        self.intake_closed.set()
        for hook in self._on_intake_closed:
            await hook()
        while loop.time() < deadline and (self.in_flight() or any(map(_busy, subscribers))):
            await asyncio.sleep(0.01)
        if self.in_flight():
            log.warning("%s: %d requests still running after %.0fs", self.source,
                        self.in_flight(), timeout)

    async def _beat(self) -> None:
        while True:
            await self._send_beat()
            await asyncio.sleep(self.settings.heartbeat_interval)

    async def _send_beat(self, *, stopping: bool = False) -> None:
        beat = Heartbeat(
            source=self.source, service=self.name, instance=self.settings.instance,
            started_at=self.started_at, health_url=self.health.url,
            in_flight=self.in_flight(), interval_s=self.settings.heartbeat_interval,
            stopping=stopping,
        )
        try:
            await self._heartbeat_pub.publish(beat.model_dump_json().encode())
        except Exception as e:  # a missed beat while reconnecting is expected, not fatal
            log.debug("heartbeat not sent: %s", e)


def _busy(subscriber: object) -> bool:
    """Messages taken but not yet finished: buffered for a worker, or in a handler."""
    stream = getattr(subscriber, "receive_stream", None)
    buffered = stream.statistics().current_buffer_used if stream is not None else 0
    lock = getattr(subscriber, "lock", None)
    return bool(buffered or getattr(lock, "qsize", 0))


async def run_until_signalled(service: Service) -> None:
    """The process main: start, serve until SIGTERM/SIGINT, stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    await stop.wait()
    log.info("%s stopping: finishing in-flight work", service.source)
    await service.stop()


def main(build_app: Callable[[Any], Service], settings: Any) -> None:
    """A service's `python -m services.<name>`: logging, then serve until signalled."""
    service = build_app(settings)
    configure_logging(settings.log_level, fmt=settings.log_format, service=service.source)
    asyncio.run(run_until_signalled(service))


