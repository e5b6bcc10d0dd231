"""The health monitor's edge: what it hears, the pulse that decides, and what it says.

Hears: llm.attempt (an ephemeral ordered consumer per instance, new messages only: health is about
now, every instance needs every attempt, and a restarted instance must not judge from a backlog of
old calls; the state itself survives in the KV), service.heartbeat.>, health.probe (every
instance's probe results), the provider-health KV and the STATUS stream (store.py).
Says: provider.* (one instance per transition: the KV's compare-and-set), service.*, health.probe,
and answers health.report.
"""

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from faststream.middlewares import AckPolicy
from faststream.nats import JStream, NatsMessage, NatsRouter, PullSub
from nats.aio.msg import Msg
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from schemas import subjects
from schemas.control import ProviderHealth
from schemas.events import (
    HealthProbe,
    HealthReport,
    HealthReportRequest,
    Heartbeat,
    LlmAttempt,
    ProviderDegraded,
    ProviderDown,
    ProviderEvent,
    ProviderUp,
    ServiceDown,
    ServiceEvent,
    ServiceUp,
)
from schemas.streams import LLM_EVENTS, STATUS
from services.providers import make_provider
from services.providers.base import Provider
from services.runtime.bus import publish_events
from services.runtime.config import LifelineConfig, load_config
from services.runtime.service import Service

from .liveness import Change
from .metrics import STATE_VALUE, Metrics
from .monitor import Monitor, event_id, transition_event
from .prober import Prober
from .report import build_report
from .schedule import owner
from .settings import HealthMonitorSettings
from .store import Follower, HealthKV, kv_follower, status_follower

log = logging.getLogger(__name__)

QUEUE_GROUP = "health-monitor"
# Another instance won a transition: if its event is not on the STATUS stream this much later,
# it died between the KV write and the publish, and we publish it (same id: stored once).
REPAIR_AFTER_S = 2.0
REPAIR_HORIZON_S = 60.0
ATTEMPTS_IDLE_S = 120.0  # a dead instance's passive feed is removed by the server after this  # half the stream's duplicate window: older ones are left alone


