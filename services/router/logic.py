"""The router's decisions, pure: parse a request, plan its attempts, price and grade the answer."""

import json
from dataclasses import dataclass

from pydantic import ValidationError

from schemas.completion import (
    CompletionRequest, CompletionResult, ErrorKind, Message, ResultError, Tier, Usage,
)
from services.runtime.config import LifelineConfig, ModelConfig
from services.runtime.validation import problems


# Output tokens assumed for pricing a request that sets no max_tokens (strategy `cost`).
OUTPUT_TOKENS_GUESS = 256


@dataclass(frozen=True, kw_only=True)
class Member:
    provider: str
    model: str
    prices: ModelConfig
    region: str
    depth: int  # position in the chain, then in this request's preferred order; 0 = first choice

    @property
    def context_window(self) -> int:
        return self.prices.context_window

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
        return ResultError(kind=ErrorKind.INVALID_REQUEST,
                           message=f"invalid request: {problems(e, 'request')}")


def request_id_of(raw: bytes) -> str | None:
    """Best effort, so that even a rejected request is answered under the caller's id."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    rid = data.get("request_id") if isinstance(data, dict) else None
    return rid if isinstance(rid, str) and rid else None


def plan(config: LifelineConfig, route: str, region: str | None = None, *,
         chain: list[str] | None = None) -> list[Member] | ResultError:
    """The route's chain (or `chain`, picked by a rule or a downgrade) in order.

    A request with a region is only ever planned onto members in that region: data residency
    holds during failover too, and no member there means an error, never a crossing.
    """
    spec = config.routes.get(route)
    if spec is None:
        return ResultError(kind=ErrorKind.NO_ROUTE,
                           message=f"unknown route {route!r} (known: {', '.join(config.routes)})")
    members = []
    for depth, entry in enumerate(chain if chain is not None else spec.chain):
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


def estimate_tokens(messages: list[Message]) -> int:
    """A cheap prompt size: ~4 characters a token (OpenAI's rule of thumb for English) plus 3
    per message for role and separators (OpenAI's cookbook). Good enough to skip a member whose
    window is plainly too small or to match a size rule; never used to bill."""
    return sum(-(-len(m.content) // 4) + 3 for m in messages)


def maintenance(request_id: str, message: str) -> CompletionResult:
    """Tier 4: an answer, not an error, when no model may be called (the kill switch)."""
    return CompletionResult(request_id=request_id, status="ok", content=message, tier="emergency")


def cost_usd(prices: ModelConfig, usage: Usage) -> float:
    return (usage.input_tokens * prices.input_per_mtok
            + usage.output_tokens * prices.output_per_mtok) / 1_000_000


def tier_for(depth: int, *, downgraded: bool = False) -> Tier:
    """`full` when the member the strategy chose first answered; a fallback, or any member of a
    budget downgrade's cheaper chain, is `degraded` (DESIGN.md, degradation tiers)."""
    return "full" if depth == 0 and not downgraded else "degraded"


def attempt_timeout(attempt_ms: int, deadline_at: float, now: float) -> float:
    """Seconds for the next attempt: the per-attempt timeout, cut to what the deadline leaves."""
    return max(0.0, min(attempt_ms / 1000, deadline_at - now))
