"""The health monitor's whole picture, with no I/O: what it has seen (attempts, probes, the
provider-health KV, the STATUS stream, heartbeats) and what it would do about it. The edge
(app.py) feeds it and acts on what it proposes. Time is passed in (seconds since the epoch).
"""

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from schemas import subjects
from schemas.control import ProviderHealth
from schemas.events import (
    HealthProbe,
    LlmAttempt,
    ProviderDegraded,
    ProviderDown,
    ProviderEvent,
    ProviderUp,
)
from services.runtime.config import LifelineConfig

from .liveness import Liveness
from .schedule import Clocks, canary_due, owner, probe_due
from .signals import Sample, verdict
from .states import Proposal, ProviderTracker, Rules
from .uptime import Timelines

EVENTS: dict[str, tuple[str, type[ProviderEvent]]] = {
    "up": (subjects.PROVIDER_UP, ProviderUp),
    "degraded": (subjects.PROVIDER_DEGRADED, ProviderDegraded),
    "down": (subjects.PROVIDER_DOWN, ProviderDown),
}


@dataclass(frozen=True)
class Known:
    revision: int
    value: ProviderHealth


def event_id(provider: str, revision: int) -> str:
    """The same for every instance that publishes this transition: the stream stores it once."""
    return f"provider-health.{provider}.{revision}"


def transition_event(provider: str, revision: int, value: ProviderHealth) -> tuple[str, ProviderEvent]:
    """The provider.* event for a KV revision: built from the value alone, so it is identical
    whichever instance publishes it."""
    subject, model = EVENTS[value.state]
    return subject, model(
        id=event_id(provider, revision), occurred_at=value.since, source=value.source,
        provider=provider, reason=value.reason, state=value.state, since=value.previous_since,
        evidence={**value.evidence, "previous": value.previous})


class Monitor:
    def __init__(self, config: LifelineConfig, *, source: str, started_at: float) -> None:
        self.config = config
        self.source = source
        h = config.health
        self.trackers = {
            name: ProviderTracker(name, Rules(
                hysteresis=h.hysteresis, degraded=h.degraded, canary=h.canary,
                latency_p95_ms=h.for_provider(name).latency_p95_ms or h.degraded.latency_p95_ms))
            for name in config.providers
        }
        # The first canary one canary interval after start: a restart loop must not burn tokens.
        self.clocks = {name: Clocks(last_canary_at=started_at) for name in config.providers}
        self.known: dict[str, Known] = {}
        self.timelines = Timelines(h.uptime.days)
        self.liveness = Liveness(misses=h.liveness.misses,
                                 default_interval_s=h.liveness.default_interval_s)
        self.spend: dict[str, float] = {}
        self.spend_since = started_at
        self.last_probe: dict[str, HealthProbe] = {}
        self.last_canary: dict[str, HealthProbe] = {}
        self.seen: set[str] = set()  # service.* event ids on the STATUS stream

    # --- inputs -----------------------------------------------------------------------------

    def on_attempt(self, attempt: LlmAttempt) -> None:
        tracker = self.trackers.get(attempt.provider)
        if tracker is None:
            return
        error = f"{attempt.outcome}: {attempt.error}" if attempt.error else None
        tracker.observe(attempt.model, Sample(
            at=attempt.occurred_at.timestamp(), verdict=verdict(attempt.outcome, attempt.status_code),
            latency_ms=attempt.latency_ms, probe=False, error=error))

    def on_probe(self, probe: HealthProbe) -> None:
        tracker = self.trackers.get(probe.provider)
        if tracker is None:
            return
        at = probe.occurred_at.timestamp()
        clocks = self.clocks[probe.provider]
        if probe.kind == "canary":
            self.clocks[probe.provider] = replace(clocks, last_canary_at=max(clocks.last_canary_at, at))
            self.last_canary[probe.provider] = probe
            if probe.checked:
                tracker.observe_canary(probe.passed or 0, probe.checked, probe.failures)
        else:
            self.clocks[probe.provider] = replace(clocks, last_probe_at=max(clocks.last_probe_at, at))
            self.last_probe[probe.provider] = probe
        tracker.observe(probe.model if probe.kind == "completion" else None, Sample(
            at=at, verdict=verdict(probe.outcome, probe.status_code), latency_ms=probe.latency_ms,
            probe=True, error=probe.error, timed=probe.kind != "canary"))
        self.spend[probe.provider] = self.spend.get(probe.provider, 0.0) + probe.cost_usd

    def adopt(self, provider: str, revision: int, value: ProviderHealth) -> bool:
        """A provider-health KV revision (ours or another instance's). False if already known."""
        known = self.known.get(provider)
        if known is not None and revision <= known.revision:
            return False
        self.known[provider] = Known(revision, value)
        tracker = self.trackers.get(provider)
        if tracker is not None:
            tracker.adopt(value.state, value.reason, value.since.timestamp(), value.previous)
        return True

    def on_status(self, event: ProviderEvent) -> bool:
        """A provider.* event from the STATUS stream (replayed at start-up, then live)."""
        if event.state is None:
            return False
        return self.timelines.add(event.id, event.provider, event.state, event.occurred_at.timestamp())

    # --- decisions --------------------------------------------------------------------------

    def proposals(self, now: float) -> dict[str, ProviderHealth]:
        """Each provider whose state should change now, as the KV value that would say so."""
        out = {}
        for name, tracker in self.trackers.items():
            proposal = tracker.decide(now)
            if proposal is not None:
                out[name] = self._value(tracker, proposal, now)
        return out

    def _value(self, tracker: ProviderTracker, proposal: Proposal, now: float) -> ProviderHealth:
        previous_since = (datetime.fromtimestamp(tracker.since, UTC)
                          if tracker.since is not None else None)
        return ProviderHealth(
            state=proposal.state, reason=proposal.reason, since=datetime.fromtimestamp(now, UTC),
            previous=tracker.state, previous_since=previous_since, evidence=proposal.evidence,
            source=self.source)

    def monitors(self, me: str) -> list[str]:
        """The live health-monitor instances, this one included: they share the work."""
        return sorted(set(self.liveness.alive("health-monitor")) | {me})

    def due(self, now: float, me: str) -> list[tuple[str, Literal["probe", "canary"]]]:
        """The probes and canaries this instance should start now."""
        instances = self.monitors(me)
        work: list[tuple[str, Literal["probe", "canary"]]] = []
        h = self.config.health
        for name, tracker in self.trackers.items():
            settings = h.for_provider(name)
            if owner(name, instances) != me:
                continue
            clocks = self.clocks[name]
            if settings.probe != "off" and probe_due(tracker, clocks, now, h.probe):
                work.append((name, "probe"))
            if settings.canary and canary_due(tracker, clocks, now, h.canary):
                work.append((name, "canary"))
        return work

    def started(self, provider: str, kind: Literal["probe", "canary"], now: float) -> None:
        """A probe went out: not due again until its interval passes (whatever it answers)."""
        clocks = self.clocks[provider]
        self.clocks[provider] = (replace(clocks, last_canary_at=now) if kind == "canary"
                                 else replace(clocks, last_probe_at=now))
