"""One drill from start to finish: preflight, drill.started, the scenario, mending, what the bus
stored, the figures, the verdict, the report, drill.finished."""

import getpass
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import NoKeysError

from schemas import subjects
from schemas.control import FAULT_PREFIX, KILLSWITCH_KEY, Killswitch
from schemas.events import DrillFinished, DrillStarted
from schemas.streams import CONTROL, LLM_EVENTS, STATUS
from services.runtime.config import LifelineConfig
from services.runtime.settings import Settings

from . import measure, plot, report
from .bus import DrillBus, DrillError
from .context import DrillContext, DrillOptions
from .faults import ProviderFaults
from .scenarios import SCENARIOS, Outcome
from .timeline import Timeline
from .verdict import Verdict, judge


@dataclass
class DrillResult:
    drill_id: str
    scenario: str
    passed: bool
    figures: dict[str, Any]
    targets: dict[str, Any]
    verdicts: list[Verdict]
    details: dict[str, Any]
    timeline: Timeline
    started_at: datetime
    finished_at: datetime
    report_dir: Path | None = None
    files: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "drill_id": self.drill_id, "scenario": self.scenario, "passed": self.passed,
            "started_at": self.started_at.isoformat(), "finished_at": self.finished_at.isoformat(),
            "figures": self.figures, "targets": self.targets,
            "verdicts": [v.as_dict() for v in self.verdicts],
            "marks": self.timeline.marks, "notes": self.timeline.notes, "details": self.details,
            "report": self.files,
        }


async def run_drill(name: str, *, settings: Settings, config: LifelineConfig,
                    options: DrillOptions, destructive_ok: bool = False) -> DrillResult:
    if name not in SCENARIOS:
        raise DrillError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})")
    scenario = SCENARIOS[name]()
    drill_id = uuid.uuid4().hex[:10]
    started = datetime.now(UTC)
    bus = await DrillBus.connect(settings.nats_url, started.timestamp())
    actor = f"drill:{getpass.getuser()}@{socket.gethostname()}"
    ctx = DrillContext(
        drill_id=drill_id, scenario=name, settings=settings, config=config, options=options,
        bus=bus, actor=actor, timeline=Timeline(t0=started.timestamp(), route="", primary=""),
        faults=ProviderFaults(bus, simulator_url=settings.simulator_url,
                              simulated=set(config.simulated(os.environ)), via=options.via,
                              actor=actor),
    )
    try:
        ctx.timeline.route, ctx.timeline.primary = ctx.route_name, ctx.primary
    except DrillError:
        await bus.close()
        raise
    ctx.facts["destructive_ok"] = destructive_ok
    source = f"lifeline-drill/{socket.gethostname()}"
    try:
        await preflight(ctx)
        await bus.follow_status()
        await bus.publish(subjects.DRILL_STARTED, DrillStarted(
            id=f"drill.{drill_id}.started", source=source, drill_id=drill_id, scenario=name),
            f"drill.{drill_id}.started")
        try:
            await _act(scenario, ctx)
        except DrillError as e:
            await _finish(ctx, source, passed=False, figures={"error": str(e)}, report_dir=None)
            raise
        await collect(ctx, reads_attempts=name == "rate-limit-storm")
        outcome: Outcome = scenario.measure(ctx)
        if outcome.figures.get("full_return_s") is not None:  # for the plot: the primary is back
            ctx.timeline.mark("recovered", round(ctx.timeline.marks["cleared"]
                                                 + outcome.figures["full_return_s"], 3))
        outcome.details["series"] = series(ctx.timeline, ctx.bin_s)
        target = config.drills.target(name)
        passed, verdicts = judge(outcome.figures, target, outcome.checks)
        result = DrillResult(drill_id, name, passed, outcome.figures, target.model_dump(),
                             verdicts, outcome.details, ctx.timeline, started, datetime.now(UTC))
        result.report_dir = report_dir(ctx, started)
        result.files = write(result, result.report_dir, summary=scenario.summary,
                             runbook=scenario.runbook, bin_s=ctx.bin_s)
        await _finish(ctx, source, passed=passed, figures=outcome.figures,
                      targets=target.model_dump(), report_dir=result.report_dir)
        return result
    finally:
        await bus.close()


async def _act(scenario: Any, ctx: DrillContext) -> None:
    """The scenario, and whatever happens to it, everything mended afterwards."""
    try:
        await scenario.run(ctx)
    finally:
        for traffic in ctx.traffics:
            await traffic.stop()
        await ctx.faults.restore_all()
        for cleanup in reversed(ctx.cleanups):
            await cleanup()
        await ctx.stop_traffic()  # idempotent: the timeline gets every answer


