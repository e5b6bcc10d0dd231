"""The router's Prometheus metrics, on the service's own registry (served at /metrics).

    lifeline_router_requests_total{route,tier,provider,status}   every answered request
    lifeline_router_request_seconds{route}                      its latency, as the caller saw it
    lifeline_router_fallback_depth{route}                       position of the member that answered
    lifeline_router_breaker_state{member}                       0 closed, 1 half-open, 2 open
    lifeline_router_cache_hits_total{route}                     answers from the response cache
    lifeline_router_queue_depth{priority}                       parked requests not yet answered
    lifeline_router_queue_oldest_age_seconds{priority}          how long the oldest has waited

Labels only ever take configured values (routes, providers, members, priorities): a caller's
unknown route is counted as `unknown`, so no request can grow the series without bound. The
queue is shared by every router: each instance samples the same numbers (take the max).
"""

import asyncio
import logging
import time
from collections.abc import Callable, Iterator

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas import subjects
from schemas.completion import CompletionResult
from schemas.streams import LLM_QUEUE
from services.runtime.config import LifelineConfig

from .availability import Availability
from .breaker import State
from .queue_worker import PRIORITIES, durable

log = logging.getLogger(__name__)

BREAKER_VALUE = {State.CLOSED: 0, State.HALF_OPEN: 1, State.OPEN: 2}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class RouterMetrics:
    def __init__(self, config: LifelineConfig, availability: Availability,
                 registry: CollectorRegistry) -> None:
        self.routes = set(config.routes)
        self.requests = Counter(
            "lifeline_router_requests", "requests answered, by route, tier, provider and status "
            "(provider `-` when no model answered)", ["route", "tier", "provider", "status"],
            registry=registry)
        self.latency = Histogram("lifeline_router_request_seconds", "request latency in the "
                                 "router, from intake to answer", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=registry)
        self.fallback_depth = Histogram(
            "lifeline_router_fallback_depth", "position in the request's order of the member "
            "that answered (0 = first choice)", ["route"], buckets=(0, 1, 2, 3, 4, 6, 8),
            registry=registry)
        self.cache_hits = Counter("lifeline_router_cache_hits", "answers from the response "
                                  "cache (every model failed)", ["route"], registry=registry)
        self.queue_depth = Gauge("lifeline_router_queue_depth", "parked requests waiting or in "
                                 "hand, by priority", ["priority"], registry=registry)
        self.queue_oldest = Gauge("lifeline_router_queue_oldest_age_seconds", "how long the "
                                  "oldest parked request has waited (0 when none)", ["priority"],
                                  registry=registry)
        registry.register(BreakerStates(availability))

    def observe(self, route: str, result: CompletionResult) -> None:
        route = route if route in self.routes else "unknown"
        self.requests.labels(route, result.tier or "-", result.provider or "-", result.status).inc()
        self.latency.labels(route).observe(result.latency_ms / 1000)
        if result.provider is not None:
            self.fallback_depth.labels(route).observe(result.fallback_depth or 0)
        if result.cached:
            self.cache_hits.labels(route).inc()

    async def sample_queue_forever(self, js: Callable[[], JetStreamContext], every_s: float,
                                   wall: Callable[[], float] = time.time) -> None:
        """The queue's gauges, from its durable consumers (the queue worker's) every `every_s`."""
        while True:
            try:
                for priority in PRIORITIES:
                    depth, oldest = await backlog(js(), priority, wall())
                    self.queue_depth.labels(priority).set(depth)
                    self.queue_oldest.labels(priority).set(oldest)
            except (NatsError, TimeoutError) as e:  # the bus is away: the last figures stand
                log.debug("queue gauges not sampled: %r", e)
            await asyncio.sleep(every_s)


async def backlog(js: JetStreamContext, priority: str, now: float) -> tuple[int, float]:
    """(parked requests not yet acked, age in seconds of the oldest). A work-queue stream drops
    a message once acked, so the first one left on the subject is the oldest still unanswered."""
    try:
        info = await js.consumer_info(LLM_QUEUE.name, durable(priority))  # type: ignore[arg-type]
    except NotFoundError:  # no router has created it yet
        return 0, 0.0
    depth = (info.num_pending or 0) + (info.num_ack_pending or 0)
    if not depth:
        return 0, 0.0
    try:
        first = await js.get_msg(LLM_QUEUE.name, seq=1, subject=subjects.llm_queue(priority),
                                 next=True)  # type: ignore[arg-type]
    except NotFoundError:  # answered in between
        return 0, 0.0
    return depth, max(0.0, now - first.time.timestamp()) if first.time else 0.0


class BreakerStates(Collector):
    """Each member's breaker as it stands at scrape time (no bookkeeping on the hot path)."""

    def __init__(self, availability: Availability) -> None:
        self.availability = availability

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("lifeline_router_breaker_state", "circuit breaker per "
                                  "provider/model: 0 closed, 1 half-open, 2 open", labels=["member"])
        for member, breaker in sorted(self.availability.breakers.items()):
            gauge.add_metric([member], BREAKER_VALUE[breaker.state])
        yield gauge
