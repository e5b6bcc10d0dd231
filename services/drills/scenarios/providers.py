"""One provider misbehaves: it is down, it rate-limits, it crawls, it answers wrong."""

from typing import ClassVar

from schemas import subjects
from schemas.control import ProviderFault, fault_key
from schemas.streams import CONTROL

from .. import measure
from ..context import DrillContext
from ..timeline import Answer
from ..traffic import Ask
from ..verdict import Check
from .base import (
    Outcome,
    common,
    down_event,
    fault_window,
    return_checks,
    return_figures,
    tiers,
    wait_for_return,
)


class ProviderOutage:
    name: ClassVar[str] = "provider-outage"
    summary: ClassVar[str] = "the route's primary provider goes down (HTTP 503), then comes back"
    runbook: ClassVar[str] = "provider-outage.md"

    async def run(self, ctx: DrillContext) -> None:
        ctx.traffic()
        await fault_window(ctx, [ctx.primary], "down", f"drill {ctx.drill_id}: provider outage")
        await wait_for_return(ctx, ctx.primary)
        await ctx.stop_traffic()

    def measure(self, ctx: DrillContext) -> Outcome:
        tl, primary = ctx.timeline, ctx.primary
        fault, cleared = tl.marks["fault"], tl.marks["cleared"]
        via_switch = ctx.faults.how(primary, "down") == "fault switch"
        back, series = return_figures(ctx, primary)
        figures = {
            **common(ctx),
            # The fault switch breaks nothing at the vendor: no monitor can see it, the routers obey it.
            "detection_s": None if via_switch else down_event(tl, primary, fault),
            "failover_s": measure.failover(tl.answers, fault, primary),
            "rto_s": measure.rto(tl.answers, fault, lambda a: a.model_answered),
            "up_event_s": measure.detection(tl, subjects.PROVIDER_UP, cleared, provider=primary),
            **back,
        }
        checks = return_checks(ctx, figures, gradual=True)
        if not via_switch:
            checks["detected"] = Check(figures["detection_s"] is not None,
                                       f"provider.down for {primary}")
        return Outcome(figures, checks, {**tiers(ctx), **series})


class RateLimitStorm:
    name: ClassVar[str] = "rate-limit-storm"
    summary: ClassVar[str] = "the primary answers 429 with Retry-After to every call"
    runbook: ClassVar[str] = "rate-limiting.md"
    retry_after_s: ClassVar[int] = 2

    async def run(self, ctx: DrillContext) -> None:
        ctx.facts["routers"] = len((await ctx.bus.instances(ctx.settings.heartbeat_interval + 0.5))
                                   .get("router", set())) or 1
        ctx.traffic()
        await fault_window(ctx, [ctx.primary], "ratelimit", "drill: rate-limit storm",
                           retry_after_s=self.retry_after_s)
        await wait_for_return(ctx, ctx.primary)
        await ctx.stop_traffic()

    def measure(self, ctx: DrillContext) -> Outcome:
        tl, primary = ctx.timeline, ctx.primary
        fault, cleared = tl.marks["fault"], tl.marks["cleared"]
        calls = [e for e in ctx.facts.get("attempts", [])
                 if e.body.get("provider") == primary and fault <= e.t < cleared]
        routers = ctx.facts.get("routers", 1)
        # Each router calls again only when the Retry-After has passed: one call per window each,
        # plus the calls already on their way when the first 429 came back.
        bound = routers * (int((cleared - fault) / self.retry_after_s) + 2) + 2
        during = [a for a in tl.answers if fault <= a.sent < cleared and a.model_answered]
        back, series = return_figures(ctx, primary)
        figures = {
            **common(ctx),
            "detection_s": measure.detection(tl, subjects.PROVIDER_DEGRADED, fault, provider=primary),
            "failover_s": measure.failover(tl.answers, fault, primary),
            "rto_s": measure.rto(tl.answers, fault, lambda a: a.model_answered),
            "primary_calls_during": len(calls),
            "primary_calls_bound": bound,
            "fallback_share_during": round(sum(a.provider != primary for a in during)
                                           / len(during), 3) if during else None,
            **back,
        }
        checks = {"retry_after_respected": Check(
            len(calls) <= bound, f"{len(calls)} calls to {primary} in {cleared - fault:.1f}s "
            f"with Retry-After {self.retry_after_s}s and {routers} router(s)")}
        checks.update(return_checks(ctx, figures, gradual=False))
        return Outcome(figures, checks, {**tiers(ctx), **series})


