"""Decides, per request, what to try and in which order; walk.py carries it out. No bus I/O: the
edge publishes what it returns and feeds the control and health state in.

    control KV (kill switches) -> maintenance answer, no vendor call
    session history (bounded wait) -> the messages every member gets
    rules + downgrade (rules.py) -> chain and strategy
    residency (logic.plan) -> members allowed for the request's region
    strategy (strategies.py) -> preferred order; slow start (availability) defers a ramping member
    admission (budgets) -> the walk (walk.py) -> lower tiers when nothing answered

Everything up to admission is `prepare()`, which the streaming walk (streaming.py) shares: a
stream obeys exactly the decisions a completion does.
"""

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from opentelemetry.trace import NoOpTracer, Tracer

from schemas.completion import CompletionRequest, CompletionResult, ErrorKind, Message, ResultError
from services.providers.base import ChatCall, Provider
from services.runtime.config import LifelineConfig, RouteConfig

from . import logic, rules, strategies
from .availability import Availability
from .breaker import BreakerConfig
from .controls import Controls
from .history import conversation
from .ports import (
    Admission, History, LowerTiers, NoHistory, NoLowerTiers, Reservation, Unlimited,
)
from .retry import RetryBudget
from .slow_start import SlowStart
from .outcome import KeyRefusal, Outcome, callers_fault
from .walk import Parts, Walk

__all__ = ["Engine", "KeyRefusal", "Outcome", "Plan", "callers_fault"]


@dataclass(frozen=True)
class Plan:
    """What Engine.prepare decided for one request: what the walk (or the stream walk) needs."""

    route: RouteConfig
    members: list[logic.Member]  # in the order to try them; depth = position
    messages: list[Message]  # the request's, after the session's earlier turns
    prompt_tokens: int  # estimated, of `messages`
    downgraded: bool  # a budget downgrade chose the chain: every answer is `degraded`
    reservation: Reservation  # settle it with the real cost, whatever happens


