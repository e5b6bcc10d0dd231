"""Pass or fail: a drill's figures against its targets, plus the scenario's own checks. Pure."""

from dataclasses import asdict, dataclass
from typing import Any

from services.runtime.config.drills import DrillTarget


@dataclass(frozen=True)
class Verdict:
    name: str  # the figure or check
    ok: bool
    value: Any
    limit: Any = None  # the target (None for a check)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    """Something a scenario promises besides RTO/RPO/errors (e.g. "no pinned request crossed")."""

    ok: bool
    note: str = ""


def judge(figures: dict[str, Any], target: DrillTarget,
          checks: dict[str, Check]) -> tuple[bool, list[Verdict]]:
    verdicts = []
    if target.rto_s is not None:
        verdicts.append(_at_most("rto_s", figures.get("rto_s"), target.rto_s,
                                 "service never restored" if figures.get("rto_s") is None else ""))
    if target.rpo_s is not None:
        value, lost = figures.get("rpo_s"), figures.get("lost")
        verdict = _at_most("rpo_s", value, target.rpo_s)
        if verdict.ok and target.rpo_s == 0 and lost:  # RPO 0 means nothing lost, not a short window
            verdict = Verdict("rpo_s", False, value, target.rpo_s, f"{lost} acknowledged records lost")
        verdicts.append(verdict)
    if target.errors is not None:
        verdicts.append(_at_most("errors", figures.get("errors"), target.errors))
    for name, limit in target.max.items():
        verdicts.append(_at_most(name, figures.get(name), limit))
    verdicts += [Verdict(name, c.ok, c.ok, None, c.note) for name, c in checks.items()]
    return all(v.ok for v in verdicts), verdicts


def _at_most(name: str, value: Any, limit: float, note: str = "") -> Verdict:
    if value is None:
        return Verdict(name, False, None, limit, note or "not measured")
    return Verdict(name, value <= limit, value, limit, note)