class LatencySpike:
    name: ClassVar[str] = "latency-spike"
    summary: ClassVar[str] = "the primary takes 10 s to answer"
    runbook: ClassVar[str] = "provider-outage.md"
    latency_ms: ClassVar[int] = 10_000

    async def run(self, ctx: DrillContext) -> None:
        ctx.traffic()
        await fault_window(ctx, [ctx.primary], "slow", "drill: latency spike",
                           latency_ms=self.latency_ms)
        await wait_for_return(ctx, ctx.primary)
        await ctx.stop_traffic()

    def measure(self, ctx: DrillContext) -> Outcome:
        tl, primary = ctx.timeline, ctx.primary
        fault, cleared = tl.marks["fault"], tl.marks["cleared"]
        before = measure.latency(tl.answers, 0.0, fault)
        # "Served" = answered about as fast as before the spike (3x the p95, at least 1 s).
        slo_ms = max(1000.0, 3 * (before["p95_ms"] or 0.0))
        detected = [t for t in (down_event(tl, primary, fault), measure.detection(
            tl, subjects.PROVIDER_DEGRADED, fault, provider=primary)) if t is not None]
        back, series = return_figures(ctx, primary)
        during = measure.latency(tl.answers, fault, cleared)
        figures = {
            **common(ctx),
            "detection_s": min(detected) if detected else None,
            "failover_s": measure.failover(tl.answers, fault, primary),
            "rto_s": measure.rto(tl.answers, fault, lambda a: a.model_answered
                                 and (a.latency_ms or 0) <= slo_ms),
            "latency_slo_ms": slo_ms,
            "p95_before_ms": before["p95_ms"],
            "p95_during_ms": during["p95_ms"],
            "max_during_ms": during["max_ms"],
            "slow_answers": measure.count(tl.answers, lambda a: a.status == "ok"
                                          and (a.latency_ms or 0) > slo_ms),
            **back,
        }
        return Outcome(figures, return_checks(ctx, figures, gradual=True), {**tiers(ctx), **series})


def arithmetic(n: int) -> Ask:
    """A question whose right answer is known: the simulator sums, a `wrong` vendor does not."""
    a, b = 10 + n % 50, 7 + n % 13
    return Ask([{"role": "user", "content": f"What is {a} + {b}? Reply with the number only."}],
               check=lambda content: str(a + b) in content)


class QualityDrop:
    name: ClassVar[str] = "quality-drop"
    summary: ClassVar[str] = "the primary answers 200 with wrong content; only the canaries can tell"
    runbook: ClassVar[str] = "model-quality-regression.md"

    async def run(self, ctx: DrillContext) -> None:
        primary = ctx.primary
        ctx.faults.how(primary, "wrong")  # refuses early if it cannot be done safely
        ctx.traffic(arithmetic)
        await ctx.hold(ctx.warmup)
        fault = ctx.mark("fault")
        await ctx.faults.inject(primary, "wrong", "drill: quality drop")
        seen = await ctx.bus.wait_status(
            subjects.PROVIDER_DEGRADED, ctx.duration, after=fault,
            where=lambda e: e.body.get("provider") == primary and e.body.get("reason") == "quality")
        if seen is not None and ctx.options.respond:
            # The runbook's first step, as on-call would take it: out of rotation by the fault switch.
            switch = ProviderFault(active=True, reason="quality regression (drill response)",
                                   actor=ctx.actor)
            await ctx.bus.kv_put(CONTROL.name, fault_key(primary), switch.model_dump_json().encode())
            ctx.cleanups.append(lambda: ctx.bus.kv_delete(CONTROL.name, fault_key(primary)))
            ctx.mark("responded")
            ctx.note(f"response: lifeline fault set {primary} (took it out of rotation)")
        await ctx.hold(fault + ctx.duration - ctx.now())
        await ctx.faults.restore_all()
        if "responded" in ctx.timeline.marks:
            await ctx.bus.kv_delete(CONTROL.name, fault_key(primary))
        ctx.mark("cleared")
        await wait_for_return(ctx, primary)
        await ctx.stop_traffic()

    def measure(self, ctx: DrillContext) -> Outcome:
        tl, primary = ctx.timeline, ctx.primary
        fault = tl.marks["fault"]
        responded = tl.marks.get("responded")
        wrong = [a for a in tl.answers if a.right is False]
        # The routers obey the control KV within milliseconds; a request already on its way may
        # still have reached the primary.
        late = [a for a in wrong if responded is not None and a.sent >= responded + 0.5]
        back, series = return_figures(ctx, primary)
        figures = {
            **common(ctx),
            "detection_s": measure.detection(tl, subjects.PROVIDER_DEGRADED, fault,
                                             provider=primary, reason="quality"),
            "responded_s": measure.since(responded, fault),
            "rto_s": measure.rto(tl.answers, fault, _right),
            "wrong_answers": len(wrong),
            "wrong_after_response": len(late),
            **back,
        }
        checks = {"detected": Check(figures["detection_s"] is not None,
                                    "provider.degraded reason quality (health.canary.interval_s "
                                    f"{ctx.config.health.canary.interval_s:g}s)")}
        if responded is not None:
            checks["no_wrong_answers_after_response"] = Check(not late, f"{len(late)} wrong")
        checks.update(return_checks(ctx, figures, gradual=True))
        return Outcome(figures, checks, {**tiers(ctx), **series, "wrong_answer_times": [
            round(a.sent, 3) for a in wrong][:200]})


def _right(a: Answer) -> bool:
    return a.status == "ok" and a.right is True
