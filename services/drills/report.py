"""The drill's report in Markdown: verdict first, then the figures, the marks, what happened."""

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runner import DrillResult

# What each figure means, in the report's words (docs/services/drills.md has the definitions).
MEANING = {
    "rto_s": "fault -> service restored for good (s)",
    "rpo_s": "data lost, back from the fault (s); 0 = nothing",
    "errors": "client-visible errors",
    "lost": "acknowledged records lost",
    "unrecorded": "answers whose llm.completed was not stored",
    "detection_s": "fault -> detected on the bus (s)",
    "failover_s": "fault -> first answer from a fallback (s)",
    "recovery_s": "fault cleared -> first answer from the primary (s)",
    "full_return_s": "fault cleared -> every answer from the primary (s)",
    "gradual": "the primary's share ramped up",
    "engage_s": "kill switch -> every answer maintenance (s)",
}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}".rstrip("0").rstrip(".")
    return "—" if value is None else str(value)


def markdown(result: "DrillResult", *, summary: str, runbook: str) -> str:
    tl = result.timeline
    lines = [
        f"# Drill `{result.scenario}`: {'PASSED' if result.passed else 'FAILED'}",
        "",
        f"- What broke: {summary}",
        (f"- Drill id `{result.drill_id}`, {result.started_at:%Y-%m-%d %H:%M:%S} UTC to "
         f"{result.finished_at:%H:%M:%S} UTC; route `{tl.route}`, primary `{tl.primary}`"),
        f"- Runbook exercised: `docs/runbooks/{runbook}`",
        "",
        "![timeline](timeline.png)",
        "",
        "## Verdict",
        "",
        "| | figure | measured | target |",
        "|---|---|---|---|",
    ]
    for v in result.verdicts:
        limit = "check" if v.limit is None else f"<= {_fmt(v.limit)}"
        note = f" ({v.note})" if v.note else ""
        lines.append(f"| {'pass' if v.ok else '**FAIL**'} | {v.name} | {_fmt(v.value)}{note} | {limit} |")
    lines += ["", "## Figures", "", "| figure | value | meaning |", "|---|---|---|"]
    for name, value in result.figures.items():
        lines.append(f"| {name} | {_fmt(value)} | {MEANING.get(name, '')} |")
    lines += ["", "## Marks (seconds since the start)", ""]
    lines += [f"- {name}: {_fmt(t)}" for name, t in sorted(tl.marks.items(), key=lambda kv: kv[1])]
    if tl.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in tl.notes]
    changes = result.details.get("tier_timeline")
    if changes:
        lines += ["", "## Tier timeline (worst tier answered, as callers saw it)", ""]
        lines += [f"- {_fmt(t)} s: {tier}" for t, tier in changes]
    shares = result.details.get("primary_share_after_clear")
    if shares:
        lines += ["", "## The primary's share of answers after the fault cleared", "",
                  " ".join(f"{_fmt(t)}s:{s:.2f}" for t, s in shares[:60])]
    events = [e for e in tl.events if not e.subject.startswith("drill.")]
    if events:
        lines += ["", "## Status events during the drill", ""]
        for e in events[:60]:
            who = e.body.get("provider") or e.body.get("instance") or e.body.get("route") or ""
            why = e.body.get("reason") or e.body.get("to_tier") or ""
            lines.append(f"- {_fmt(e.t)} s `{e.subject}` {who} {why}".rstrip())
    return "\n".join(lines) + "\n"
