"""Uptime accounting: time up / degraded / down per UTC day, per provider and per route, and the
composite availability of a route's chain. Pure: fed with the provider.* transitions (replayed
from the STATUS stream at start-up, then live), time passed in as seconds since the epoch.

Availability is the share of *monitored* time a provider could answer (up or degraded); time
before its first verdict is `unknown` and counts for nothing.
"""

import bisect
import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Literal

from schemas.events import UptimeDay

State = Literal["up", "degraded", "down"]
Change = tuple[float, State]  # (when, the state from then on)
DAY = 86_400.0


class Timelines:
    """Every provider's changes of state over the kept period, each event counted once."""

    def __init__(self, keep_days: int) -> None:
        self.keep_s = keep_days * DAY
        self.changes: dict[str, list[Change]] = {}
        self.seen: set[str] = set()  # event ids: a replayed or re-published event counts once

    def add(self, event_id: str, provider: str, state: State, at: float) -> bool:
        if event_id in self.seen:
            return False
        self.seen.add(event_id)
        bisect.insort(self.changes.setdefault(provider, []), (at, state))
        return True

    def prune(self, now: float) -> None:
        """Forget what is older than the kept period, except the change in force at its start."""
        horizon = now - self.keep_s
        for changes in self.changes.values():
            cut = bisect.bisect_left(changes, (horizon, "")) - 1
            if cut > 0:
                del changes[:cut]

    def of(self, provider: str) -> list[Change]:
        return self.changes.get(provider, [])


def segments(changes: Sequence[Change], start: float, end: float) -> Iterator[tuple[float, State | None]]:
    """(seconds, state) for each stretch of [start, end); state None before the first change."""
    state: State | None = None
    cursor = start
    for at, new in changes:
        if at <= start:
            state = new
            continue
        if at >= end:
            break
        yield at - cursor, state
        cursor, state = at, new
    if end > cursor:
        yield end - cursor, state


def tally(changes: Sequence[Change], start: float, end: float, day: str) -> UptimeDay:
    totals = {"up": 0.0, "degraded": 0.0, "down": 0.0, None: 0.0}
    for seconds, state in segments(changes, start, end):
        totals[state] += seconds
    known = totals["up"] + totals["degraded"] + totals["down"]
    return UptimeDay(
        day=day, up_s=round(totals["up"], 3), degraded_s=round(totals["degraded"], 3),
        down_s=round(totals["down"], 3), unknown_s=round(totals[None], 3),
        availability=round((totals["up"] + totals["degraded"]) / known, 6) if known else None,
    )


def per_day(changes: Sequence[Change], now: float, days: int) -> list[UptimeDay]:
    """Today (up to now) first, then each earlier UTC day."""
    today = math.floor(now / DAY) * DAY
    out = []
    for i in range(days):
        start = today - i * DAY
        out.append(tally(changes, start, min(start + DAY, now), _date(start)))
    return out


def availability(changes: Sequence[Change], start: float, end: float) -> float | None:
    return tally(changes, start, end, "").availability


def route_changes(members: Sequence[Sequence[Change]]) -> list[Change]:
    """A route's own changes from its members' (in chain order): up while the primary is up,
    degraded while the primary is not but another member can answer (or the primary is
    degraded), down while every member is down. Unknown until every member has a verdict."""
    times = sorted({at for changes in members for at, _ in changes})
    out: list[Change] = []
    for t in times:
        states = [_state_at(changes, t) for changes in members]
        if any(s is None for s in states):
            continue
        state: State = ("up" if states[0] == "up" else
                        "down" if all(s == "down" for s in states) else "degraded")
        if not out or out[-1][1] != state:
            out.append((t, state))
    return out


def composite(availabilities: Sequence[float | None]) -> float | None:
    """1 - prod(1 - a_i): the chance that at least one member answers, if they fail independently.
    Members with no measurement yet are left out; None if none is measured."""
    known = [a for a in availabilities if a is not None]
    if not known:
        return None
    return round(1 - math.prod(1 - a for a in known), 6)


def _state_at(changes: Sequence[Change], t: float) -> State | None:
    i = bisect.bisect_right(changes, (t, "~")) - 1  # "~" sorts after every state name
    return changes[i][1] if i >= 0 else None


def _date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()
