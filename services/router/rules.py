"""Conditional routing: which chain and strategy one request gets. Pure.

The route's `rules` (lifeline.yaml) are tried in order; the first whose `when` holds picks the
chain and/or strategy (what it leaves out comes from the route). A route under a budget
`downgrade` (control KV) runs on its `downgrade_chain` whatever the rules say: the budget wins.
"""

from dataclasses import dataclass

from schemas.completion import CompletionRequest
from services.runtime.config.routing import Match, RouteConfig, Strategy


@dataclass(frozen=True)
class Choice:
    chain: list[str]
    strategy: Strategy
    rule: str | None  # the rule that matched, by name or position
    downgraded: bool


def choose(route: RouteConfig, request: CompletionRequest, prompt_tokens: int, *,
           downgraded: bool = False) -> Choice:
    chain, strategy, picked = route.chain, route.strategy, None
    for i, rule in enumerate(route.rules):
        if matches(rule.when, request, prompt_tokens):
            chain = rule.chain or chain
            strategy = rule.strategy or strategy
            picked = rule.name or f"rules[{i}]"
            break
    downgrade = downgraded and route.downgrade_chain is not None
    return Choice(chain=route.downgrade_chain if downgrade else chain,  # type: ignore[arg-type]
                  strategy=strategy, rule=picked, downgraded=downgrade)


def matches(when: Match, request: CompletionRequest, prompt_tokens: int) -> bool:
    for key, wanted in when.metadata.items():
        if key not in request.metadata or not _equal(request.metadata[key], wanted):
            return False
    if when.priority is not None and request.priority != when.priority:
        return False
    if when.region is not None and not _equal(request.region, when.region):
        return False
    if when.min_prompt_tokens is not None and prompt_tokens < when.min_prompt_tokens:
        return False
    if when.max_prompt_tokens is not None and prompt_tokens > when.max_prompt_tokens:
        return False
    return True


def _equal(value: object, wanted: object) -> bool:
    """`wanted` is one value or a list of allowed values. Compared as text, so that metadata
    from JSON ("1", 1, true) meets YAML's own typing halfway."""
    allowed = wanted if isinstance(wanted, list) else [wanted]
    return _text(value) in {_text(w) for w in allowed}


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
