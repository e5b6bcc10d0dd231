"""A streamed request walked through the route's chain, text forwarded as the provider makes it.

The same decisions as llm.complete (the engine's `prepare`: kill switches, downgrade, rules and
strategy, slow start, session history, admission) and the same breakers, cool-downs and health
verdicts (it shares the engine's `Availability`). Before the first token a failing member is invisible: the next is tried, within
the route's deadline. After it, the route's `on_stream_failure` decides: `resume` hands the
partial answer to the next member (resume.py) and the caller's stream goes on; `error` sends an
explicit error chunk. An answer is only ever `end`ed after a provider's proper end marker.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.completion import Attempt, CompletionRequest, CompletionResult, ErrorKind, ResultError, Usage
from schemas.streaming import StreamChunk
from services.providers.base import ChatCall, ProviderError
from services.providers.streaming import StreamEnd, StreamError, StreamTimeouts, TextDelta
from services.runtime.config.gateway import StreamingConfig

from . import logic, resume, spans
from .engine import Engine, Plan, callers_fault

Send = Callable[[StreamChunk], Awaitable[None]]
TERMINAL = frozenset({"end", "error", "queued"})
Verdict = Literal["done", "stop", "failed"]


@dataclass
class StreamRecord:
    """What happened, for llm.attempt / llm.completed and the metrics."""

    result: CompletionResult
    attempts: list[Attempt] = field(default_factory=list)
    status_codes: list[int | None] = field(default_factory=list)
    usages: list[Usage] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    mid_stream_failures: list[str] = field(default_factory=list)  # "resumed" | "errored" | "exhausted"


class StreamWalk:
    def __init__(self, engine: Engine, request: CompletionRequest, send: Send, *,
                 streaming: StreamingConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.request = request
        self.send = send
        self.streaming = streaming
        self.clock = clock
        self.started = clock()
        self.seq = 0
        self.sent: list[str] = []  # the text the caller has received
        self.began = False  # `start` was sent
        self.resumed = 0
        self.final: StreamChunk | None = None  # the end, error or queued chunk, for the edge to send
        self.record = StreamRecord(CompletionResult(request_id=request.request_id, status="error"))
        self.plan: Plan  # set by run(), from the engine's prepare step

    # --- the walk -----------------------------------------------------------------------------

    async def run(self) -> StreamRecord:
        engine, request = self.engine, self.request
        plan = await engine.prepare(request, self.started)  # the same decisions as llm.complete
        if isinstance(plan, CompletionResult):  # the maintenance answer, or why not
            if plan.status == "ok":
                await self._whole(plan)
            else:
                await self._fail(plan.error or ResultError(kind=ErrorKind.EXHAUSTED, message="refused"))
            return self.record
        self.plan = plan
        try:
            await self._walk(plan.members)
        finally:  # settled whatever happens: a cancelled stream pays for what it used
            await plan.reservation.settle(sum(self.record.costs))
        if self.record.result.status == "ok" and self.record.result.tier in ("full", "degraded"):
            await engine.lower_tiers.remember(request, self.record.result)
        return self.record

    def cancelled(self) -> StreamRecord:
        """The caller went away: the record says so (the ledger still gets what was billed)."""
        self._result_error(ResultError(kind=ErrorKind.CANCELLED, message="the caller went away"))
        return self.record

    async def _walk(self, members: list[logic.Member]) -> None:
        route = self.plan.route
        deadline_ms = min(self.request.deadline_ms or route.deadline_ms, route.deadline_ms)
        deadline_at = self.started + deadline_ms / 1000
        first_token_s = (self.streaming.first_token_timeout_ms or route.attempt_timeout_ms) / 1000
        avail = self.engine.availability
        tried: set[str] = set()
        while True:
            skipped: dict[str, str] = {}
            for member in members:
                if member.key in tried:
                    continue
                now = self.clock()
                # The deadline bounds the wait for the first token; a resumed answer is not cut off.
                budget = first_token_s if self.sent else min(first_token_s, deadline_at - now)
                if budget <= 0:
                    await self._exhausted(ErrorKind.TIMEOUT, f"deadline of {deadline_ms} ms reached")
                    return
                refusal = avail.refusal(member.provider, member.key, now)
                if refusal is not None:
                    skipped[member.key] = refusal
                    continue
                tried.add(member.key)
                if await self._attempt(member, budget, route.on_stream_failure) != "failed":
                    return
            due = avail.due_back([(m.provider, m.key) for m in members if m.key in skipped],
                                 self.clock())
            if route.when_all_cooling != "wait" or due is None:
                break
            wait = max(due - self.clock(), 0.05)
            limit = self.streaming.inter_token_timeout_ms / 1000 if self.sent else deadline_at - self.clock()
            if wait >= limit:
                break
            await asyncio.sleep(wait)
        tried_text = "; ".join(f"{a.provider}/{a.model}: {a.outcome}" for a in self.record.attempts)
        await self._exhausted(ErrorKind.EXHAUSTED, "no provider could answer: "
                              + "; ".join(filter(None, [tried_text, *skipped.values()])))

    async def _attempt(self, member: logic.Member, first_token_s: float, policy: str) -> Verdict:
        provider = self.engine.providers[member.provider]
        messages = [m.model_dump() for m in self.plan.messages]  # with the session's history
        resuming = bool(self.sent)
        if resuming:
            messages = resume.resume_messages(messages, "".join(self.sent), provider.spec.kind)
        call = ChatCall(model=member.model, messages=messages, temperature=self.request.temperature,
                        max_tokens=resume.remaining_max_tokens(self.request.max_tokens, len(self.sent)))
        timeouts = StreamTimeouts(first_token=first_token_s,
                                  idle=self.streaming.inter_token_timeout_ms / 1000,
                                  total=self.streaming.max_stream_ms / 1000)
        t0 = self.clock()
        first_at: float | None = None
        end: StreamEnd | None = None
        avail = self.engine.availability
        try:
            with spans.provider_call(self.engine.tracer, member, request_id=self.request.request_id,
                                     route=self.request.route, streamed=True) as span:
                try:
                    async with aclosing(provider.stream(call, timeouts=timeouts)) as events:  # type: ignore[attr-defined]
                        async for event in events:
                            if isinstance(event, TextDelta):
                                text = event.text
                                if first_at is None:  # this member's first text
                                    first_at = self.clock()
                                    if resuming:
                                        self.resumed += 1
                                        text = resume.seam("".join(self.sent[-1:]), text)
                                await self._text(member, text)
                            else:
                                end = event
                except ProviderError as e:
                    spans.failed(span, e)
                    raise
        except ProviderError as e:
            now = self.clock()
            avail.record(member.provider, member.key, now, duration_s=(first_at or now) - t0, error=e)
            cut = isinstance(e, StreamError)
            self._attempted(member, e.kind, now - t0, e.status_code, e.message, resume.billed_for_a_cut_call(
                messages, input_tokens=e.input_tokens if cut else 0, deltas=e.deltas if cut else 0))
            if not self.sent:
                if callers_fault(e):
                    await self._fail(ResultError(kind=e.kind, message=e.message))
                    return "stop"
                return "failed"
            failed = f"{member.key} failed mid-answer ({e.kind}: {e.message})"
            if policy == "error":
                self.record.mid_stream_failures.append("errored")
                await self._error(ResultError(kind=e.kind, message=failed))
                return "stop"
            self.record.mid_stream_failures.append("resumed")
            return "failed"
        except BaseException:
            avail.cancelled(member.key)
            raise
        assert end is not None  # a stream only returns after its end marker (providers/streaming.py)
        now = self.clock()
        avail.record(member.provider, member.key, now, duration_s=(first_at or now) - t0, error=None)
        self._attempted(member, "ok", now - t0, 200, None,
                        Usage(input_tokens=end.input_tokens, output_tokens=end.output_tokens))
        if not self.began:  # an empty answer is still an answer
            await self._start(member)
        self._result_ok(member)
        await self._emit("end", finish_reason=end.finish_reason, usage=self.record.result.usage,
                         cost_usd=self.record.result.cost_usd, latency_ms=self.record.result.latency_ms,
                         resumed=self.resumed, **self._who(member))
        return "done"

    # --- what the caller receives -------------------------------------------------------------

    async def _emit(self, type: str, **fields: Any) -> None:
        chunk = StreamChunk(request_id=self.request.request_id, seq=self.seq, type=type, **fields)  # type: ignore[arg-type]
        self.seq += 1
        if type in TERMINAL:  # sent by the edge once the events are stored, as for llm.complete
            self.final = chunk
            return
        await self.send(chunk)

    def _who(self, member: logic.Member) -> dict[str, Any]:
        return {"tier": logic.tier_for(member.depth, downgraded=self.plan.downgraded),
                "provider": member.provider,
                "model": member.model, "fallback_depth": member.depth}

    async def _start(self, member: logic.Member) -> None:
        self.began = True
        await self._emit("start", ttft_ms=_ms(self.clock() - self.started), **self._who(member))

    async def _text(self, member: logic.Member, text: str) -> None:
        if not self.began:
            await self._start(member)
        if text:
            self.sent.append(text)
            await self._emit("delta", text=text)

    async def _whole(self, result: CompletionResult) -> None:
        """An answer that is not streamed by a provider (maintenance, a lower tier): in one go."""
        self.record.result = result
        result.latency_ms = _ms(self.clock() - self.started)
        who = {"tier": result.tier, "provider": result.provider, "model": result.model,
               "fallback_depth": result.fallback_depth, "cached": result.cached}
        self.began = True
        await self._emit("start", ttft_ms=result.latency_ms, **who)
        if result.content:
            self.sent.append(result.content)
            await self._emit("delta", text=result.content)
        await self._emit("end", finish_reason="stop", usage=result.usage, cost_usd=result.cost_usd,
                         latency_ms=result.latency_ms, **who)

    async def _exhausted(self, kind: ErrorKind, message: str) -> None:
        error = ResultError(kind=kind, message=message)
        if self.sent:
            self.record.mid_stream_failures.append("exhausted")
            await self._error(error)
            return
        self._result_error(error)
        # Nothing sent yet: the lower tiers answer as a stream of one delta (cache, FAQ, the
        # maintenance message), or a `queued` chunk with the ticket, as llm.complete would.
        lower = await self.engine.lower_tier(self.request, self.record.result)
        if lower is None:
            await self._error(error)
            return
        lower.cost_usd += sum(self.record.costs)  # what the failed attempts were billed
        lower.attempts = self.record.attempts
        if lower.status == "queued":
            self.record.result = lower
            await self._emit("queued", ticket=lower.ticket or self.request.request_id, tier=lower.tier)
        elif lower.status == "ok":
            await self._whole(lower)
        else:
            await self._fail(lower.error or error)

    async def _fail(self, error: ResultError) -> None:
        """Nothing was sent: the whole request failed (also before any provider was called)."""
        self._result_error(error)
        await self._error(error)

    async def _error(self, error: ResultError) -> None:
        self._result_error(error)
        await self._emit("error", error=error, partial=bool(self.sent), resumed=self.resumed,
                         latency_ms=self.record.result.latency_ms)

    # --- the record ---------------------------------------------------------------------------

    def _attempted(self, member: logic.Member, outcome: Any, seconds: float, code: int | None,
                   error: str | None, usage: Usage) -> None:
        r = self.record
        r.attempts.append(Attempt(provider=member.provider, model=member.model, outcome=outcome,
                                  latency_ms=_ms(seconds), error=error))
        r.status_codes.append(code)
        r.usages.append(usage)
        r.costs.append(logic.cost_usd(member.prices, usage))

    def _totals(self) -> tuple[Usage, float]:
        usage = Usage(input_tokens=sum(u.input_tokens for u in self.record.usages),
                      output_tokens=sum(u.output_tokens for u in self.record.usages))
        return usage, sum(self.record.costs)

    def _result_ok(self, member: logic.Member) -> None:
        usage, cost = self._totals()
        self.record.result = CompletionResult(
            request_id=self.request.request_id, status="ok", content="".join(self.sent),
            usage=usage, cost_usd=cost, attempts=self.record.attempts,
            latency_ms=_ms(self.clock() - self.started), **self._who(member))

    def _result_error(self, error: ResultError) -> None:
        usage, cost = self._totals()
        self.record.result = CompletionResult(
            request_id=self.request.request_id, status="error", error=error,
            content="".join(self.sent) or None, usage=usage, cost_usd=cost,
            attempts=self.record.attempts, latency_ms=_ms(self.clock() - self.started))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
