"""The router's decisions, pure: parse a request, plan its attempts, price and grade the answer."""

import json
from dataclasses import dataclass

from pydantic import ValidationError

from schemas.completion import (
    CompletionRequest, CompletionResult, ErrorKind, ResultError, Tier, Usage,
)
from services.runtime.config import LifelineConfig, ModelConfig


@dataclass(frozen=True, kw_only=True)
class Member:
    provider: str
    model: str
    prices: ModelConfig
    region: str
    depth: int  # position in the route's chain; 0 = primary

    @property
    def key(self) -> str:
        """provider/model: what a circuit breaker guards."""
        return f"{self.provider}/{self.model}"


def parse_request(raw: bytes) -> CompletionRequest | ResultError:
    """A bus message to a request, or an error that says what was wrong with it."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return ResultError(kind=ErrorKind.INVALID_REQUEST, message=f"request is not valid JSON: {e}")
    if not isinstance(data, dict):
        return ResultError(kind=ErrorKind.INVALID_REQUEST,
                           message="request must be a JSON object with at least `messages`")
    try:
        return CompletionRequest.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'request'}: {err['msg']}"
            for err in e.errors(include_url=False)
        )
        return ResultError(kind=ErrorKind.INVALID_REQUEST, message=f"invalid request: {problems}")


def request_id_of(raw: bytes) -> str | None:
    """Best effort, so that even a rejected request is answered under the caller's id."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    rid = data.get("request_id") if isinstance(data, dict) else None
    return rid if isinstance(rid, str) and rid else None


def plan(config: LifelineConfig, route: str, region: str | None = None) -> list[Member] | ResultError:
    """The route's chain in order (strategy `priority`; smarter strategies come later).

    A request with a region is only ever planned onto members in that region: data residency
    holds during failover too, and no member there means an error, never a crossing.
    """
    spec = config.routes.get(route)
    if spec is None:
        return ResultError(kind=ErrorKind.NO_ROUTE,
                           message=f"unknown route {route!r} (known: {', '.join(config.routes)})")
    members = []
    for depth, entry in enumerate(spec.chain):
        provider, model = entry.split("/", 1)
        p = config.providers[provider]
        if region is not None and p.region != region:
            continue
        members.append(Member(provider=provider, model=model, prices=p.models[model],
                              region=p.region, depth=depth))
    if not members:
        return ResultError(kind=ErrorKind.NO_ROUTE,
                           message=f"route {route!r} has no member in region {region!r}")
    return members


def maintenance(request_id: str, message: str) -> CompletionResult:
    """Tier 4: an answer, not an error, when no model may be called (the kill switch)."""
    return CompletionResult(request_id=request_id, status="ok", content=message, tier="emergency")


def cost_usd(prices: ModelConfig, usage: Usage) -> float:
    return (usage.input_tokens * prices.input_per_mtok
            + usage.output_tokens * prices.output_per_mtok) / 1_000_000


def tier_for(depth: int) -> Tier:
    return "full" if depth == 0 else "degraded"


def attempt_timeout(attempt_ms: int, deadline_at: float, now: float) -> float:
    """Seconds for the next attempt: the per-attempt timeout, cut to what the deadline leaves."""
    return max(0.0, min(attempt_ms / 1000, deadline_at - now))
