"""The kill switch: engaged, every answer is the maintenance message within a second and no
provider is called; released, models answer again."""

from typing import ClassVar

from schemas import subjects
from schemas.control import Killswitch, killswitch_key
from schemas.streams import CONTROL

from .. import measure
from ..context import DrillContext
from ..timeline import Answer
from ..verdict import Check
from .base import Outcome, common, tiers


def maintenance(a: Answer) -> bool:
    """The maintenance message: tier emergency, no model (the engine answers it itself under the
    kill switch, the lower tiers say `answered_by: maintenance`)."""
    return a.status == "ok" and a.tier == "emergency" and a.provider is None


class KillSwitch:
    name: ClassVar[str] = "killswitch"
    summary: ClassVar[str] = "engage the kill switch under traffic, then release it"
    runbook: ClassVar[str] = "security-breach.md"

    async def run(self, ctx: DrillContext) -> None:
        key = killswitch_key("all")  # the runner refuses to start while it is engaged already
        ctx.traffic()
        await ctx.hold(ctx.warmup)

        async def release() -> None:
            switch = Killswitch(engaged=False, reason=f"drill {ctx.drill_id} over", actor=ctx.actor)
            await ctx.bus.kv_put(CONTROL.name, key, switch.model_dump_json().encode())
        ctx.cleanups.append(release)  # a drill that breaks off never leaves the switch engaged
        ctx.mark("fault")
        switch = Killswitch(engaged=True, reason=f"drill {ctx.drill_id}", actor=ctx.actor)
        await ctx.bus.kv_put(CONTROL.name, key, switch.model_dump_json().encode())
        await ctx.hold(ctx.duration)
        await release()
        ctx.cleanups.remove(release)
        ctx.mark("cleared")
        await ctx.hold(min(ctx.recovery_timeout, max(2.0, ctx.warmup)))
        await ctx.stop_traffic()

    def measure(self, ctx: DrillContext) -> Outcome:
        tl = ctx.timeline
        engaged, released = tl.marks["fault"], tl.marks["cleared"]
        on = [a for a in tl.answers if engaged <= a.sent < released]
        engage_s = measure.rto(on, engaged, maintenance)
        settled = [a for a in on if engage_s is not None and a.sent >= engaged + engage_s]
        figures = {
            **common(ctx),
            "engage_s": engage_s,
            "announced_s": measure.detection(tl, subjects.KILLSWITCH_ENGAGED, engaged),
            "maintenance_answers": measure.count(on, maintenance),
            "provider_answers_after_engage": measure.count(settled, lambda a: a.model_answered),
            # Service is back when models answer again after the release.
            "rto_s": measure.rto(tl.answers, released, lambda a: a.model_answered),
        }
        checks = {"no_provider_call_while_engaged": Check(
            figures["provider_answers_after_engage"] == 0,
            f"{figures['provider_answers_after_engage']} model answers after the switch took hold")}
        return Outcome(figures, checks, tiers(ctx))
