"""An incident's life: opened, updated, monitoring, resolved; reopened when it comes back soon.

Pure: time is passed in (`at`, the time of the event being applied). Flapping folds into one
incident two ways: a failure while the incident is still "monitoring" (recovered, but not yet
for `resolve_after_s`) puts it back to "identified"; a failure within `reopen_within_s` of the
resolution reopens it.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from services.runtime.config.notifier import IncidentPolicy

from .signals import Signal

TransitionKind = Literal["opened", "reopened", "updated", "monitoring", "resolved"]
OPEN_STATUSES = ("investigating", "identified", "monitoring")
IMPACTS = ("none", "minor", "major", "critical")


@dataclass(frozen=True)
class Incident:
    id: str
    key: str | None
    title: str
    component: str
    impact: str
    status: str
    origin: str  # "auto" | "manual"
    started_at: datetime
    updated_at: datetime
    monitoring_at: datetime | None = None
    resolved_at: datetime | None = None
    duration_s: float | None = None
    flaps: int = 0
    last_alert_at: datetime | None = None
    version: int = 0

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True)
class Transition:
    kind: TransitionKind
    incident: Incident  # as it is after the transition
    body: str
    at: datetime
    actor: str | None = None
    new: bool = False  # the incident did not exist before


def human(seconds: float) -> str:
    """2h 03m, 4m 05s, 12s."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def _step(i: Incident, at: datetime, **changes: object) -> Incident:
    return replace(i, updated_at=at, version=i.version + 1, **changes)  # type: ignore[arg-type]


def _resolve(i: Incident, at: datetime, body: str, actor: str | None = None) -> Transition:
    recovered = i.monitoring_at or at
    duration = max(0.0, (recovered - i.started_at).total_seconds())
    done = _step(i, at, status="resolved", resolved_at=at, duration_s=duration)
    return Transition("resolved", done, f"{body} Resolved after {human(duration)}.".strip(), at,
                      actor)


def settle(i: Incident | None, at: datetime, policy: IncidentPolicy) -> Transition | None:
    """Resolves an incident that has been monitoring for the whole quiet period by `at`.

    The resolution is dated at the end of the quiet period, not when someone noticed, so a
    replay of old events settles them at the times they would have settled."""
    if i is None or i.status != "monitoring" or i.monitoring_at is None:
        return None
    due = i.monitoring_at + timedelta(seconds=policy.resolve_after_s)
    if at < due:
        return None
    flaps = f" after {i.flaps} relapses" if i.flaps else ""
    return _resolve(i, max(due, i.monitoring_at), f"Stable for {human(policy.resolve_after_s)}{flaps}.")


def on_signal(sig: Signal, current: Incident | None, at: datetime, policy: IncidentPolicy,
              new_id: str) -> list[Transition]:
    """What `sig` does to the latest incident under its key (open, or the last resolved one)."""
    out: list[Transition] = []
    if (settled := settle(current, at, policy)) is not None:
        out.append(settled)
        current = settled.incident
    if sig.problem:
        step = _problem(sig, current, at, policy, new_id)
    else:
        step = _recovery(sig, current, at, policy)
    return out + ([step] if step else [])


def _problem(sig: Signal, i: Incident | None, at: datetime, policy: IncidentPolicy,
             new_id: str) -> Transition | None:
    if i is None or (i.resolved_at is not None
                     and (at - i.resolved_at).total_seconds() > policy.reopen_within_s):
        opened = Incident(id=new_id, key=sig.key, title=sig.title, component=sig.component,
                          impact=sig.impact, status="investigating", origin="auto",
                          started_at=at, updated_at=at)
        return Transition("opened", opened, sig.body, at, new=True)
    if i.resolved_at is not None:  # resolved a short while ago: the same trouble, back
        again = _step(i, at, status="investigating", resolved_at=None, duration_s=None,
                      monitoring_at=None, flaps=i.flaps + 1, impact=_worse(i.impact, sig.impact))
        return Transition("reopened", again, f"Failing again: {sig.body}", at)
    if i.status == "monitoring":  # recovered, then failed inside the quiet period: a flap
        again = _step(i, at, status="identified", monitoring_at=None, flaps=i.flaps + 1,
                      impact=_worse(i.impact, sig.impact))
        return Transition("updated", again, f"Failing again (relapse {i.flaps + 1}): {sig.body}", at)
    if IMPACTS.index(sig.impact) > IMPACTS.index(i.impact):
        worse = _step(i, at, impact=sig.impact, title=sig.title)
        return Transition("updated", worse, f"Impact now {sig.impact}: {sig.body}", at)
    return None  # the same trouble, already told


def _recovery(sig: Signal, i: Incident | None, at: datetime,
              policy: IncidentPolicy) -> Transition | None:
    if i is None or i.resolved_at is not None:
        return None
    if sig.resolve_now or policy.resolve_after_s == 0:
        return _resolve(replace(i, monitoring_at=at), at, sig.body)
    if i.status == "monitoring":
        return None
    calm = _step(i, at, status="monitoring", monitoring_at=at)
    return Transition("monitoring", calm,
                      f"{sig.body} Monitoring for {human(policy.resolve_after_s)} before resolving.", at)


def _worse(a: str, b: str) -> str:
    return max(a, b, key=IMPACTS.index)


# --- operators' incidents (admin console, `lifeline incident`) ---------------------------------

def manual_open(*, new_id: str, title: str, component: str, impact: str, status: str, body: str,
                at: datetime, actor: str) -> Transition:
    i = Incident(id=new_id, key=None, title=title, component=component, impact=impact,
                 status=status, origin="manual", started_at=at, updated_at=at)
    return Transition("opened", i, body, at, actor, new=True)


def manual_update(i: Incident, *, status: str | None, body: str, at: datetime,
                  actor: str) -> Transition:
    if status == "resolved":
        return manual_resolve(i, body=body, at=at, actor=actor)
    status = status or i.status
    monitoring_at = (i.monitoring_at or at) if status == "monitoring" else None
    return Transition("updated", _step(i, at, status=status, monitoring_at=monitoring_at), body,
                      at, actor)


def manual_resolve(i: Incident, *, body: str, at: datetime, actor: str) -> Transition:
    return _resolve(replace(i, monitoring_at=i.monitoring_at or at), at, body or "Resolved.", actor)