class Engine:
    def __init__(
        self,
        config: LifelineConfig,
        providers: Mapping[str, Provider],
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        lower_tiers: LowerTiers | None = None,
        admission: Admission | None = None,
        history: History | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.config = config
        self.providers = providers
        self.clock = clock
        self.lower_tiers = lower_tiers or NoLowerTiers()
        self.admission = admission or Unlimited()
        self.history = history or NoHistory()
        b = config.breaker
        self.availability = Availability(BreakerConfig(
            window=b.window, window_size=b.window_size, minimum_calls=b.minimum_calls,
            failure_rate_threshold=b.failure_rate_threshold,
            slow_call_rate_threshold=b.slow_call_rate_threshold, slow_call_s=b.slow_call_ms / 1000,
            wait_in_open_s=b.wait_in_open_ms / 1000, half_open_calls=b.half_open_calls),
            slow_start=SlowStart(b.slow_start_ms / 1000))
        self.controls = Controls()
        self.stats: dict[str, strategies.MemberStats] = {}  # provider/model -> latency, headroom
        self.budgets = {name: RetryBudget(r.retry.budget_ratio, r.retry.budget_window_s, r.retry.min_per_s)
                        for name, r in config.routes.items() if r.retry.per_member or r.hedge}
        self.tracer = tracer or NoOpTracer()  # a span per provider call (walk.py, streaming.py)
        self.parts = Parts(providers, self.availability, self.stats, clock, rng or random.Random(),
                           self.tracer)
        self.in_flight = 0

    @property
    def killswitch(self) -> str | None:
        """The global kill switch's reason while engaged (kept for callers of the first cut)."""
        return self.controls.everything

    async def complete(self, request: CompletionRequest, *, may_wait: bool = True) -> Outcome:
        """may_wait=False: never sleep for a cooling member (the queue worker waits outside,
        paced; a call that slept here would reach the vendor unpaced)."""
        self.in_flight += 1
        try:
            return await self._complete(request, may_wait)
        finally:
            self.in_flight -= 1

    async def prepare(self, request: CompletionRequest, started: float) -> Plan | CompletionResult:
        """Everything decided before a provider is called, the same for llm.complete and
        llm.stream: controls -> route -> history -> rules -> members -> admission.

        Returns the answer itself when no provider may be called (the maintenance message under
        a kill switch; an error for an unknown route, no member in the region, a refused budget),
        else the Plan, whose reservation the caller settles whatever happens."""
        if self.controls.blocked(request) is not None:
            answer = logic.maintenance(request.request_id, self.config.tiers.maintenance_message)
            answer.answered_by = "killswitch"  # so tier.changed says why (the notifier reads it)
            return answer
        route = self.config.routes.get(request.route)
        if route is None:
            return self._error(request, logic.plan(self.config, request.route), started)  # type: ignore[arg-type]
        messages = request.messages
        if request.session_id is not None and route.history_turns:
            earlier = await self.history.earlier_turns(request.session_id, limit=route.history_turns)
            messages = conversation(earlier, request.messages)
        prompt_tokens = logic.estimate_tokens(messages)
        choice = rules.choose(route, request, prompt_tokens,
                              downgraded=request.route in self.controls.downgraded)
        members = logic.plan(self.config, request.route, request.region, chain=choice.chain)
        if isinstance(members, ResultError):
            return self._error(request, members, started)
        members = self._order(members, choice.strategy, route.weights, prompt_tokens, request)
        reservation = await self.admission.admit(request, members)
        if isinstance(reservation, ResultError):
            return self._error(request, reservation, started)
        if reservation.downgrade and not choice.downgraded:
            # This team's, user's or key's budget is spent and says `downgrade`: its request runs
            # on the cheaper chain, or, where the route has none, is refused as spent.
            choice = rules.choose(route, request, prompt_tokens, downgraded=True)
            cheaper = logic.plan(self.config, request.route, request.region, chain=choice.chain)
            if not choice.downgraded or isinstance(cheaper, ResultError):
                await reservation.settle(0.0)
                why = (f"route {request.route} has no downgrade_chain" if not choice.downgraded
                       else cheaper.message)  # type: ignore[union-attr]
                return self._error(request, ResultError(
                    kind=ErrorKind.BUDGET_EXHAUSTED,
                    message=f"{reservation.downgrade}, and {why} to go on with"), started)
            members = self._order(cheaper, choice.strategy, route.weights, prompt_tokens, request)
        return Plan(route, members, messages, prompt_tokens, choice.downgraded, reservation)

    async def lower_tier(self, request: CompletionRequest, failed: CompletionResult) -> CompletionResult | None:
        """The lower tiers' answer for a request no model answered, or None (also for a request
        every vendor refuses as malformed: that is said as it is)."""
        if failed.error is not None and failed.error.kind is ErrorKind.BAD_REQUEST:
            return None
        return await self.lower_tiers.answer(request, failed)

    async def _complete(self, request: CompletionRequest, may_wait: bool = True) -> Outcome:
        started = self.clock()
        plan = await self.prepare(request, started)
        if isinstance(plan, CompletionResult):
            return Outcome(plan)
        outcome: Outcome | None = None
        try:
            outcome = await self._walk(request, plan, started, may_wait)
        finally:
            # Settled whatever happens (a cancelled request releases what it reserved).
            await plan.reservation.settle(outcome.result.cost_usd if outcome else 0.0)
        result = outcome.result
        if result.status == "ok":
            await self.lower_tiers.remember(request, result)
        else:
            lower = await self.lower_tier(request, result)
            if lower is not None:
                lower.cost_usd += result.cost_usd  # what the failed attempts were billed
                outcome.result = lower
                self._finish(outcome, started)
        return outcome

    def _order(self, members: list[logic.Member], strategy: strategies.Strategy,
               weights: Mapping[str, float], prompt_tokens: int,
               request: CompletionRequest) -> list[logic.Member]:
        """The strategy's order (depth = position in it); then a member with no rate-limit room
        left goes last, and one still ramping up after its return (slow start) takes only its
        share of first attempts: the rest try it last."""
        now = self.clock()
        preferred = strategies.order(
            strategy, members, stats=self.stats, now=now, rng=self.parts.rng, weights=weights,
            input_tokens=prompt_tokens, output_tokens=request.max_tokens or logic.OUTPUT_TOKENS_GUESS)
        ranked = strategies.room_first([replace(m, depth=i) for i, m in enumerate(preferred)],
                                       stats=self.stats, now=now)
        first = [m for m in ranked if self.availability.ramp_admits(m.provider, m.key, now)]
        return first + [m for m in ranked if m not in first]

    async def _walk(self, request: CompletionRequest, plan: Plan, started: float,
                    may_wait: bool = True) -> Outcome:
        route = plan.route
        deadline_ms = min(request.deadline_ms or route.deadline_ms, route.deadline_ms)
        budget = self.budgets.get(request.route)
        if budget is not None:
            budget.request(started)
        call = ChatCall(model="", messages=[m.model_dump() for m in plan.messages],
                        max_tokens=request.max_tokens, temperature=request.temperature)
        outcome = await Walk(self.parts, request, route, plan.members, call,
                             prompt_tokens=plan.prompt_tokens, started=started,
                             deadline_at=started + deadline_ms / 1000, downgraded=plan.downgraded,
                             budget=budget, may_wait=may_wait).run()
        outcome.result.cost_usd = sum(outcome.costs)  # the winner and every billed loser
        return self._finish(outcome, started)

    def _finish(self, outcome: Outcome, started: float) -> Outcome:
        outcome.result.attempts = outcome.attempts
        outcome.result.latency_ms = round((self.clock() - started) * 1000, 3)
        return outcome

    def _error(self, request: CompletionRequest, error: ResultError, started: float) -> CompletionResult:
        return CompletionResult(request_id=request.request_id, status="error", error=error,
                                latency_ms=round((self.clock() - started) * 1000, 3))
