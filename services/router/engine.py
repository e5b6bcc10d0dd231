"""Walks a route's chain through the provider port. No bus I/O: the edge publishes what it returns."""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from schemas.completion import (
    Attempt, CompletionRequest, CompletionResult, ErrorKind, ResultError, Usage,
)
from services.providers.base import ChatCall, Provider, ProviderError
from services.runtime.config import LifelineConfig

from . import logic


def callers_fault(e: ProviderError) -> bool:
    """A request every vendor would refuse (400, 422): answer it, do not try the next member.

    A 404 is also `bad_request` in the taxonomy, but it means this vendor lacks the model or the
    deployment; another member of the chain may well have it.
    """
    return e.kind is ErrorKind.BAD_REQUEST and e.status_code != 404


@dataclass
class Outcome:
    result: CompletionResult
    attempts: list[Attempt] = field(default_factory=list)
    status_codes: list[int | None] = field(default_factory=list)


class Engine:
    def __init__(
        self,
        config: LifelineConfig,
        providers: Mapping[str, Provider],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.providers = providers
        self.clock = clock
        self.in_flight = 0

    async def complete(self, request: CompletionRequest) -> Outcome:
        self.in_flight += 1
        try:
            return await self._complete(request)
        finally:
            self.in_flight -= 1

    async def _complete(self, request: CompletionRequest) -> Outcome:
        started = self.clock()
        members = logic.plan(self.config, request.route)
        if isinstance(members, ResultError):
            return Outcome(self._error(request, members, started))
        route = self.config.routes[request.route]
        deadline_ms = min(request.deadline_ms or route.deadline_ms, route.deadline_ms)
        deadline_at = started + deadline_ms / 1000
        call = ChatCall(
            model="", messages=[m.model_dump() for m in request.messages],
            max_tokens=request.max_tokens, temperature=request.temperature,
        )
        outcome = Outcome(self._error(request, ResultError(
            kind=ErrorKind.EXHAUSTED, message="every provider in the route failed"), started))
        for member in members:
            timeout = logic.attempt_timeout(route.attempt_timeout_ms, deadline_at, self.clock())
            if timeout <= 0:
                outcome.result.error = ResultError(
                    kind=ErrorKind.TIMEOUT, message=f"deadline of {deadline_ms} ms reached")
                break
            t0 = self.clock()
            try:
                answer = await self.providers[member.provider].complete(
                    ChatCall(**{**call.__dict__, "model": member.model}), timeout=timeout)
            except ProviderError as e:
                outcome.attempts.append(Attempt(
                    provider=member.provider, model=member.model, outcome=e.kind,
                    latency_ms=_ms(self.clock() - t0), error=e.message))
                outcome.status_codes.append(e.status_code)
                if callers_fault(e):
                    outcome.result.error = ResultError(kind=e.kind, message=e.message)
                    break
                continue
            outcome.attempts.append(Attempt(
                provider=member.provider, model=member.model, outcome="ok",
                latency_ms=_ms(self.clock() - t0)))
            outcome.status_codes.append(answer.status_code)
            usage = Usage(input_tokens=answer.input_tokens, output_tokens=answer.output_tokens)
            outcome.result = CompletionResult(
                request_id=request.request_id, status="ok", content=answer.content,
                tier=logic.tier_for(member.depth), provider=member.provider, model=member.model,
                fallback_depth=member.depth, usage=usage,
                cost_usd=logic.cost_usd(member.prices, usage),
            )
            break
        outcome.result.attempts = outcome.attempts
        outcome.result.latency_ms = _ms(self.clock() - started)
        return outcome

    def _error(self, request: CompletionRequest, error: ResultError, started: float) -> CompletionResult:
        return CompletionResult(request_id=request.request_id, status="error", error=error,
                                latency_ms=_ms(self.clock() - started))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
