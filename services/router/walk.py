"""One request's attempts along its ordered members: failover by error kind, retries of the same
member within the route's budget, a hedged second attempt, all inside the request's deadline.

The decisions come from the pure modules (availability, retry, hedging, strategies); the only
I/O here is the provider calls themselves. At most two attempts run at once (one hedge).
"""

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from opentelemetry.trace import Tracer

from schemas.completion import (
    Attempt, CompletionRequest, CompletionResult, ErrorKind, ResultError, Usage,
)
from services.providers.base import ChatCall, Provider, ProviderError
from services.runtime.config import RouteConfig

from . import logic, spans
from .availability import BREAKER_FAILURES, Availability
from .hedging import hedge_after_s
from .outcome import KeyRefusal, Outcome, callers_fault
from .retry import RetryBudget, backoff_s
from .strategies import MemberStats

Verdict = Literal["answered", "failed", "stop"]
GRACE_S = 0.05  # past the deadline, a provider that ignores its timeout is cancelled


@dataclass
class Parts:
    """What every walk shares: the engine's state."""

    providers: Mapping[str, Provider]
    availability: Availability
    stats: dict[str, MemberStats]
    clock: Callable[[], float]
    rng: random.Random
    tracer: Tracer


class Walk:
    def __init__(self, parts: Parts, request: CompletionRequest, route: RouteConfig,
                 members: list[logic.Member], call: ChatCall, *, prompt_tokens: int,
                 started: float, deadline_at: float, downgraded: bool,
                 budget: RetryBudget | None, may_wait: bool = True) -> None:
        self.p, self.request, self.route, self.members = parts, request, route, members
        self.may_wait = may_wait
        self.call, self.prompt_tokens, self.deadline_at = call, prompt_tokens, deadline_at
        self.started, self.downgraded, self.budget = started, downgraded, budget
        self.outcome = Outcome(CompletionResult(
            request_id=request.request_id, status="error",
            error=ResultError(kind=ErrorKind.EXHAUSTED, message="every provider in the route failed")))
        self.tried: set[str] = set()
        self.skipped: dict[str, str] = {}
        self.retries: dict[str, int] = {}
        self.min_window = 0  # after a context-too-long: only members with a larger window
        # The estimate skips a member only when some member could take the prompt: if none
        # could, the vendors judge (the estimate is rough).
        self.fits_somewhere = any(m.context_window >= prompt_tokens for m in members)
        self.too_small: list[str] = []
        self.last_error: dict[str, ErrorKind] = {}  # member -> how its latest call failed
        self.context_error: ResultError | None = None  # a vendor's own "prompt too long"
        self.running: dict[asyncio.Task[Verdict], logic.Member] = {}
        self.first_started: float | None = None
        self.hedged = False

    async def run(self) -> Outcome:
        try:
            return await self._run()
        finally:
            await self._cancel_running()  # the request itself was cancelled, or a winner is in

    async def _run(self) -> Outcome:
        while True:
            if not self.running:
                member = self._next()
                if member is None:
                    if await self._wait_for_one_due_back():
                        continue
                    return self._give_up()
                self._start(member)
            done = await self._wait()
            if done is None:  # the deadline passed with calls still out
                return self._deadline()
            if not done:  # the hedge threshold passed
                self._hedge()
                continue
            for task in sorted(done, key=list(self.running).index):
                member = self.running.pop(task)
                verdict = task.result()
                if verdict != "failed":
                    return self.outcome
                self._maybe_retry(member)

    # --- choosing and starting -----------------------------------------------------------------

    def _next(self) -> logic.Member | None:
        """The next member that may be called now (in half-open this takes a probe), or None."""
        for member in self.members:
            if member.key in self.tried:
                continue
            if member.context_window < self.min_window or (
                    self.fits_somewhere and member.context_window < self.prompt_tokens):
                if member.key not in self.too_small:
                    self.too_small.append(member.key)
                continue
            now = self.p.clock()
            if logic.attempt_timeout(self.route.attempt_timeout_ms, self.deadline_at, now) <= 0:
                return None
            refusal = self.p.availability.refusal(member.provider, member.key, now)
            if refusal is not None:  # skipped without a network call
                self.skipped[member.key] = refusal
                continue
            self.tried.add(member.key)
            return member
        return None

    def _start(self, member: logic.Member, delay: float = 0.0) -> None:
        if self.first_started is None:
            self.first_started = self.p.clock()
        self.running[asyncio.create_task(self._attempt(member, delay))] = member

    async def _wait(self) -> set[asyncio.Task[Verdict]] | None:
        now = self.p.clock()
        timeout = self.deadline_at + GRACE_S - now
        threshold = self._hedge_at()
        if threshold is not None:
            timeout = min(timeout, max(threshold - now, 0.0))
        done, _ = await asyncio.wait(self.running, timeout=max(timeout, 0.0),
                                     return_when=asyncio.FIRST_COMPLETED)
        if not done and self.p.clock() >= self.deadline_at + GRACE_S:
            return None
        return done

    def _hedge_at(self) -> float | None:
        if self.hedged or len(self.running) != 1 or self.route.hedge is None:
            return None
        (member,) = self.running.values()
        after = hedge_after_s(self.route.hedge, self.p.stats.get(member.key))
        return None if after is None or self.first_started is None else self.first_started + after

    def _hedge(self) -> None:
        self.hedged = True  # one hedge per request, taken or not
        if self.budget is not None and not self.budget.try_spend(self.p.clock()):
            return
        member = self._next()
        if member is not None:
            self._start(member)

    def _maybe_retry(self, member: logic.Member) -> None:
        """After a transient failure: the same member again, after a jittered backoff, if the
        route allows it, the budget has room, the breaker lets it, and the deadline can hold it."""
        kind = self.last_error.get(member.key)
        retry = self.route.retry
        done = self.retries.get(member.key, 0)
        if kind not in BREAKER_FAILURES or done >= retry.per_member or self.budget is None:
            return
        now = self.p.clock()
        wait = backoff_s(done, base_s=retry.base_backoff_ms / 1000,
                         cap_s=retry.max_backoff_ms / 1000, rng=self.p.rng)
        if now + wait >= self.deadline_at or not self.budget.try_spend(now):
            return
        if self.p.availability.refusal(member.provider, member.key, now) is not None:
            return
        self.retries[member.key] = done + 1
        self._start(member, delay=wait)

    # --- one call ------------------------------------------------------------------------------

    async def _attempt(self, member: logic.Member, delay: float) -> Verdict:
        """One call to one member; records its outcome everywhere it matters."""
        avail, out = self.p.availability, self.outcome
        try:
            if delay:
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            avail.cancelled(member.key)  # the probe it held goes back
            raise
        t0 = self.p.clock()
        timeout = logic.attempt_timeout(self.route.attempt_timeout_ms, self.deadline_at, t0)
        try:
            with spans.provider_call(self.p.tracer, member, request_id=self.request.request_id,
                                     route=self.request.route) as span:
                try:
                    answer = await self.p.providers[member.provider].complete(
                        ChatCall(**{**self.call.__dict__, "model": member.model}), timeout=timeout)
                except ProviderError as e:
                    spans.failed(span, e)
                    raise
        except ProviderError as e:
            return self._failed(member, e, t0)
        except asyncio.CancelledError:
            # A hedge's loser (or the request is gone). Its usage cannot be read any more; the
            # vendor bills the prompt once it started work, so that is what it is charged.
            avail.cancelled(member.key)
            usage = Usage(input_tokens=self.prompt_tokens)
            out.add(Attempt(provider=member.provider, model=member.model, outcome="cancelled",
                            latency_ms=_ms(self.p.clock() - t0),
                            error="cancelled: another attempt answered first (cost estimated)"),
                    None, usage, logic.cost_usd(member.prices, usage))
            raise
        now = self.p.clock()
        avail.record(member.provider, member.key, now, duration_s=now - t0, error=None)
        stats = self.p.stats.setdefault(member.key, MemberStats())
        stats.observe_latency(now - t0, now)
        if answer.headroom is not None:
            stats.observe_headroom(answer.headroom, now)
        usage = Usage(input_tokens=answer.input_tokens, output_tokens=answer.output_tokens)
        cost = logic.cost_usd(member.prices, usage)
        out.add(Attempt(provider=member.provider, model=member.model, outcome="ok",
                        latency_ms=_ms(now - t0)), answer.status_code, usage, cost)
        if out.result.status == "ok":  # two answers in the same instant: the first one stands
            return "answered"
        out.result = CompletionResult(
            request_id=self.request.request_id, status="ok", content=answer.content,
            tier=logic.tier_for(member.depth, downgraded=self.downgraded), provider=member.provider,
            model=member.model, fallback_depth=member.depth, usage=usage)
        return "answered"

    def _failed(self, member: logic.Member, e: ProviderError, t0: float) -> Verdict:
        now = self.p.clock()
        self.last_error[member.key] = e.kind
        if self.p.availability.record(member.provider, member.key, now, duration_s=now - t0, error=e):
            self.outcome.key_refusals.append(
                KeyRefusal(member.provider, member.model, e.message, e.status_code))
        stats = self.p.stats.setdefault(member.key, MemberStats())
        if e.kind is ErrorKind.TIMEOUT:  # slowness is latency too: least-latency must see it
            stats.observe_latency(now - t0, now)
        if e.headroom is not None:
            stats.observe_headroom(e.headroom, now)
        self.outcome.add(Attempt(provider=member.provider, model=member.model, outcome=e.kind,
                                 latency_ms=_ms(now - t0), error=e.message), e.status_code, Usage(), 0.0)
        if callers_fault(e) or (e.kind is ErrorKind.CONTENT_POLICY
                                and self.route.on_content_policy == "return"):
            self.outcome.result.error = ResultError(kind=e.kind, message=e.message)
            return "stop"
        if e.kind is ErrorKind.CONTEXT_TOO_LONG:
            self.min_window = max(self.min_window, member.context_window + 1)
            self.context_error = ResultError(kind=e.kind, message=e.message)
        return "failed"

    # --- endings -------------------------------------------------------------------------------

    async def _wait_for_one_due_back(self) -> bool:
        """Everyone left is cooling down: wait for the first one due back, within the deadline."""
        waiting = [(m.provider, m.key) for m in self.members if m.key in self.skipped]
        due = self.p.availability.due_back(waiting, self.p.clock())
        if self.route.when_all_cooling != "wait" or due is None or not self.may_wait:
            return False
        wait = max(due - self.p.clock(), 0.05)
        if self.p.clock() + wait >= self.deadline_at:
            return False
        await asyncio.sleep(wait)
        self.skipped.clear()
        return True

    def _give_up(self) -> Outcome:
        error = self.outcome.result.error
        if logic.attempt_timeout(self.route.attempt_timeout_ms, self.deadline_at, self.p.clock()) <= 0:
            deadline_ms = round((self.deadline_at - self.started) * 1000)
            error = ResultError(kind=ErrorKind.TIMEOUT, message=f"deadline of {deadline_ms} ms reached")
        elif self.context_error is not None or (self.too_small and not self.outcome.attempts):
            error = ResultError(kind=ErrorKind.CONTEXT_TOO_LONG, message=(
                f"the prompt (~{self.prompt_tokens} tokens) needs a larger context window than "
                f"any member left has" + (f" ({', '.join(self.too_small)} too small)"
                                          if self.too_small else "")
                + (f"; the vendor said: {self.context_error.message}" if self.context_error else "")))
        elif self.skipped:
            error = ResultError(kind=ErrorKind.EXHAUSTED, message="no provider could answer: " + "; ".join(
                [f"{a.provider}/{a.model}: {a.outcome}" for a in self.outcome.attempts]
                + list(self.skipped.values())))
        self.outcome.result.error = error
        return self.outcome

    def _deadline(self) -> Outcome:
        deadline_ms = round((self.deadline_at - self.started) * 1000)
        self.outcome.result.error = ResultError(kind=ErrorKind.TIMEOUT,
                                                message=f"deadline of {deadline_ms} ms reached")
        return self.outcome

    async def _cancel_running(self) -> None:
        tasks = list(self.running)
        self.running.clear()
        for task in tasks:
            task.cancel()
        if tasks:  # let each record itself (a loser's attempt and cost) before the answer goes
            await asyncio.gather(*tasks, return_exceptions=True)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
