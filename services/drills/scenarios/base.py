"""What every scenario is, and the steps most of them share."""

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from schemas import subjects

from .. import measure
from ..context import DrillContext
from ..timeline import Timeline
from ..verdict import Check


@dataclass
class Outcome:
    figures: dict[str, Any]  # scalars: judged, published on drill.finished, shown on the status page
    checks: dict[str, Check] = field(default_factory=dict)  # the scenario's own promises
    details: dict[str, Any] = field(default_factory=dict)  # series and lists, for the report only


class Scenario(Protocol):
    name: ClassVar[str]
    summary: ClassVar[str]  # one line: what breaks
    runbook: ClassVar[str]  # docs/runbooks/<file> this drill exercises

    async def run(self, ctx: DrillContext) -> None:
        """Inject, drive, restore: fill ctx.timeline (marks, answers) and ctx.facts."""

    def measure(self, ctx: DrillContext) -> Outcome:
        """The figures, from ctx.timeline and ctx.facts only."""


def common(ctx: DrillContext, *, excluded_kinds: tuple[str, ...] = (),
           disaster: str = "fault") -> dict[str, Any]:
    """Figures every drill reports: traffic, client-visible errors, records lost (RPO)."""
    tl = ctx.timeline
    stored = ctx.facts.get("stored_ids", set())
    unrecorded = measure.unrecorded(tl.answers, stored)
    lost_times = [a.done or a.sent for a in unrecorded] + list(ctx.facts.get("lost_times", []))
    return {
        "requests": len(tl.answers),
        "answered": measure.count(tl.answers, lambda a: a.status == "ok"),
        "errors": measure.caller_errors(tl.answers, excluded_kinds=excluded_kinds),
        "unrecorded": len(unrecorded),
        "lost": len(lost_times),
        "rpo_s": measure.rpo(lost_times, tl.marks.get(disaster, 0.0)),
    }


def tiers(ctx: DrillContext) -> dict[str, Any]:
    """The tier timeline: as the callers saw it, and as the routers announced it (tier.changed)."""
    tl = ctx.timeline
    announced = [(round(e.t, 3), e.body.get("to_tier")) for e in tl.events
                 if e.subject == subjects.TIER_CHANGED and e.body.get("route") == tl.route]
    return {"tier_timeline": measure.tier_changes(tl.answers, ctx.bin_s),
            "tier_changed_events": announced}


async def wait_for_return(ctx: DrillContext, provider: str) -> None:
    """After the fault cleared: until the primary has every model answer again (or the timeout)."""
    cleared = ctx.timeline.marks["cleared"]
    while ctx.now() - cleared < ctx.recovery_timeout:
        # Only bins that are over: the current one is still filling.
        complete = cleared + (ctx.now() - cleared) // ctx.bin_s * ctx.bin_s
        done = [a for a in ctx.answers() if a.done is not None and a.done < complete]
        if measure.primary_return(done, provider, cleared, ctx.bin_s)["full_return_s"] is not None:
            await ctx.hold(ctx.bin_s)  # one more bin of steady traffic for the record
            return
        await ctx.hold(ctx.bin_s / 2)
    ctx.note(f"{provider} did not have all traffic back within {ctx.recovery_timeout:g}s")


async def fault_window(ctx: DrillContext, providers: list[str], mode: str, reason: str,
                       **settings: Any) -> None:
    """Warm up, break `providers`, hold the fault for the drill's duration, mend them."""
    await ctx.hold(ctx.warmup)
    ctx.mark("fault")
    for provider in providers:
        how = await ctx.faults.inject(provider, mode, reason, **settings)
        ctx.note(f"{provider}: {how}")
    await ctx.hold(ctx.duration)
    await ctx.faults.restore_all()
    ctx.mark("cleared")


def return_figures(ctx: DrillContext, provider: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """How the primary came back: figures, and the share series for the report."""
    tl = ctx.timeline
    back = measure.primary_return(tl.answers, provider, tl.marks["cleared"], ctx.bin_s)
    figures = {k: back[k] for k in ("recovery_s", "full_return_s", "gradual", "ramp_bins")}
    return figures, {"primary_share_after_clear": back["shares"]}


def return_checks(ctx: DrillContext, figures: dict[str, Any], *, gradual: bool) -> dict[str, Check]:
    checks = {"primary_returned": Check(
        figures["full_return_s"] is not None,
        "the primary had every answer again" if figures["full_return_s"] is not None
        else f"not within {ctx.recovery_timeout:g}s of the fault clearing")}
    if gradual and ctx.config.breaker.slow_start_ms > 0:
        checks["returned_gradually"] = Check(
            bool(figures["gradual"]),
            f"share ramped over {figures['ramp_bins']} bins of {ctx.bin_s:g}s "
            f"(breaker.slow_start_ms {ctx.config.breaker.slow_start_ms})")
    return checks


def down_event(tl: Timeline, provider: str, after: float) -> float | None:
    return measure.detection(tl, subjects.PROVIDER_DOWN, after, provider=provider)
