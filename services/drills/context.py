"""Everything a scenario works with: the options, the configuration, the bus, the faults, the clock,
the traffic it starts and the timeline it fills."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.runtime.config import LifelineConfig, RouteConfig
from services.runtime.settings import Settings

from .bus import DrillBus, DrillError
from .faults import ProviderFaults, Via
from .timeline import Answer, Timeline
from .traffic import Ask, Traffic, plain


@dataclass(kw_only=True)
class DrillOptions:
    """What the operator may change per run (`lifeline drill --help`); None: lifeline.yaml's."""

    duration_s: float | None = None  # how long the fault lasts
    warmup_s: float | None = None
    recovery_timeout_s: float | None = None
    rate: float | None = None  # requests per second
    max_requests: int | None = None
    route: str | None = None
    provider: str | None = None  # what to break (default: the route's primary)
    region: str | None = None  # region-outage: the region to fail (default: the primary's)
    via: Via = "auto"  # simulator for simulated providers, the fault switch for real ones
    service: str = "router"  # service-crash: which service
    instance: str | None = None  # service-crash: which instance (default: one of several)
    pid: int | None = None  # service-crash / bus-node-loss: the process to SIGKILL
    node_port: int | None = None  # bus-node-loss: the nats-server node (its client port)
    budget_usd: float | None = None  # load-spike: the drill user's cap (default: half the spike)
    spike: float = 10.0  # load-spike: traffic multiplied by this
    respond: bool = True  # quality-drop: take the provider out of rotation once detected
    report_dir: Path | None = None


@dataclass
class DrillContext:
    drill_id: str
    scenario: str
    settings: Settings
    config: LifelineConfig
    options: DrillOptions
    bus: DrillBus
    timeline: Timeline
    actor: str
    faults: ProviderFaults
    facts: dict[str, Any] = field(default_factory=dict)  # what a scenario read for its figures
    traffics: list[Traffic] = field(default_factory=list)
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    # --- the drill's clock: seconds since it started ----------------------------------------------

    def now(self) -> float:
        return time.time() - self.timeline.t0

    async def hold(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def mark(self, name: str) -> float:
        return self.timeline.mark(name, round(self.now(), 3))

    def note(self, text: str) -> None:
        self.timeline.notes.append(text)

    # --- what the options and lifeline.yaml say ---------------------------------------------------

    @property
    def route_name(self) -> str:
        return self.options.route or self.config.drills.route

    @property
    def route(self) -> RouteConfig:
        if self.route_name not in self.config.routes:
            raise DrillError(f"unknown route {self.route_name!r} (known: {', '.join(self.config.routes)})")
        return self.config.routes[self.route_name]

    @property
    def chain_providers(self) -> list[str]:
        return list(dict.fromkeys(m.split("/", 1)[0] for m in self.route.chain))

    @property
    def primary(self) -> str:
        provider = self.options.provider or self.chain_providers[0]
        if provider not in self.config.providers:
            raise DrillError(f"unknown provider {provider!r} (known: {', '.join(self.config.providers)})")
        return provider

    def region_of(self, provider: str) -> str:
        return self.config.providers[provider].region

    @property
    def duration(self) -> float:
        return self.options.duration_s if self.options.duration_s is not None else self.config.drills.duration_s

    @property
    def warmup(self) -> float:
        return self.options.warmup_s if self.options.warmup_s is not None else self.config.drills.warmup_s

    @property
    def recovery_timeout(self) -> float:
        return (self.options.recovery_timeout_s if self.options.recovery_timeout_s is not None
                else self.config.drills.recovery_timeout_s)

    @property
    def rate(self) -> float:
        return self.options.rate or self.config.drills.traffic.rate

    @property
    def bin_s(self) -> float:
        """The measuring resolution: fine enough to see a ramp, coarse enough to count in."""
        return 0.5 if self.duration <= 10 else 1.0

    @property
    def request_timeout(self) -> float:
        return self.config.drills.traffic.timeout_s or self.route.deadline_ms / 1000 + 2.0

    # --- traffic -------------------------------------------------------------------------------------

    def traffic(self, make: Callable[[int], Ask] = plain, *, rate: float | None = None,
                user_id: str | None = None) -> Traffic:
        shape = self.config.drills.traffic
        sent_before = sum(t.sent for t in self.traffics)
        traffic = Traffic(self.bus.nc, drill_id=f"{self.drill_id}-{len(self.traffics)}",
                          route=self.route_name, rate=rate or self.rate,
                          max_requests=max(1, (self.options.max_requests or shape.max_requests) - sent_before),
                          max_in_flight=shape.max_in_flight, timeout_s=self.request_timeout,
                          clock=self.now, make=make, user_id=user_id or f"drill-{self.drill_id}")
        self.traffics.append(traffic)
        traffic.start()
        return traffic

    def answers(self) -> list[Answer]:
        """Every request sent so far, finished or not (a live view while traffic runs)."""
        return [a for t in self.traffics for a in t.answers]

    async def stop_traffic(self) -> None:
        for traffic in self.traffics:
            await traffic.stop()
        self.timeline.answers = sorted((a for t in self.traffics for a in t.answers),
                                       key=lambda a: a.sent)