def build_app(
    settings: HealthMonitorSettings,
    *,
    config: LifelineConfig | None = None,
    providers: Mapping[str, Provider] | None = None,
    clock: Callable[[], float] = time.time,
) -> Service:
    config = config or load_config(settings.config)
    config.health.check_names(config.providers)
    if providers is None:
        specs = config.provider_specs(os.environ, settings.simulator_url)
        providers = {name: make_provider(spec) for name, spec in specs.items()}
    router = NatsRouter()
    service = Service("health-monitor", settings, router)
    me = settings.instance
    monitor = Monitor(config, source=service.source, started_at=clock())
    prober = Prober(config, dict(providers), source=service.source)
    metrics = Metrics(service.metrics)
    runtime = _Runtime()
    tasks: set[asyncio.Task[None]] = set()  # every background task, cancelled on stop
    probing: set[tuple[str, str]] = set()  # (provider, "probe" | "canary") in flight
    ready = asyncio.Event()  # the KV and the STATUS replay are in

    for subject, schema in ((subjects.PROVIDER_DOWN, ProviderDown), (subjects.PROVIDER_UP, ProviderUp),
                            (subjects.PROVIDER_DEGRADED, ProviderDegraded),
                            (subjects.SERVICE_DOWN, ServiceDown), (subjects.SERVICE_UP, ServiceUp)):
        router.publisher(subject, stream=STATUS.name, schema=schema,
                         description="a transition, once across every monitor instance")
    probe_pub = router.publisher(subjects.HEALTH_PROBE, schema=HealthProbe,
                                 description="one probe's or canary's result, for every instance")

    # Each instance needs every attempt (not a queue group's share), and only new ones: health
    # is about now, and the state itself survives in the KV. A pull consumer of this instance's
    # own (an ephemeral push one is forgotten by a restarted nats-server and its subscription
    # falls silent; a pull consumer is simply asked again), no acks, deleted at start-up and by
    # the server once idle.
    attempts_durable = "health-monitor-" + re.sub(r"[^A-Za-z0-9_-]", "_", me)

    @router.subscriber(subjects.LLM_ATTEMPT, stream=JStream(LLM_EVENTS.name, declare=False),
                       durable=attempts_durable, pull_sub=PullSub(batch_size=256, timeout=1.0),
                       config=ConsumerConfig(ack_policy=JsAckPolicy.NONE,
                                             deliver_policy=DeliverPolicy.NEW,
                                             inactive_threshold=ATTEMPTS_IDLE_S),
                       ack_policy=AckPolicy.MANUAL,  # the consumer takes no acks
                       description="passive signal: every real call, new ones only, each instance")
    async def on_attempt(attempt: LlmAttempt) -> None:
        monitor.on_attempt(attempt)

    @router.subscriber(f"{subjects.SERVICE_HEARTBEAT_PREFIX}.>",
                       description="liveness: every instance of every service")
    async def on_heartbeat(beat: Heartbeat) -> None:
        change = monitor.liveness.beat(beat, clock())
        if change is not None:
            _spawn(_service_change(change))

    @router.subscriber(subjects.HEALTH_PROBE, description="probe results from every instance")
    async def on_probe(probe: HealthProbe) -> None:
        monitor.on_probe(probe)

    @router.subscriber(subjects.HEALTH_REPORT, queue=QUEUE_GROUP, include_in_schema=False,
                       description="request-reply: HealthReportRequest answered by HealthReport")
    async def on_report(msg: NatsMessage) -> bytes:
        try:
            request = HealthReportRequest.model_validate_json(msg.body or b"{}")
        except ValidationError as e:
            error = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'body'}: {x['msg']}" for x in e.errors())
            return HealthReport(source=service.source, error=error).model_dump_json().encode()
        return build_report(monitor, clock(), days=request.days).model_dump_json().encode()

    # --- the pulse: decide, then act ------------------------------------------------------------

    async def pulse() -> None:
        offline = False
        while True:
            if not service.broker.connection.is_connected:
                # Deaf to heartbeats and unable to publish: judge nothing until the bus is back,
                # then give every instance a fresh start (our silence was not theirs).
                offline = True
            else:
                if offline:
                    monitor.liveness.grace(clock())
                    offline = False
                try:
                    await _decide_and_act(clock())
                except asyncio.CancelledError:
                    raise
                except Exception:  # the bus went away mid-write: log it, decide again next tick
                    log.exception("health-monitor pulse failed; retrying")
            await asyncio.sleep(_tick(config, monitor))

    async def _decide_and_act(now: float) -> None:
        # The revisions the proposals were made against: a write must not succeed on a newer one.
        revisions = {p: k.revision for p, k in monitor.known.items()}
        for provider, value in monitor.proposals(now).items():
            await _transition(provider, value, revisions.get(provider))
        for change in monitor.liveness.check(now):
            _spawn(_service_change(change))
        for provider, kind in monitor.due(now, me):
            if (provider, kind) not in probing:
                monitor.started(provider, kind, now)
                _spawn(_probe(provider, kind), key=(provider, kind))
        for provider, tracker in monitor.trackers.items():
            metrics.state.labels(provider).set(STATE_VALUE[tracker.state])

    async def _transition(provider: str, value: ProviderHealth, last: int | None) -> None:
        kv = runtime.kv
        assert kv is not None  # set in start(), before the pulse runs
        revision = await kv.write(provider, value, last)
        if revision is None:  # another instance changed it first: take its word, decide again
            metrics.conflicts.labels(provider).inc()
            found = await kv.get(provider)
            if found is not None:
                monitor.adopt(provider, *found)
            return
        monitor.adopt(provider, revision, value)
        metrics.transitions.labels(provider, value.state).inc()
        log.warning("%s is %s (%s), was %s", provider, value.state, value.reason, value.previous)
        await _publish_transition(provider, revision, value)
        _spawn(_repair(provider, revision, value))  # in case that publish did not get through

    async def _publish_transition(provider: str, revision: int, value: ProviderHealth) -> None:
        subject, event = transition_event(provider, revision, value)
        await _publish([(subject, event)])

    async def _service_change(change: Change) -> None:
        """One instance publishes it (rendezvous over the live monitors); the others only if it
        has not reached the STATUS stream a little later (that one died meanwhile)."""
        if owner(f"{change.service}/{change.instance}", monitor.monitors(me)) != me:
            await asyncio.sleep(REPAIR_AFTER_S)
            if change.event_id in monitor.seen:
                return
        await _publish_service(change)

    async def _publish_service(change: Change) -> None:
        model = ServiceDown if change.kind == "down" else ServiceUp
        subject = subjects.SERVICE_DOWN if change.kind == "down" else subjects.SERVICE_UP
        event = model(id=change.event_id, source=service.source, service=change.service,
                      instance=change.instance, reason=change.reason, last_seen=change.last_seen)
        log.warning("service %s/%s is %s: %s", change.service, change.instance, change.kind,
                    change.reason)
        metrics.service_events.labels(change.service, change.kind).inc()
        await _publish([(subject, event)])

    async def _publish(events: list[tuple[str, ProviderEvent | ServiceEvent]]) -> None:
        js = service.broker.config.connection_state.stream
        batch = [(s, e.model_dump_json().encode(), e.id) for s, e in events]
        for (subject, _, eid), failure in zip(batch, await publish_events(js, batch), strict=True):
            if failure is not None:
                log.error("%s %s not stored: %r", subject, eid, failure)

    async def _probe(provider: str, kind: str) -> None:
        results = await prober.probe(provider) if kind == "probe" else [await prober.canary(provider)]
        for result in results:
            metrics.probed(result)
            await probe_pub.publish(result.model_dump_json().encode())

    async def _repair(provider: str, revision: int, value: ProviderHealth) -> None:
        await asyncio.sleep(REPAIR_AFTER_S)
        fresh = clock() - value.since.timestamp() < REPAIR_HORIZON_S
        if fresh and event_id(provider, revision) not in monitor.timelines.seen:
            log.warning("publishing %s's transition to %s (written by %s) again: not on STATUS",
                        provider, value.state, value.source)
            await _publish_transition(provider, revision, value)

    # --- the KV and the STATUS stream -------------------------------------------------------------

    def on_kv(provider: str, revision: int, data: bytes | None) -> None:
        if data is None:
            monitor.known.pop(provider, None)
            return
        try:
            value = ProviderHealth.model_validate_json(data)
        except ValidationError as e:  # a hand-written value: say so, keep watching
            log.error("ignoring provider-health %s = %r: %s", provider, data[:200], e)
            return
        if monitor.adopt(provider, revision, value) and ready.is_set() and value.source != service.source:
            _spawn(_repair(provider, revision, value))

    def on_status(msg: Msg) -> None:
        try:
            if msg.subject.startswith("provider."):
                monitor.on_status(ProviderEvent.model_validate_json(msg.data))
            else:
                event = ServiceEvent.model_validate_json(msg.data)
                kind = "down" if msg.subject == subjects.SERVICE_DOWN else "up"
                monitor.seen.add(event.id)
                monitor.liveness.replayed(kind, event.service, event.instance)
        except ValidationError as e:  # not ours to fix: the stream keeps it; we skip it
            log.error("skipping unreadable %s on STATUS: %s", msg.subject, e)

    async def start() -> None:
        js = service.broker.config.connection_state.stream
        runtime.kv = HealthKV(js)
        # A fresh passive feed: never a backlog a previous process of this name left behind.
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer(LLM_EVENTS.name, attempts_durable)
        runtime.followers = [kv_follower(js, on_kv), status_follower(js, on_status)]
        for follower in runtime.followers:  # the KV first: the current states, then history
            await follower.subscribe()
            await asyncio.wait_for(follower.caught_up.wait(), 30)
            _spawn(follower.supervise())
        ready.set()
        _spawn(pulse())

    async def stop() -> None:
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for follower in runtime.followers:
            await follower.close()
        await asyncio.gather(*(p.aclose() for p in providers.values()))

    def _spawn(coro: object, key: tuple[str, str] | None = None) -> None:
        task = asyncio.create_task(coro)  # type: ignore[arg-type]
        tasks.add(task)
        if key is not None:
            probing.add(key)

        def done(t: asyncio.Task[None]) -> None:
            tasks.discard(t)
            if key is not None:
                probing.discard(key)
            if not t.cancelled() and t.exception() is not None:
                log.error("health-monitor task failed: %r", t.exception(), exc_info=t.exception())

        task.add_done_callback(done)

    service.health.add_check(lambda: None if ready.is_set() else "replaying STATUS")
    service.on_start(start)
    service.on_stop(stop)
    return service


@dataclass
class _Runtime:
    """What exists only once connected."""

    kv: HealthKV | None = None
    followers: list[Follower] = field(default_factory=list)


def _tick(config: LifelineConfig, monitor: Monitor) -> float:
    """How often the pulse runs: often enough for the confirm interval and the heartbeats."""
    confirm = config.health.probe.confirm_interval_s
    return max(0.02, min(confirm / 4, monitor.liveness.tick_s(), 0.25))
