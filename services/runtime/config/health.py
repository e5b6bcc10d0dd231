"""Health monitor: probes, passive windows, hysteresis, canaries, liveness, uptime.

Every field has a default, so `health: {}` (or no block at all) is a working monitor. Times are in
seconds unless the name says `_ms`. docs/services/health-monitor.md explains each figure.
"""

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from ._base import Strict


class ProbeSettings(Strict):
    interval_s: float = Field(default=10.0, gt=0)  # between probes of a healthy provider
    # Between probes once one failed (or while down, or while coming back): a verdict within
    # interval_s + (failures_to_down - 1) * confirm_interval_s, i.e. under two intervals.
    confirm_interval_s: float = Field(default=1.0, gt=0)
    timeout_s: float = Field(default=5.0, gt=0)  # one probe call, end to end
    # Probes pause for a provider that real traffic (llm.attempt) measured this recently.
    traffic_covers_s: float = Field(default=10.0, ge=0)
    # A capped completion (probe: completion): tiny, and a short or empty answer still counts as
    # up, so a reasoning model spending its cap on thinking is not marked unhealthy.
    max_tokens: int = Field(default=4, gt=0)
    prompt: str = "Reply with exactly: ok"


class HysteresisSettings(Strict):
    failures_to_down: int = Field(default=3, ge=1)  # consecutive failed calls
    successes_to_up: int = Field(default=3, ge=1)  # consecutive answered calls, once down
    # Flap damping: a provider that turns worse again within flap_window_s of this many
    # recoveries is held at `degraded` (reason `flapping`) until its calls have all gone one way
    # for stable_s. An outage that starts and ends is one recovery; a second fall soon after is
    # the flap.
    flap_window_s: float = Field(default=120.0, gt=0)
    flap_recoveries: int = Field(default=1, ge=1)
    stable_s: float = Field(default=60.0, gt=0)


class DegradedSettings(Strict):
    """When an answering provider is `degraded`: each figure over a sliding window per model."""

    window_s: float = Field(default=60.0, gt=0)
    min_samples: int = Field(default=10, ge=1)  # calls in the window before a rate means anything
    error_rate: float = Field(default=0.25, gt=0, le=1)  # failed / (answered + failed)
    rate_limited: float = Field(default=0.2, gt=0, le=1)  # 429s / all calls
    latency_p95_ms: float = Field(default=8000.0, gt=0)  # real calls (llm.attempt), answered
    probe_latency_ms: float = Field(default=3000.0, gt=0)  # probes' own p95
    probe_min_samples: int = Field(default=3, ge=1)


JSON_TYPES = ("string", "integer", "number", "boolean", "object", "array", "null")


class CanaryCheck(Strict):
    """One golden prompt and how its answer is checked.

    expect `exact`: the answer, trimmed (and without one trailing period), equals `value`;
    `regex`: `value` is searched in the answer; `json`: the answer holds a JSON object with the
    keys of `value`, each of the JSON type named there (string, integer, number, boolean, object,
    array, null) - fenced or surrounded by prose is fine, as models like to add it.
    """

    name: str
    prompt: str
    expect: Literal["exact", "regex", "json"]
    value: str | dict[str, str]

    @model_validator(mode="after")
    def _value_fits(self) -> "CanaryCheck":
        if self.expect == "json" and not isinstance(self.value, dict):
            raise ValueError("expect json needs value: a mapping of key -> JSON type")
        if isinstance(self.value, dict) and (bad := set(self.value.values()) - set(JSON_TYPES)):
            raise ValueError(f"unknown JSON type {sorted(bad)}; known: {', '.join(JSON_TYPES)}")
        if self.expect == "regex":
            try:
                re.compile(str(self.value))
            except re.error as e:
                raise ValueError(f"value is not a valid regular expression: {e}") from None
        if self.expect != "json" and not isinstance(self.value, str):
            raise ValueError(f"expect {self.expect} needs value: a string")
        return self


# Answerable by any instruction-following model, and by the simulator's deterministic rules
# ("Reply with exactly: X" and "A + B", services/simulator/logic.py), so mode `ok` passes them.
DEFAULT_CANARIES: tuple[dict[str, Any], ...] = (
    {"name": "exact", "prompt": "Reply with exactly: lifeline-canary-7", "expect": "exact",
     "value": "lifeline-canary-7"},
    {"name": "arithmetic", "prompt": "What is 17 + 25? Reply with the number only.",
     "expect": "regex", "value": r"\b42\b"},
    {"name": "json", "prompt": 'Reply with exactly: {"status": "ok", "items": 3}',
     "expect": "json", "value": {"status": "string", "items": "integer"}},
)


class CanarySettings(Strict):
    enabled: bool = True
    interval_s: float = Field(default=300.0, gt=0)  # golden prompts cost tokens: run them rarely
    max_tokens: int = Field(default=256, gt=0)  # room for a reasoning model to think and answer
    window: int = Field(default=6, ge=1)  # the pass rate is over this many latest checks
    pass_threshold: float = Field(default=0.6, gt=0, le=1)  # below it: degraded, reason quality
    checks: list[CanaryCheck] = Field(
        default_factory=lambda: [CanaryCheck(**c) for c in DEFAULT_CANARIES], min_length=1)


class ProviderHealthSettings(Strict):
    """Per provider, under `health.providers.<name>`."""

    # auto: the vendor's models list (GET /v1/models; OpenAI, Anthropic, vLLM and Ollama all
    # serve one) - free; completion: a capped chat call per model (Azure deployments, servers
    # without a models list); off: passive signals only.
    probe: Literal["auto", "models", "completion", "off"] = "auto"
    canary_model: str | None = None  # None: the provider's first model in lifeline.yaml
    canary: bool = True
    latency_p95_ms: float | None = Field(default=None, gt=0)  # overrides degraded.latency_p95_ms


class LivenessSettings(Strict):
    misses: int = Field(default=3, ge=1)  # heartbeats missed in a row: service.down
    # Used for an instance whose heartbeat does not say its own interval.
    default_interval_s: float = Field(default=2.0, gt=0)


class UptimeSettings(Strict):
    days: int = Field(default=90, ge=1, le=365)  # per-day accounting kept this long


class HealthConfig(Strict):
    """The `health` section of lifeline.yaml (optional; every field has a default)."""

    probe: ProbeSettings = ProbeSettings()
    hysteresis: HysteresisSettings = HysteresisSettings()
    degraded: DegradedSettings = DegradedSettings()
    canary: CanarySettings = CanarySettings()
    liveness: LivenessSettings = LivenessSettings()
    uptime: UptimeSettings = UptimeSettings()
    providers: dict[str, ProviderHealthSettings] = Field(default_factory=dict)

    def for_provider(self, name: str) -> ProviderHealthSettings:
        return self.providers.get(name) or ProviderHealthSettings()

    def check_names(self, providers: Mapping[str, Any]) -> None:
        """health.providers must name configured providers and their models (a section cannot
        see the others while it is validated; the health monitor calls this at start-up)."""
        for name, settings in self.providers.items():
            if name not in providers:
                raise ValueError(f"lifeline.yaml: health.providers.{name}: unknown provider "
                                 f"(known: {', '.join(providers)})")
            model = settings.canary_model
            if model is not None and model not in providers[name].models:
                raise ValueError(f"lifeline.yaml: health.providers.{name}.canary_model: {name} "
                                 f"has no model {model!r}")
