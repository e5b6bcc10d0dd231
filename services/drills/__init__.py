"""Drills: inject a fault into the running mesh under synthetic traffic, measure what callers and
the bus saw, judge it against lifeline.yaml's targets, report it (Markdown, JSON, PNG).

    timeline.py   what a drill saw, as data          measure.py  figures from a timeline (pure)
    verdict.py    figures against targets (pure)     traffic.py  the synthetic callers
    bus.py        streams, STATUS, KV                faults.py   breaking and mending things
    context.py    what a scenario works with         runner.py   one drill, start to finish
    report.py     Markdown                           plot.py     the PNG timeline
    scenarios/    one module per kind of incident
"""

from .bus import DrillError
from .context import DrillOptions
from .runner import DrillResult, run_drill
from .scenarios import SCENARIOS

__all__ = ["SCENARIOS", "DrillError", "DrillOptions", "DrillResult", "run_drill"]
