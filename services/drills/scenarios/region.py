"""Every provider of one region goes down: traffic moves to the other region, except requests
pinned to the failed region, which degrade (cache, FAQ, maintenance) rather than cross."""

from typing import ClassVar

from schemas import subjects

from .. import measure
from ..bus import DrillError
from ..context import DrillContext
from ..traffic import Ask
from ..verdict import Check
from .base import (
    Outcome,
    common,
    fault_window,
    return_checks,
    return_figures,
    tiers,
    wait_for_return,
)

PIN_EVERY = 4  # one request in four is pinned to the failing region (request.region)


class RegionOutage:
    name: ClassVar[str] = "region-outage"
    summary: ClassVar[str] = "every provider of one region goes down"
    runbook: ClassVar[str] = "region-failure.md"

    def region(self, ctx: DrillContext) -> str:
        return ctx.options.region or ctx.region_of(ctx.primary)

    def failing(self, ctx: DrillContext) -> list[str]:
        region = self.region(ctx)
        providers = [p for p, c in ctx.config.providers.items() if c.region == region]
        if not providers:
            known = sorted({c.region for c in ctx.config.providers.values()})
            raise DrillError(f"no provider in region {region!r} (regions: {', '.join(known)})")
        return providers

    async def run(self, ctx: DrillContext) -> None:
        region, failing = self.region(ctx), self.failing(ctx)
        for provider in failing:
            ctx.faults.how(provider, "down")  # refuses early if it cannot be done safely
        ctx.facts["failing"] = failing

        def ask(n: int) -> Ask:
            pinned = region if n % PIN_EVERY == PIN_EVERY - 1 else None
            return Ask([{"role": "user", "content": "Summarise the drill status in one sentence."}],
                       region=pinned)
        ctx.traffic(ask)
        await fault_window(ctx, failing, "down", f"drill: region {region} outage")
        await wait_for_return(ctx, ctx.primary)
        await ctx.stop_traffic()

    def measure(self, ctx: DrillContext) -> Outcome:
        tl, region = ctx.timeline, self.region(ctx)
        fault, cleared = tl.marks["fault"], tl.marks["cleared"]
        failing = set(ctx.facts.get("failing", []))
        unpinned = [a for a in tl.answers if a.region is None]
        pinned = [a for a in tl.answers if a.region == region]
        pinned_during = [a for a in pinned if fault <= a.sent < cleared]
        crossed = [a for a in pinned if a.model_answered and ctx.region_of(a.provider or "") != region]
        degraded = [a for a in pinned_during if a.status == "ok" and not a.model_answered]
        moved = [a for a in unpinned if fault <= a.sent < cleared and a.model_answered]
        downs = [measure.detection(tl, subjects.PROVIDER_DOWN, fault, provider=p) for p in failing]
        simulated = all(ctx.faults.how(p, "down") != "fault switch" for p in failing)
        back, series = return_figures(ctx, ctx.primary)
        figures = {
            **common(ctx),
            "region": region,
            "detection_s": max(downs) if simulated and downs and None not in downs else None,
            "failover_s": measure.failover(unpinned, fault, ctx.primary) if unpinned else None,
            "rto_s": measure.rto(unpinned, fault, lambda a: a.model_answered),
            "other_region_share": round(sum(a.provider not in failing for a in moved) / len(moved), 3)
            if moved else None,
            "pinned_during": len(pinned_during),
            "pinned_degraded": len(degraded),
            "pinned_crossed": len(crossed),
            **back,
        }
        checks = {
            "pinned_never_crossed": Check(not crossed, f"{len(crossed)} pinned requests answered "
                                          f"outside {region}"),
            "pinned_degraded": Check(bool(pinned_during) and len(degraded) == len(pinned_during),
                                     f"{len(degraded)} of {len(pinned_during)} pinned requests during "
                                     "the outage answered by the lower tiers"),
        }
        checks.update(return_checks(ctx, figures, gradual=False))
        return Outcome(figures, checks, {**tiers(ctx), **series})
