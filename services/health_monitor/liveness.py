"""Service liveness from heartbeats: an instance that misses `misses` beats in a row is down; one
that beats again is back up. Pure: time passed in as seconds on the monitor's own clock (receipt
time, so a skewed clock on the beating machine does not matter).

A clean stop (SIGTERM) ends with a beat flagged `stopping`: the instance is forgotten, no alarm.
Every monitor instance sees the same beats, so each names its events after the beat they hinge on
(`service.down.<last beat id>`, `service.up.<first beat back id>`): the stream's Nats-Msg-Id dedupe
stores one of each however many monitors noticed.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from schemas.events import Heartbeat


@dataclass
class Instance:
    service: str
    instance: str
    last_seen: float  # receipt time
    last_beat_at: datetime  # the beat's own timestamp, for the event
    last_beat_id: str
    interval_s: float
    down: bool = False


@dataclass(frozen=True, kw_only=True)
class Change:
    kind: Literal["down", "up"]
    service: str
    instance: str
    event_id: str
    reason: str
    last_seen: datetime | None


class Liveness:
    def __init__(self, *, misses: int, default_interval_s: float) -> None:
        self.misses = misses
        self.default_interval_s = default_interval_s
        self.instances: dict[tuple[str, str], Instance] = {}
        self.known_down: set[tuple[str, str]] = set()  # down per STATUS, not seen since

    def beat(self, hb: Heartbeat, now: float) -> Change | None:
        key = (hb.service, hb.instance)
        if hb.stopping:
            self.instances.pop(key, None)
            self.known_down.discard(key)
            return None
        current = self.instances.get(key)
        came_back = (current is not None and current.down) or (current is None and key in self.known_down)
        self.known_down.discard(key)
        self.instances[key] = Instance(
            service=hb.service, instance=hb.instance, last_seen=now, last_beat_at=hb.occurred_at,
            last_beat_id=hb.id, interval_s=hb.interval_s or self.default_interval_s)
        if not came_back:
            return None
        return Change(kind="up", service=hb.service, instance=hb.instance,
                      event_id=f"service.up.{hb.id}", reason="heartbeats resumed",
                      last_seen=hb.occurred_at)

    def check(self, now: float) -> list[Change]:
        out = []
        for inst in self.instances.values():
            silent = now - inst.last_seen
            if inst.down or silent <= self.misses * inst.interval_s:
                continue
            inst.down = True
            out.append(Change(
                kind="down", service=inst.service, instance=inst.instance,
                event_id=f"service.down.{inst.last_beat_id}",
                reason=f"no heartbeat for {silent:.1f}s ({self.misses} x {inst.interval_s:g}s)",
                last_seen=inst.last_beat_at))
        return out

    def grace(self, now: float) -> None:
        """This monitor could not hear anyone (its own bus connection was down): start every
        instance's count of missed beats again rather than blame them for our deafness."""
        for inst in self.instances.values():
            inst.last_seen = max(inst.last_seen, now)

    def replayed(self, kind: Literal["down", "up"], service: str, instance: str) -> None:
        """A service.* event from the STATUS stream: who was down when this monitor started."""
        key = (service, instance)
        if kind == "down" and key not in self.instances:
            self.known_down.add(key)
        elif kind == "up":
            self.known_down.discard(key)

    def alive(self, service: str) -> list[str]:
        return sorted(i.instance for i in self.instances.values() if i.service == service and not i.down)

    def tick_s(self) -> float:
        """How often check() should run: a fraction of the shortest interval, within bounds."""
        shortest = min((i.interval_s for i in self.instances.values()), default=self.default_interval_s)
        return min(max(shortest / 4, 0.05), 1.0)
