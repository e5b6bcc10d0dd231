"""When to probe which provider, and which monitor instance does it. Pure.

- A healthy provider is probed every `interval_s`; a suspect one (a failure seen, no verdict yet,
  down, or coming back) every `confirm_interval_s`, so a verdict needs about one interval plus
  (N - 1) confirmations, not N intervals.
- Real traffic measures a provider better than a probe, and for free: while llm.attempt has
  seen it within `traffic_covers_s` and nothing is suspect, its probes pause.
- Several monitor instances share the work: each provider belongs to one live instance,
  chosen by rendezvous hashing over the instances that heartbeat (so a dead instance's providers
  move to the others once its heartbeats stop), and every probe's result is shared on
  `health.probe` so that all instances decide from the same facts.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from services.runtime.config.health import CanarySettings, ProbeSettings

from .states import ProviderTracker


@dataclass(frozen=True, kw_only=True)
class Clocks:
    """When this provider was last probed and canaried (by any monitor instance)."""

    last_probe_at: float = 0.0
    last_canary_at: float = 0.0


def owner(provider: str, instances: Iterable[str]) -> str | None:
    """The instance that probes `provider`: highest hash of (instance, provider) wins."""
    return max(instances, key=lambda i: hashlib.sha256(f"{i}/{provider}".encode()).digest(),
               default=None)


def suspect(tracker: ProviderTracker) -> bool:
    return tracker.state in (None, "down") or tracker.failures > 0 or tracker.flapping


def probe_due(tracker: ProviderTracker, clocks: Clocks, now: float, probe: ProbeSettings) -> bool:
    if suspect(tracker):
        return now - clocks.last_probe_at >= probe.confirm_interval_s
    if now - tracker.last_real_at < probe.traffic_covers_s:
        return False  # real traffic is measuring it
    return now - clocks.last_probe_at >= probe.interval_s


def canary_due(tracker: ProviderTracker, clocks: Clocks, now: float, canary: CanarySettings) -> bool:
    """Golden prompts cost tokens: not while the provider is down (they would only fail)."""
    if not canary.enabled or tracker.state in (None, "down"):
        return False
    return now - clocks.last_canary_at >= canary.interval_s
