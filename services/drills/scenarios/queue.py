"""Every provider of the route goes down: the queue-and-retry tier parks what may wait, the lower
tiers answer the rest, and when the providers return every parked request is answered."""

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import ClassVar

from schemas import subjects
from schemas.streams import LLM_RESULTS

from .. import measure
from ..context import DrillContext
from ..traffic import Ask
from ..verdict import Check
from .base import Outcome, common, tiers

QUEUE_EVERY = 3  # two requests in three allow parking (allow_queue), one does not


def parkable(drill_id: str) -> Callable[[int], Ask]:
    """A question of its own per request (and per drill): no cached answer or FAQ entry may
    answer it, so that it really waits for a provider."""
    def ask(n: int) -> Ask:
        return Ask([{"role": "user", "content": f"Drill {drill_id}, request {n}: spell the "
                     f"number {n} in words."}], allow_queue=n % QUEUE_EVERY != 0)
    return ask


class AllProvidersDown:
    name: ClassVar[str] = "all-providers-down"
    summary: ClassVar[str] = "every provider of the route goes down; requests park and drain"
    runbook: ClassVar[str] = "provider-outage.md"

    async def run(self, ctx: DrillContext) -> None:
        providers = ctx.chain_providers
        for provider in providers:
            ctx.faults.how(provider, "down")
        ctx.traffic(parkable(ctx.drill_id))
        await ctx.hold(ctx.warmup)
        ctx.mark("fault")
        for provider in providers:
            ctx.note(f"{provider}: {await ctx.faults.inject(provider, 'down', 'drill: all providers down')}")
        await ctx.hold(ctx.duration)
        await ctx.stop_traffic()  # the parked requests must all be in before the drain is judged
        await ctx.faults.restore_all()
        ctx.mark("cleared")
        ctx.facts["results"] = await self.results(ctx)
        ctx.mark("drained")

    async def results(self, ctx: DrillContext) -> dict[str, tuple[float, str]]:
        """ticket -> (when its result was stored, its status or error kind), per parked request."""
        waiting = {a.ticket for a in ctx.timeline.answers if a.status == "queued" and a.ticket}
        found: dict[str, tuple[float, str]] = {}
        cleared = ctx.timeline.marks["cleared"]
        while waiting and ctx.now() - cleared < ctx.recovery_timeout:
            for ticket in list(waiting):
                result = await ctx.bus.last_on(LLM_RESULTS.name, subjects.llm_result(ticket))
                if result is not None:
                    body = result.body
                    found[ticket] = (result.t, (body.get("error") or {}).get("kind")
                                     or body.get("status", "?"))
                    waiting.discard(ticket)
            if waiting:
                await asyncio.sleep(0.5)
        if waiting:
            ctx.note(f"{len(waiting)} parked requests had no result {ctx.recovery_timeout:g}s after "
                     "the providers returned")
        return found

    def measure(self, ctx: DrillContext) -> Outcome:
        tl = ctx.timeline
        fault, cleared = tl.marks["fault"], tl.marks["cleared"]
        results = ctx.facts.get("results", {})
        parked = [a for a in tl.answers if a.status == "queued"]
        lost = [a for a in parked if a.ticket not in results]
        ctx.facts["lost_times"] = [a.sent for a in lost]
        times = sorted(t for t, _ in results.values())
        during = [a for a in tl.answers if fault <= a.sent < cleared]
        downs = [measure.detection(tl, subjects.PROVIDER_DOWN, fault, provider=p)
                 for p in ctx.chain_providers]
        drained = measure.since(times[-1], cleared) if times and not lost else None
        figures = {
            **common(ctx),
            "detection_s": max(downs) if downs and None not in downs else None,
            "parked": len(parked),
            "results": len(results),
            "results_ok": sum(1 for _, status in results.values() if status == "ok"),
            "first_result_s": measure.since(times[0], cleared) if times else None,
            "drain_s": drained,
            # Service is back when the work that waited has its answers.
            "rto_s": drained,
            "lower_tier_answers": measure.count(during, lambda a: a.status == "ok"
                                                and not a.model_answered),
            "model_answers_during": measure.count(
                during, lambda a: a.model_answered and (a.done or 0) > fault + 1.0),
        }
        checks = {
            "requests_parked": Check(bool(parked), f"{len(parked)} parked with allow_queue"),
            "none_lost": Check(not lost, f"{len(lost)} parked requests without a result"),
            "every_result_ok": Check(figures["results_ok"] == len(parked),
                                     f"{figures['results_ok']} of {len(parked)} answered ok"),
        }
        return Outcome(figures, checks, {**tiers(ctx), "results_by_status": dict(
            Counter(status for _, status in results.values()))})
