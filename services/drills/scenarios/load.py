"""Ten times the traffic: limits and budgets hold, spend stays under the cap.

The drill caps its own user (a run-time budget, `lifeline budget set --scope user:<drill user>`,
action block), so a game day never blocks real users: the cap is set to what half the spike
would cost, the spike must run into it, and the ledger must show no more than the cap spent.
"""

import asyncio
from typing import Any, ClassVar

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import KeyWrongLastSequenceError

from schemas import subjects
from schemas.costs import LIMITS_SPEND_KEY, SpendQuery, SpendReport
from schemas.streams import LIMITS
from services.runtime.config.budgets import RunTimeBudgets, SpendBudget

from .. import measure
from ..bus import DrillBus, DrillError
from ..context import DrillContext
from ..verdict import Check
from .base import Outcome, common, tiers

REFUSALS = ("budget_exhausted", "limited")  # the guard doing its job: not errors


class LoadSpike:
    name: ClassVar[str] = "load-spike"
    summary: ClassVar[str] = "traffic jumps tenfold; the drill user's budget must hold"
    runbook: ClassVar[str] = "budget-blowout.md"

    async def run(self, ctx: DrillContext) -> None:
        user = f"drill-{ctx.drill_id}"
        ctx.facts["user"] = user
        ctx.facts["enforced"] = ctx.config.budgets.enforced
        traffic = ctx.traffic(user_id=user)
        await ctx.hold(max(ctx.warmup, 1.0))
        costs = [a.cost_usd for a in ctx.answers() if a.model_answered]
        warm_spend = sum(a.cost_usd for a in ctx.answers())
        per_request = sum(costs) / len(costs) if costs else 0.0
        spike_rate = ctx.rate * ctx.options.spike
        if ctx.options.budget_usd is not None:
            cap = ctx.options.budget_usd
        elif per_request > 0:
            cap = warm_spend + per_request * spike_rate * ctx.duration / 2
        else:
            raise DrillError("the warm-up answers cost nothing: pass --budget-usd")
        budget = SpendBudget(scope="user", id=user, period="day", limit_usd=round(cap, 9),
                             action="block")
        await set_budget(ctx.bus, budget)
        ctx.cleanups.append(lambda: unset_budget(ctx.bus, budget.name))
        ctx.facts.update(cap_usd=budget.limit_usd, per_request_usd=per_request)
        await wait_for_budget(ctx.bus, budget.name)
        ctx.mark("fault")  # the spike starts
        traffic.rate = spike_rate
        await ctx.hold(ctx.duration)
        traffic.rate = ctx.rate
        ctx.mark("cleared")
        await ctx.hold(min(ctx.warmup, 2.0))
        await ctx.stop_traffic()
        ctx.facts["standing"] = await settled_standing(ctx.bus, budget.name,
                                                      sum(a.cost_usd for a in ctx.answers()))

    def measure(self, ctx: DrillContext) -> Outcome:
        tl = ctx.timeline
        fault, cleared = tl.marks["fault"], tl.marks["cleared"]
        standing = ctx.facts.get("standing") or {}
        cap = ctx.facts.get("cap_usd")
        spent = standing.get("spent_usd")
        spike = [a for a in tl.answers if fault <= a.sent < cleared]
        refused = measure.count(tl.answers, lambda a: a.error_kind == "budget_exhausted")
        figures = {
            **common(ctx, excluded_kinds=REFUSALS),
            "rto_s": measure.rto(tl.answers, fault, lambda a: a.status == "ok"
                                 or a.error_kind in REFUSALS),
            "spike_rate": round(len(spike) / (cleared - fault), 1) if cleared > fault else None,
            "refused_budget": refused,
            "refused_limit": measure.count(tl.answers, lambda a: a.error_kind == "limited"),
            "cap_usd": cap,
            "spent_usd": spent,
            "answers_cost_usd": round(sum(a.cost_usd for a in tl.answers), 9),
            "overshoot_usd": round(max(0.0, spent - cap), 9) if spent is not None and cap else None,
            "p95_before_ms": measure.latency(tl.answers, 0.0, fault)["p95_ms"],
            "p95_spike_ms": measure.latency(tl.answers, fault, cleared)["p95_ms"],
        }
        checks = {
            "budgets_enforced": Check(bool(ctx.facts.get("enforced")), "routers ask the cost guard "
                                      "only when lifeline.yaml has a budget or limit (budgets.enforced)"),
            "cap_reached": Check(refused > 0, f"{refused} requests refused by the drill user's budget"),
        }
        return Outcome(figures, checks, tiers(ctx))


async def _update(bus: DrillBus, change: Any) -> None:
    """Compare-and-set on the run-time budgets (an operator may change them at the same time)."""
    kv = await bus.js.key_value(LIMITS.name)
    for _ in range(10):
        value, revision = await bus.kv_get(LIMITS.name, LIMITS_SPEND_KEY)
        current = RunTimeBudgets.model_validate_json(value or b"{}")
        wanted = RunTimeBudgets(spend=change(current.spend))
        try:
            await kv.update(LIMITS_SPEND_KEY, wanted.model_dump_json().encode(), last=revision)
            return
        except KeyWrongLastSequenceError:
            continue
    raise DrillError("the run-time budgets kept changing under the drill")


async def set_budget(bus: DrillBus, budget: SpendBudget) -> None:
    await _update(bus, lambda spend: [b for b in spend if b.name != budget.name] + [budget])


async def unset_budget(bus: DrillBus, name: str) -> None:
    await _update(bus, lambda spend: [b for b in spend if b.name != name])


async def spend_report(bus: DrillBus) -> SpendReport:
    try:
        msg = await bus.nc.request(subjects.COST_SPEND, SpendQuery(top=1).model_dump_json().encode(),
                                   timeout=10)
    except (NoRespondersError, NatsTimeout):
        raise DrillError("no cost guard answered cost.spend; load-spike needs the cost guard") from None
    return SpendReport.model_validate_json(msg.data)


async def wait_for_budget(bus: DrillBus, name: str, within: float = 10.0) -> None:
    for _ in range(int(within / 0.2)):
        if any(b.budget == name for b in (await spend_report(bus)).budgets):
            return
        await asyncio.sleep(0.2)
    raise DrillError(f"the cost guard did not take the budget {name} within {within:g}s")


async def settled_standing(bus: DrillBus, name: str, answered_usd: float,
                           within: float = 15.0) -> dict[str, Any]:
    """The budget's standing once the ledger has every answer and nothing is in flight."""
    standing: dict[str, Any] = {}
    for _ in range(int(within / 0.25)):
        found = [b for b in (await spend_report(bus)).budgets if b.budget == name]
        if found:
            standing = found[0].model_dump(mode="json")
            # cost.spend reports micro-dollars: the ledger has them all when it is that close.
            if found[0].pending_usd == 0 and found[0].spent_usd >= answered_usd - 1e-6:
                break
        await asyncio.sleep(0.25)
    return standing
