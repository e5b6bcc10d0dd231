"""What the `control` and `provider-health` KV buckets hold: keys and values every router obeys.

Bucket `control` (written by cost-guard, the CLI and the notifier's admin console):

    killswitch                  Killswitch   scope "all": no provider call anywhere
    killswitch.route.<route>    Killswitch   that route only
    killswitch.key.<key_id>     Killswitch   one API key only (runaway detection's auto-kill)
    downgrade.<route>           Downgrade    the route runs on its `downgrade_chain`
    fault.<provider>            ProviderFault  every router treats the provider as failing (a drill
                                on a real vendor, or taking a bad provider out of rotation)

Deleting a key releases what it held.
"""

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field

KILLSWITCH_KEY = "killswitch"  # scope "all"
KILLSWITCH_ROUTE_PREFIX = "killswitch.route."
KILLSWITCH_KEY_PREFIX = "killswitch.key."
DOWNGRADE_PREFIX = "downgrade."
FAULT_PREFIX = "fault."


def fault_key(provider: str) -> str:
    """The control KV key of the router-side fault switch for one provider."""
    if not provider or any(c in provider for c in ". *>"):
        raise ValueError(f"not a provider name: {provider!r}")
    return FAULT_PREFIX + provider


def killswitch_key(scope: str) -> str:
    """The control KV key for a scope: "all", "route:<name>" or "key:<key_id>"."""
    if scope == "all":
        return KILLSWITCH_KEY
    kind, _, name = scope.partition(":")
    if kind == "route" and name:
        return KILLSWITCH_ROUTE_PREFIX + name
    if kind == "key" and name:
        return KILLSWITCH_KEY_PREFIX + name
    raise ValueError(f"kill switch scope must be all, route:<name> or key:<key_id>, not {scope!r}")


def scope_of(kv_key: str) -> str | None:
    """The scope a control KV key holds a kill switch for, or None if it holds something else."""
    if kv_key == KILLSWITCH_KEY:
        return "all"
    if kv_key.startswith(KILLSWITCH_ROUTE_PREFIX):
        return "route:" + kv_key.removeprefix(KILLSWITCH_ROUTE_PREFIX)
    if kv_key.startswith(KILLSWITCH_KEY_PREFIX):
        return "key:" + kv_key.removeprefix(KILLSWITCH_KEY_PREFIX)
    return None


def now() -> datetime:
    return datetime.now(UTC)


class Killswitch(BaseModel):
    engaged: bool
    reason: str = ""
    # who or what engaged it (an operator, cost-guard); "by" is what the first release wrote
    actor: str | None = Field(default=None, validation_alias=AliasChoices("actor", "by"))
    scope: str = "all"
    at: datetime = Field(default_factory=now)


class Downgrade(BaseModel):
    active: bool
    reason: str = ""
    actor: str | None = None
    at: datetime = Field(default_factory=now)


class ProviderFault(BaseModel):
    """Key `fault.<provider>`: while `active`, routers skip the provider as if the health monitor
    said `down` (no call goes out); released, it ramps back up (slow start). It breaks nothing at
    the vendor: `lifeline drill` uses it for providers that are not simulated."""

    active: bool
    reason: str = ""
    actor: str | None = None
    at: datetime = Field(default_factory=now)


class ProviderHealth(BaseModel):
    """Bucket `provider-health`, key = provider name; written by the health monitor.

    The health monitor writes it with compare-and-set (one writer per transition among its
    instances) and carries the whole transition, so that any instance can publish the matching
    provider.* event (id `provider-health.<provider>.<revision>`) if the writer died first.
    """

    state: Literal["up", "degraded", "down"]
    reason: str = ""
    since: datetime = Field(default_factory=now)  # when this state began
    previous: Literal["up", "degraded", "down"] | None = None  # None: first verdict
    previous_since: datetime | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)  # error rate, p95, last errors, ...
    source: str = ""  # the health-monitor instance that decided it
