"""Drills: RTO/RPO targets and allowed errors per scenario, and the synthetic traffic's shape.

Every field has a default, so `drills: {}` (or no block) gives each scenario the targets below.
The defaults are no worse than the industry's usual objectives for an LLM-backed service:
API routing RTO 30 s, RPO 0 (stateless: nothing acknowledged may be lost); conversation history
RTO 5 min, RPO 1 min. docs/services/drills.md says how each figure is measured.
"""

from types import MappingProxyType
from typing import Literal

from pydantic import Field

from ._base import Strict

# The scenarios `lifeline drill` knows (services/drills/scenarios), and which objective each is
# held to by default: the request path (routing) or the data we keep (history).
SCENARIOS = (
    "provider-outage", "rate-limit-storm", "latency-spike", "quality-drop", "region-outage",
    "all-providers-down", "load-spike", "data-loss", "bus-node-loss", "service-crash",
    "killswitch",
)
Scenario = Literal[SCENARIOS]  # type: ignore[valid-type]


class DrillTarget(Strict):
    """What one drill must achieve to pass. None: not judged."""

    rto_s: float | None = Field(default=None, ge=0)  # fault -> service restored
    rpo_s: float | None = Field(default=None, ge=0)  # data lost, in seconds; 0 = nothing lost
    errors: int | None = Field(default=None, ge=0)  # client-visible errors allowed
    # Any other figure of the drill's report, at most this value (e.g. killswitch engage_s: 1).
    max: dict[str, float] = Field(default_factory=dict)


ROUTING = DrillTarget(rto_s=30.0, rpo_s=0.0, errors=0)
HISTORY = DrillTarget(rto_s=300.0, rpo_s=60.0, errors=0)
# Scenario defaults beyond the objective: where a scenario's nature allows more, or demands more.
DEFAULT_TARGETS = MappingProxyType({
    **{name: ROUTING for name in SCENARIOS},
    "data-loss": HISTORY,
    # A killed process loses the replies it held (the caller times out and asks again); the drill
    # counts them. A handful at the default rate; the bus itself must lose nothing acknowledged.
    "service-crash": ROUTING.model_copy(update={"errors": 5}),
    # A lost node drops the replies travelling through it while its clients reconnect.
    # JetStream must take writes again (a new stream leader) within the same RTO.
    "bus-node-loss": ROUTING.model_copy(update={"errors": 10, "max": {"write_recovery_s": 30.0}}),
    # Wrong answers with status 200 are seen only by the health monitor's quality canaries,
    # which run every 300 s by default (each canary is a paid call on a real vendor): detection
    # within two canary intervals. Shorten health.canary.interval_s to demand faster.
    "quality-drop": ROUTING.model_copy(update={"rto_s": 600.0}),
    # The kill switch's promise: everything on maintenance within a second.
    "killswitch": ROUTING.model_copy(update={"max": {"engage_s": 1.0}}),
    # Refusals by the budget are the point of the drill, not errors; spend must stay under the cap.
    "load-spike": ROUTING.model_copy(update={"max": {"overshoot_usd": 0.0}}),
})


class TargetOverride(Strict):
    """A scenario's entry under `drills.targets`: the fields given replace its defaults
    (`null` = not judged)."""

    rto_s: float | None = Field(default=None, ge=0)
    rpo_s: float | None = Field(default=None, ge=0)
    errors: int | None = Field(default=None, ge=0)
    max: dict[str, float] | None = None


class TrafficSettings(Strict):
    """The synthetic traffic every drill drives through the router (bounded in rate and count)."""

    rate: float = Field(default=10.0, gt=0, le=1000)  # requests per second
    max_requests: int = Field(default=5000, gt=0)  # a drill never sends more than this
    max_in_flight: int = Field(default=200, gt=0)  # the drill waits rather than pile up more
    timeout_s: float | None = Field(default=None, gt=0)  # per request; None: route deadline + 2 s


class DrillsConfig(Strict):
    """The `drills` section of lifeline.yaml (optional; every field has a default)."""

    route: str = "chat"  # the route the drills' traffic uses
    duration_s: float = Field(default=20.0, gt=0)  # how long the fault lasts
    warmup_s: float = Field(default=5.0, ge=0)  # steady traffic before the fault
    recovery_timeout_s: float = Field(default=60.0, gt=0)  # at most this long waiting for return
    traffic: TrafficSettings = TrafficSettings()
    report_dir: str | None = None  # None: <LIFELINE_HOME>/drills
    # Per scenario; a scenario left out gets DEFAULT_TARGETS, fields left out keep its default.
    targets: dict[Scenario, TargetOverride] = Field(default_factory=dict)

    def target(self, scenario: str) -> DrillTarget:
        base = DEFAULT_TARGETS[scenario]
        override = self.targets.get(scenario)
        if override is None:
            return base
        fields = override.model_dump(exclude_unset=True)
        if fields.get("max") is None and "max" in fields:
            fields["max"] = {}
        return base.model_copy(update=fields)
