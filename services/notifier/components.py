"""What the page lists and how each component's status follows from what is known about it.

Pure: no I/O. A component's `detail` (stored with it) holds the facts; its status is derived
from them, so a model that is down, a kill switch and a tier change combine without one event
overwriting another.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from services.runtime.config import LifelineConfig

Status = Literal["operational", "degraded_performance", "partial_outage", "major_outage"]
STATUSES: tuple[Status, ...] = ("operational", "degraded_performance", "partial_outage",
                                "major_outage")
LABELS: dict[str, str] = {
    "operational": "Operational", "degraded_performance": "Degraded performance",
    "partial_outage": "Partial outage", "major_outage": "Major outage",
}
Kind = Literal["provider", "route", "service"]
Detail = dict[str, Any]


@dataclass(frozen=True)
class ComponentSpec:
    id: str
    kind: Kind
    name: str
    description: str


def component_id(kind: Kind, name: str) -> str:
    return f"{kind}-{name}"


def component_specs(config: LifelineConfig) -> list[ComponentSpec]:
    """Each provider, each route (its tier), each service, in the order the page shows them."""
    specs = [ComponentSpec(component_id("provider", name), "provider", name,
                           f"{p.kind} provider, region {p.region}")
             for name, p in config.providers.items()]
    specs += [ComponentSpec(component_id("route", name), "route", name,
                            f"route {name}: {' → '.join(r.chain)}")
              for name, r in config.routes.items()]
    specs += [ComponentSpec(component_id("service", name), "service", name, f"the {name} service")
              for name in config.notifier.services]
    return specs


def worst(statuses: list[str]) -> Status:
    return max(statuses, key=STATUSES.index, default="operational")  # type: ignore[return-value]


def provider_status(d: Detail) -> Status:
    if d.get("down") or d.get("key_refused"):
        return "major_outage"
    if d.get("down_models"):
        return "partial_outage"
    if d.get("degraded"):
        return "degraded_performance"
    return "operational"


# DESIGN.md's tiers, as a customer of the route feels them.
TIER_STATUS: dict[str, Status] = {
    "full": "operational", "degraded": "degraded_performance", "minimal": "partial_outage",
    "emergency": "major_outage",
}


def route_status(d: Detail) -> Status:
    if d.get("killswitch"):
        return "major_outage"  # every answer is the maintenance message
    return TIER_STATUS.get(d.get("tier") or "full", "operational")


def service_status(d: Detail) -> Status:
    return "major_outage" if d.get("down_instances") else "operational"


STATUS_OF: dict[str, Callable[[Detail], Status]] = {
    "provider": provider_status, "route": route_status, "service": service_status,
}


def status_of(kind: str, detail: Detail) -> Status:
    return STATUS_OF[kind](detail)


# Statuspage's page indicator and its wording.
INDICATOR_TEXT = {
    "none": "All Systems Operational", "minor": "Minor Service Outage",
    "major": "Partial System Outage", "critical": "Major Service Outage",
}
IMPACT_ORDER = ("none", "minor", "major", "critical")
STATUS_IMPACT = {"operational": "none", "degraded_performance": "minor",
                 "partial_outage": "major", "major_outage": "major"}


def page_indicator(statuses: Mapping[str, str], open_impacts: list[str]) -> tuple[str, str]:
    """(indicator, description): the worse of the components' state and the open incidents'."""
    levels = [STATUS_IMPACT[s] for s in statuses.values()] + list(open_impacts)
    indicator = max(levels, key=IMPACT_ORDER.index, default="none")
    return indicator, INDICATOR_TEXT[indicator]


def fallbacks(config: LifelineConfig, provider: str) -> dict[str, str | None]:
    """Per route that uses `provider`: the next member of its chain from another provider
    (what traffic fails over to), or None when the route has nothing after it."""
    out: dict[str, str | None] = {}
    for route, r in config.routes.items():
        members = list(r.chain)
        positions = [i for i, m in enumerate(members) if m.split("/", 1)[0] == provider]
        if not positions:
            continue
        after = [m for m in members[positions[0] + 1:] if m.split("/", 1)[0] != provider]
        out[route] = after[0] if after else None
    return out
