"""Walks a route's chain through the provider port. No bus I/O: the edge publishes what it returns."""

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from schemas.completion import (
    Attempt, CompletionRequest, CompletionResult, ErrorKind, ResultError, Usage,
)
from services.providers.base import ChatCall, Provider, ProviderError
from services.runtime.config import LifelineConfig

from . import logic
from .availability import Availability
from .breaker import BreakerConfig


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
        b = config.breaker
        self.availability = Availability(BreakerConfig(
            window=b.window, window_size=b.window_size, minimum_calls=b.minimum_calls,
            failure_rate_threshold=b.failure_rate_threshold,
            slow_call_rate_threshold=b.slow_call_rate_threshold, slow_call_s=b.slow_call_ms / 1000,
            wait_in_open_s=b.wait_in_open_ms / 1000, half_open_calls=b.half_open_calls))
        self.killswitch: str | None = None  # the reason, while engaged (control KV)
        self.in_flight = 0

    async def complete(self, request: CompletionRequest) -> Outcome:
        self.in_flight += 1
        try:
            return await self._complete(request)
        finally:
            self.in_flight -= 1

    async def _complete(self, request: CompletionRequest) -> Outcome:
        started = self.clock()
        if self.killswitch is not None:
            return Outcome(logic.maintenance(request.request_id,
                                             self.config.tiers.maintenance_message))
        members = logic.plan(self.config, request.route, request.region)
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
        tried: set[str] = set()  # a member that failed this request is not asked twice
        while True:
            skipped: dict[str, str] = {}
            for member in members:
                if member.key in tried:
                    continue
                now = self.clock()
                timeout = logic.attempt_timeout(route.attempt_timeout_ms, deadline_at, now)
                if timeout <= 0:
                    outcome.result.error = ResultError(
                        kind=ErrorKind.TIMEOUT, message=f"deadline of {deadline_ms} ms reached")
                    return self._finish(outcome, started)
                refusal = self.availability.refusal(member.provider, member.key, now)
                if refusal is not None:  # skipped without a network call
                    skipped[member.key] = refusal
                    continue
                tried.add(member.key)
                verdict = await self._attempt(member, call, timeout, outcome, request)
                if verdict != "failed":  # answered, or the caller's fault: answered as is
                    return self._finish(outcome, started)
            waiting = [(m.provider, m.key) for m in members if m.key in skipped]
            due = self.availability.due_back(waiting, self.clock())
            if route.when_all_cooling != "wait" or due is None:
                break
            # Everyone left is cooling down: wait for the first one due back, within the deadline.
            wait = max(due - self.clock(), 0.05)
            if self.clock() + wait >= deadline_at:
                break
            await asyncio.sleep(wait)
        if skipped:
            outcome.result.error = ResultError(kind=ErrorKind.EXHAUSTED, message=(
                "no provider could answer: " + "; ".join(
                    [f"{a.provider}/{a.model}: {a.outcome}" for a in outcome.attempts]
                    + list(skipped.values()))))
        return self._finish(outcome, started)

    async def _attempt(self, member: logic.Member, call: ChatCall, timeout: float,
                       outcome: Outcome, request: CompletionRequest,
                       ) -> Literal["answered", "failed", "callers_fault"]:
        """One call to one member. Records the outcome in the availability state and `outcome`."""
        t0 = self.clock()
        try:
            answer = await self.providers[member.provider].complete(
                ChatCall(**{**call.__dict__, "model": member.model}), timeout=timeout)
        except ProviderError as e:
            now = self.clock()
            self.availability.record(member.provider, member.key, now, duration_s=now - t0, error=e)
            outcome.attempts.append(Attempt(
                provider=member.provider, model=member.model, outcome=e.kind,
                latency_ms=_ms(now - t0), error=e.message))
            outcome.status_codes.append(e.status_code)
            if callers_fault(e):
                outcome.result.error = ResultError(kind=e.kind, message=e.message)
                return "callers_fault"
            return "failed"
        except BaseException:
            self.availability.cancelled(member.key)
            raise
        now = self.clock()
        self.availability.record(member.provider, member.key, now, duration_s=now - t0, error=None)
        outcome.attempts.append(Attempt(
            provider=member.provider, model=member.model, outcome="ok", latency_ms=_ms(now - t0)))
        outcome.status_codes.append(answer.status_code)
        usage = Usage(input_tokens=answer.input_tokens, output_tokens=answer.output_tokens)
        outcome.result = CompletionResult(
            request_id=request.request_id, status="ok", content=answer.content,
            tier=logic.tier_for(member.depth), provider=member.provider, model=member.model,
            fallback_depth=member.depth, usage=usage, cost_usd=logic.cost_usd(member.prices, usage),
        )
        return "answered"

    def _finish(self, outcome: Outcome, started: float) -> Outcome:
        outcome.result.attempts = outcome.attempts
        outcome.result.latency_ms = _ms(self.clock() - started)
        return outcome

    def _error(self, request: CompletionRequest, error: ResultError, started: float) -> CompletionResult:
        return CompletionResult(request_id=request.request_id, status="error", error=error,
                                latency_ms=_ms(self.clock() - started))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