async def preflight(ctx: DrillContext) -> None:
    """A drill on a mesh that is already broken measures nothing: refuse, or wait for it to heal."""
    value, _ = await ctx.bus.kv_get(CONTROL.name, KILLSWITCH_KEY)
    if value and Killswitch.model_validate_json(value).engaged:
        raise DrillError("the kill switch is engaged: release it first (lifeline killswitch release)")
    kv = await ctx.bus.js.key_value(CONTROL.name)
    try:
        faults = [k.removeprefix(FAULT_PREFIX) for k in await kv.keys() if k.startswith(FAULT_PREFIX)]
    except NoKeysError:
        faults = []
    if faults:
        raise DrillError(f"fault switch already on for {', '.join(faults)}: "
                         f"lifeline fault clear {faults[0]}")
    providers = ctx.chain_providers
    deadline = time.monotonic() + ctx.recovery_timeout
    while True:
        down = await _down(ctx, providers)
        if down is None:
            ctx.note("no health monitor answered health.report: detection is not measured")
            return
        if not down:
            return
        if time.monotonic() > deadline:
            raise DrillError(f"{', '.join(down)} still down per the health monitor: the mesh is not "
                             "healthy enough to drill on")
        await ctx.hold(0.5)


async def _down(ctx: DrillContext, providers: list[str]) -> list[str] | None:
    try:
        msg = await ctx.bus.nc.request(subjects.HEALTH_REPORT, b"{}", timeout=3)
    except (NoRespondersError, NatsTimeout):
        return None
    report = json.loads(msg.data)
    return [p for p in providers
            if (report.get("providers", {}).get(p) or {}).get("state") == "down"]


async def collect(ctx: DrillContext, *, reads_attempts: bool) -> None:
    """What the bus stored while the drill ran: the truth the figures are computed from."""
    bus, prefix = ctx.bus, f"drill-{ctx.drill_id}-"
    ctx.timeline.events = await bus.read(STATUS.name, ">", since=0.0)
    completed = await bus.read(LLM_EVENTS.name, subjects.LLM_COMPLETED, since=0.0)
    ctx.facts["stored_ids"] = {e.body.get("request_id") for e in completed
                               if str(e.body.get("request_id", "")).startswith(prefix)}
    if reads_attempts:
        ctx.facts["attempts"] = [e for e in await bus.read(LLM_EVENTS.name, subjects.LLM_ATTEMPT, 0.0)
                                 if str(e.body.get("request_id", "")).startswith(prefix)]


def series(tl: Timeline, bin_s: float) -> dict[str, Any]:
    """Answers per second by provider and by tier, per bin: what the plot draws, as numbers."""
    starts, providers = measure.bins(tl.answers, bin_s, measure.by_provider)
    _, tiers = measure.bins(tl.answers, bin_s, measure.by_tier)
    return {"bin_s": bin_s, "t": starts, "by_provider": providers, "by_tier": tiers}


def report_dir(ctx: DrillContext, started: datetime) -> Path:
    if ctx.options.report_dir is not None:
        return ctx.options.report_dir
    root = Path(ctx.config.drills.report_dir) if ctx.config.drills.report_dir else ctx.settings.home / "drills"
    return root / f"{started:%Y%m%dT%H%M%S}-{ctx.scenario}-{ctx.drill_id}"


def write(result: DrillResult, where: Path, *, summary: str, runbook: str,
          bin_s: float) -> dict[str, str]:
    where.mkdir(parents=True, exist_ok=True)
    files = {"json": str(where / "report.json"), "markdown": str(where / "report.md"),
             "plot": str(where / "timeline.png")}
    plot.draw(result.timeline, Path(files["plot"]), title=f"{result.scenario} ({result.drill_id})",
              bin_s=bin_s)
    Path(files["json"]).write_text(json.dumps(result.as_json() | {"report": files}, indent=2,
                                              default=str) + "\n")
    Path(files["markdown"]).write_text(report.markdown(result, summary=summary, runbook=runbook))
    return files


async def _finish(ctx: DrillContext, source: str, *, passed: bool, figures: dict[str, Any],
                  targets: dict[str, Any] | None = None, report_dir: Path | None) -> None:
    scalars = {k: v for k, v in figures.items() if isinstance(v, (int, float, str, bool)) or v is None}
    event = DrillFinished(id=f"drill.{ctx.drill_id}.finished", source=source,
                          drill_id=ctx.drill_id, scenario=ctx.scenario, passed=passed,
                          figures=scalars, targets=targets or {},
                          report=str(report_dir) if report_dir else None)
    await ctx.bus.publish(subjects.DRILL_FINISHED, event, event.id)
