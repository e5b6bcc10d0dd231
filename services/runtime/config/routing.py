"""Routing policy: providers, their models and prices, routes and their chains, breakers.

A route's `rules` pick another chain or strategy per request (router/rules.py); `hedge` and
`retry` shape the attempts (router/hedging.py, router/retry.py). Every field has a default, so an
older file still loads.
"""

import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from services.providers.base import ProviderKind

from ._base import Strict

MEMBER = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.:/-]+$")
Member = Annotated[str, Field(pattern=MEMBER.pattern)]  # "provider/model"
Strategy = Literal["priority", "weighted", "least-latency", "cost", "headroom"]
MetadataValue = str | int | float | bool


class ModelConfig(Strict):
    input_per_mtok: float = Field(ge=0)  # USD per million input tokens
    output_per_mtok: float = Field(ge=0)  # USD per million output tokens
    context_window: int = Field(default=128_000, gt=0)  # tokens


class ProviderConfig(Strict):
    kind: ProviderKind
    base_url: str
    api_key_env: str | None = None  # the variable holding the key; never the key itself
    region: str = "global"
    # This provider's own connection pool. 1,024 so that one router instance can hold its
    # 1,000+ requests in flight against a slow vendor without queueing inside the pool.
    max_connections: int = Field(default=1024, gt=0)
    models: dict[str, ModelConfig] = Field(min_length=1)


class Match(Strict):
    """What a rule looks at. Every condition given must hold; at least one must be given."""

    # request.metadata[key] equals the value, or is one of the values of a list
    metadata: dict[str, MetadataValue | list[MetadataValue]] = Field(default_factory=dict)
    priority: Literal["interactive", "batch"] | None = None  # request.priority
    region: str | list[str] | None = None  # request.region
    min_prompt_tokens: int | None = Field(default=None, ge=0)  # the prompt's estimated tokens
    max_prompt_tokens: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _says_something(self) -> "Match":
        if not (self.metadata or self.priority or self.region is not None
                or self.min_prompt_tokens is not None or self.max_prompt_tokens is not None):
            raise ValueError("a rule's `when` needs at least one condition (metadata, priority, "
                             "region, min_prompt_tokens, max_prompt_tokens)")
        return self


class Rule(Strict):
    """Conditional routing: the first rule whose `when` matches picks the chain and/or strategy."""

    name: str | None = None  # shown in logs and docs; defaults to the rule's position
    when: Match
    chain: list[Member] | None = Field(default=None, min_length=1)
    strategy: Strategy | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> "Rule":
        if self.chain is None and self.strategy is None:
            raise ValueError("a rule must set `chain`, `strategy` or both")
        return self


class HedgeConfig(Strict):
    """Start the next member if the first has not answered after a threshold."""

    # fixed: after `after_ms`; p95: after the member's observed p95 latency (after_ms until it
    # has `min_samples` answers to go on).
    after: Literal["fixed", "p95"] = "fixed"
    after_ms: int = Field(default=1000, gt=0)
    min_samples: int = Field(default=20, ge=1)


class RetryConfig(Strict):
    """Retrying the SAME member, within a budget (Finagle's RetryBudget model)."""

    per_member: int = Field(default=0, ge=0)  # extra calls to one member per request; 0 = none
    budget_ratio: float = Field(default=0.2, ge=0, le=1)  # retries (and hedges) <= this x requests
    budget_window_s: float = Field(default=10.0, gt=0)  # ... over this sliding window
    min_per_s: float = Field(default=1.0, ge=0)  # a floor, so a quiet route can still retry
    base_backoff_ms: int = Field(default=50, gt=0)  # full jitter: sleep U(0, min(cap, base*2^n))
    max_backoff_ms: int = Field(default=1000, gt=0)


class RouteConfig(Strict):
    chain: list[Member] = Field(min_length=1)
    strategy: Strategy = "priority"
    # `weighted` only: share per member; a member left out weighs 1, weight 0 = fallback only.
    weights: dict[Member, float] = Field(default_factory=dict)
    attempt_timeout_ms: int = Field(default=10_000, gt=0)  # per call to one member
    deadline_ms: int = Field(default=30_000, gt=0)  # the whole request, all attempts
    # Every member open or rate limited: wait (within the deadline) for the first one due back,
    # or give up at once and let the lower tiers answer.
    when_all_cooling: Literal["wait", "degrade"] = "wait"
    # A vendor's content-policy refusal: hand it to the caller, or ask the next member.
    on_content_policy: Literal["return", "failover"] = "return"
    # The cheaper chain the route switches to while a budget's `downgrade` action is in force
    # (control KV `downgrade.<route>`, set by cost-guard). None: the route cannot downgrade.
    downgrade_chain: list[Member] | None = None
    # A stream whose member fails after text was sent: `resume` on the next member from the
    # partial answer (the caller sees one stream), or `error` (an explicit error chunk).
    on_stream_failure: Literal["resume", "error"] = "resume"
    rules: list[Rule] = Field(default_factory=list)
    hedge: HedgeConfig | None = None  # None: no hedged requests on this route
    retry: RetryConfig = RetryConfig()
    history_turns: int = Field(default=20, ge=0)  # earlier turns of a session carried along

    @field_validator("weights")
    @classmethod
    def _weights_name_chain_members(cls, weights: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        chain = info.data.get("chain") or []
        for member, weight in weights.items():
            if member not in chain:
                raise ValueError(f"{member!r} is not in the chain ({', '.join(chain)})")
            if weight < 0:
                raise ValueError(f"{member!r}: a weight cannot be negative")
        return weights

    def chains(self) -> Iterator[tuple[tuple[Any, ...], str]]:
        """Every member this route can call, with where it is written (for the config check)."""
        for i, member in enumerate(self.chain):
            yield ("chain", i), member
        for i, member in enumerate(self.downgrade_chain or []):
            yield ("downgrade_chain", i), member
        for r, rule in enumerate(self.rules):
            for i, member in enumerate(rule.chain or []):
                yield ("rules", r, "chain", i), member


class BreakerSettings(Strict):
    """Circuit breakers per provider/model (resilience4j's semantics; see router/breaker.py)."""

    window: Literal["count", "time"] = "count"
    window_size: int = Field(default=20, ge=1)  # calls, or seconds for a time window
    minimum_calls: int = Field(default=10, ge=1)
    failure_rate_threshold: float = Field(default=50.0, gt=0, le=100)  # percent
    slow_call_rate_threshold: float = Field(default=100.0, gt=0, le=100)  # percent
    slow_call_ms: int = Field(default=10_000, gt=0)
    wait_in_open_ms: int = Field(default=30_000, gt=0)
    half_open_calls: int = Field(default=3, ge=1)
    # Gradual return: after a member comes back (breaker closed again, or the health monitor
    # says up), its share of traffic ramps linearly from 0 to 100 % over this long. 0 = at once.
    slow_start_ms: int = Field(default=0, ge=0)


class SimulatorConfig(Strict):
    # A provider whose api_key_env is unset is served by the simulator (DESIGN.md: a new user
    # sees the whole thing work with no keys); a configured key always wins.
    enabled: bool = True
