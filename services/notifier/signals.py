"""What each status event means for the page: component changes, an incident signal, facts.

Pure: one function per subject, (typed event, what is known now) -> Effects. The edge parses the
message with the model named in SUBJECTS, calls the function, and applies the effects.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from schemas import events as ev
from schemas import subjects as s
from services.runtime.config import LifelineConfig

from .components import Detail, Kind, component_id, fallbacks, status_of


@dataclass(frozen=True)
class Change:
    id: str
    kind: Kind
    name: str
    detail: Detail
    reason: str


@dataclass(frozen=True)
class Signal:
    """Something is wrong (problem=True) or stopped being wrong, under a key that names it."""

    key: str
    problem: bool
    title: str
    component: str
    impact: str
    body: str
    resolve_now: bool = False  # a deliberate end (kill switch released): no monitoring window


@dataclass
class Effects:
    changes: list[Change] = field(default_factory=list)
    signal: Signal | None = None
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Known:
    config: LifelineConfig
    details: Mapping[str, Detail]  # component id -> its detail now

    def detail(self, cid: str) -> Detail:
        return dict(self.details.get(cid, {}))


# --- providers ---------------------------------------------------------------------------------

def _failover_text(config: LifelineConfig, provider: str) -> tuple[str, str, str]:
    """(title tail, body, impact) for an outage of `provider`, naming where traffic goes."""
    routes = fallbacks(config, provider)
    if not routes:
        return "no route uses it", "No route sends traffic to it.", "minor"
    stranded = [r for r, to in routes.items() if to is None]
    targets = list(dict.fromkeys(to.split("/", 1)[0] for to in routes.values() if to))
    lines = [f"Route {r}: {'no fallback' if to is None else f'failing over to {to}'}."
             for r, to in routes.items()]
    if stranded:
        return (f"route {', '.join(stranded)} has no fallback", " ".join(lines), "critical")
    return f"traffic failing over to {', '.join(targets)}", " ".join(lines), "major"


def _provider(e: ev.ProviderEvent, k: Known, update: Callable[[Detail], None]) -> tuple[Change, bool, bool]:
    cid = component_id("provider", e.provider)
    before = k.detail(cid)
    after = dict(before)
    update(after)
    was_out = status_of("provider", before) in ("major_outage", "partial_outage")
    now_out = status_of("provider", after) in ("major_outage", "partial_outage")
    return Change(cid, "provider", e.provider, after, e.reason), was_out, now_out


def _whole(e: ev.ProviderEvent) -> bool:
    return e.model is None


def provider_down(e: ev.ProviderDown, k: Known) -> Effects:
    def update(d: Detail) -> None:
        if _whole(e):
            d.update(down=True, degraded=False)
        else:
            d["down_models"] = sorted({*d.get("down_models", []), e.model})

    change, _, _ = _provider(e, k, update)
    tail, body, impact = _failover_text(k.config, e.provider)
    what = e.provider if _whole(e) else f"{e.provider} ({e.model})"
    return Effects([change], Signal(
        key=f"provider:{e.provider}", problem=True, title=f"Provider {what} outage — {tail}",
        component=change.id, impact=impact if _whole(e) else "minor",
        body=f"{what} is failing: {e.reason or 'no reason given'}. {body}"))


def provider_key_refused(e: ev.ProviderKeyRefused, k: Known) -> Effects:
    change, _, _ = _provider(e, k, lambda d: d.update(key_refused=True))
    tail, body, impact = _failover_text(k.config, e.provider)
    code = f" (HTTP {e.status_code})" if e.status_code else ""
    return Effects([change], Signal(
        key=f"provider:{e.provider}", problem=True,
        title=f"Provider {e.provider} refused our key{code} — {tail}", component=change.id,
        impact=impact, body=f"{e.provider} refused the API key: {e.reason}. {body}"))


def _recovered(e: ev.ProviderEvent, change: Change, was_out: bool, now_out: bool) -> Effects:
    if not was_out or now_out:
        return Effects([change])
    return Effects([change], Signal(
        key=f"provider:{e.provider}", problem=False, title="", component=change.id,
        impact="none", body=f"{e.provider} is answering again: {e.reason or 'recovered'}."))


def provider_up(e: ev.ProviderUp, k: Known) -> Effects:
    def update(d: Detail) -> None:
        if _whole(e):
            d.update(down=False, key_refused=False, degraded=False, down_models=[])
        else:
            d["down_models"] = [m for m in d.get("down_models", []) if m != e.model]

    return _recovered(e, *_provider(e, k, update))


def provider_degraded(e: ev.ProviderDegraded, k: Known) -> Effects:
    # A provider has one state: degraded after down means it is being called again.
    def update(d: Detail) -> None:
        if _whole(e):
            d.update(down=False, degraded=True)

    return _recovered(e, *_provider(e, k, update))


# --- services ----------------------------------------------------------------------------------

def service_down(e: ev.ServiceDown, k: Known) -> Effects:
    cid = component_id("service", e.service)
    d = k.detail(cid)
    d["down_instances"] = sorted({*d.get("down_instances", []), e.instance or "*"})
    return Effects([Change(cid, "service", e.service, d, e.reason)], Signal(
        key=f"service:{e.service}", problem=True, title=f"Service {e.service} is down",
        component=cid, impact="major",
        body=f"{e.service} instance {e.instance or '?'} stopped answering: {e.reason or 'no heartbeat'}."))


def service_up(e: ev.ServiceUp, k: Known) -> Effects:
    cid = component_id("service", e.service)
    d = k.detail(cid)
    was_down = bool(d.get("down_instances"))
    d["down_instances"] = [i for i in d.get("down_instances", []) if i not in (e.instance, "*")]
    change = Change(cid, "service", e.service, d, e.reason)
    if not was_down or d["down_instances"]:
        return Effects([change])
    return Effects([change], Signal(
        key=f"service:{e.service}", problem=False, title="", component=cid, impact="none",
        body=f"{e.service} is answering again."))


# --- routes: tiers and the kill switch ---------------------------------------------------------

TIER_TEXT = {
    "minimal": ("answering from cached and static answers only", "major"),
    "emergency": ("answering with the maintenance message only", "critical"),
}


def tier_changed(e: ev.TierChanged, k: Known) -> Effects:
    cid = component_id("route", e.route)
    d = k.detail(cid)
    d["tier"] = e.to_tier
    change = Change(cid, "route", e.route, d, e.reason or f"tier {e.to_tier}")
    # The kill switch's own incident says why. Its announcement (by the cost guard) may come a
    # moment after the router's first maintenance answer: the router's reason says so already.
    if d.get("killswitch") or e.reason == "killswitch":
        return Effects([change])
    if e.to_tier in TIER_TEXT:
        text, impact = TIER_TEXT[e.to_tier]
        return Effects([change], Signal(
            key=f"route:{e.route}", problem=True, title=f"Route {e.route} is {text}",
            component=cid, impact=impact,
            body=f"Route {e.route} moved to the {e.to_tier} tier: {e.reason or 'no provider answers'}."))
    return Effects([change], Signal(
        key=f"route:{e.route}", problem=False, title="", component=cid, impact="none",
        body=f"Route {e.route} is back on the {e.to_tier} tier."))


def _switched_routes(scope: str, k: Known) -> list[str]:
    if scope == "all":
        return list(k.config.routes)
    kind, _, name = scope.partition(":")
    return [name] if kind == "route" else []


def killswitch_engaged(e: ev.KillswitchEngaged, k: Known) -> Effects:
    changes = []
    for route in _switched_routes(e.scope, k):
        cid = component_id("route", route)
        changes.append(Change(cid, "route", route, {**k.detail(cid), "killswitch": True},
                              f"kill switch: {e.reason}"))
    where = "all routes" if e.scope == "all" else e.scope
    return Effects(changes, Signal(
        key=f"killswitch:{e.scope}", problem=True,
        title=f"Kill switch engaged ({where}): answers are the maintenance message",
        component="killswitch", impact="minor" if e.scope.startswith("key:") else "critical",
        body=f"Engaged by {e.actor or 'unknown'}: {e.reason or 'no reason given'}."))


def killswitch_released(e: ev.KillswitchReleased, k: Known) -> Effects:
    changes = []
    for route in _switched_routes(e.scope, k):
        cid = component_id("route", route)
        changes.append(Change(cid, "route", route, {**k.detail(cid), "killswitch": False},
                              "kill switch released"))
    return Effects(changes, Signal(
        key=f"killswitch:{e.scope}", problem=False, title="", component="killswitch",
        impact="none", body=f"Released by {e.actor or 'unknown'}: {e.reason or 'no reason given'}.",
        resolve_now=True))


# --- budgets -----------------------------------------------------------------------------------

def _budget_key(e: ev.BudgetEvent) -> str:
    return f"budget:{e.scope}:{e.scope_id}:{e.period}"


def budget_exceeded(e: ev.BudgetExceeded, k: Known) -> Effects:
    who = "global" if e.scope == "global" else f"{e.scope} {e.scope_id}"
    action = {"block": "requests are refused", "killswitch": "the kill switch is engaged",
              "downgrade": "the route runs on its cheaper chain"}.get(e.action or "", "no action")
    return Effects(signal=Signal(
        key=_budget_key(e), problem=True,
        title=f"Budget exceeded: {who} {e.period}ly limit ${e.limit_usd:,.2f}",
        component="budgets", impact="major" if e.action in ("block", "killswitch") else "minor",
        body=f"Spent ${e.spent_usd:,.2f} of ${e.limit_usd:,.2f} this {e.period}; {action}."))


def budget_restored(e: ev.BudgetRestored, k: Known) -> Effects:
    return Effects(signal=Signal(
        key=_budget_key(e), problem=False, title="", component="budgets", impact="none",
        body=f"Budget restored ({e.reason.replace('_', ' ')}).", resolve_now=True))


# --- backups, restores, drills -----------------------------------------------------------------

def _fact(e: BaseModel, outcome: str) -> dict[str, Any]:
    return {"outcome": outcome, **e.model_dump(mode="json")}


def backup_completed(e: ev.BackupCompleted, k: Known) -> Effects:
    return Effects(facts={"backup": _fact(e, "completed")}, signal=Signal(
        key="backup", problem=False, title="", component="backups", impact="none",
        body=f"Backup {e.snapshot_id} completed.", resolve_now=True))


def backup_verified(e: ev.BackupVerified, k: Known) -> Effects:
    return Effects(facts={"backup_verified": _fact(e, "verified")})


def backup_failed(e: ev.BackupFailed, k: Known) -> Effects:
    return Effects(facts={"backup": _fact(e, "failed")}, signal=Signal(
        key="backup", problem=True, title=f"Backup failed at the {e.stage} stage",
        component="backups", impact="minor",
        body=f"Snapshot {e.snapshot_id or '(none)'} failed at {e.stage}: {e.reason}."))


def restore_completed(e: ev.RestoreCompleted, k: Known) -> Effects:
    return Effects(facts={"restore": _fact(e, "completed")})


def drill_finished(e: ev.DrillFinished, k: Known) -> Effects:
    """The latest drill, and the latest of its scenario (the page lists one per kind)."""
    fact = _fact(e, "passed" if e.passed else "failed")
    return Effects(facts={"drill": fact, f"drill.{e.scenario}": fact})


def nothing(e: BaseModel, k: Known) -> Effects:
    """Kept in the stream (and so idempotently recorded) but nothing to show."""
    return Effects()


Decide = Callable[[Any, Known], Effects]

# Every status subject: the model its payload is, and what it means.
SUBJECTS: dict[str, tuple[type[BaseModel], Decide]] = {
    s.PROVIDER_DOWN: (ev.ProviderDown, provider_down),
    s.PROVIDER_UP: (ev.ProviderUp, provider_up),
    s.PROVIDER_DEGRADED: (ev.ProviderDegraded, provider_degraded),
    s.PROVIDER_KEY_REFUSED: (ev.ProviderKeyRefused, provider_key_refused),
    s.BUDGET_WARNING: (ev.BudgetWarning, nothing),
    s.BUDGET_EXCEEDED: (ev.BudgetExceeded, budget_exceeded),
    s.BUDGET_RESTORED: (ev.BudgetRestored, budget_restored),
    s.COST_ANOMALY: (ev.CostAnomaly, nothing),
    s.KILLSWITCH_ENGAGED: (ev.KillswitchEngaged, killswitch_engaged),
    s.KILLSWITCH_RELEASED: (ev.KillswitchReleased, killswitch_released),
    s.TIER_CHANGED: (ev.TierChanged, tier_changed),
    s.CONVERSATION_PURGED: (ev.ConversationPurged, nothing),
    s.BACKUP_COMPLETED: (ev.BackupCompleted, backup_completed),
    s.BACKUP_VERIFIED: (ev.BackupVerified, backup_verified),
    s.BACKUP_FAILED: (ev.BackupFailed, backup_failed),
    s.RESTORE_COMPLETED: (ev.RestoreCompleted, restore_completed),
    s.INCIDENT_OPENED: (ev.IncidentOpened, nothing),  # our own
    s.INCIDENT_UPDATED: (ev.IncidentUpdated, nothing),
    s.INCIDENT_RESOLVED: (ev.IncidentResolved, nothing),
    s.SERVICE_DOWN: (ev.ServiceDown, service_down),
    s.SERVICE_UP: (ev.ServiceUp, service_up),
    s.DRILL_STARTED: (ev.DrillStarted, nothing),
    s.DRILL_FINISHED: (ev.DrillFinished, drill_finished),
}
