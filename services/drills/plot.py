"""The drill's timeline as a PNG: requests per second by provider and by tier, stacked, with the
fault, its detection, its clearing and the recovery marked.

matplotlib's object API on the Agg canvas (no pyplot): no global figure state, safe in a server.
"""

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from schemas import subjects

from . import measure
from .timeline import Timeline

TIER_COLORS = {"full": "#2e7d32", "degraded": "#f9a825", "minimal": "#ef6c00",
               "emergency": "#c62828", "error": "#212121", "other": "#9e9e9e"}
PALETTE = ("#1565c0", "#8e24aa", "#00897b", "#6d4c41", "#5e35b1", "#3949ab", "#d81b60")
FIXED = {"error": "#212121", "queued": "#c62828", "maintenance": "#e57373", "cache": "#ffb74d",
         "faq": "#ffcc80", "rule": "#ffe0b2"}
MARKS = {"fault": ("#c62828", "-", "fault"), "cleared": ("#2e7d32", "-", "fault cleared"),
         "responded": ("#6a1b9a", "-.", "response"), "snapshot": ("#455a64", ":", "snapshot"),
         "restored": ("#1565c0", "-", "restored"), "drained": ("#1565c0", ":", "queue drained"),
         "recovered": ("#0d47a1", "-", "primary fully back")}
EVENTS = {subjects.PROVIDER_DOWN: ("#ef6c00", "--", "provider.down"),
          subjects.PROVIDER_DEGRADED: ("#f9a825", "--", "provider.degraded"),
          subjects.PROVIDER_UP: ("#1e88e5", "--", "provider.up"),
          subjects.SERVICE_DOWN: ("#ef6c00", "--", "service.down"),
          subjects.KILLSWITCH_ENGAGED: ("#ef6c00", "--", "killswitch.engaged")}


def draw(tl: Timeline, path: Path, *, title: str, bin_s: float) -> Path:
    fig = Figure(figsize=(12, 7.5), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    end = max([a.done for a in tl.answers if a.done is not None] + list(tl.marks.values()) + [1.0])
    starts, by_provider = measure.bins(tl.answers, bin_s, measure.by_provider, end=end)
    _, by_tier = measure.bins(tl.answers, bin_s, measure.by_tier, end=end)
    providers = sorted(by_provider, key=lambda n: (n in FIXED, n != tl.primary, n))  # primary lowest
    _stack(top, starts, by_provider, _provider_colors(by_provider, tl.primary), bin_s, providers)
    _stack(bottom, starts, by_tier, TIER_COLORS, bin_s,
           order=[t for t in TIER_COLORS if t in by_tier])
    top.set_title(f"{title}: requests per second by provider (primary {tl.primary})", loc="left")
    bottom.set_title("requests per second by tier", loc="left")
    bottom.set_xlabel("seconds since the drill started")
    for ax in (top, bottom):
        ax.set_ylabel("req/s")
        ax.grid(True, alpha=0.3)
        ax.set_xlim(0, end + bin_s)
        _marks(ax, tl, labelled=ax is top)
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _provider_colors(series: dict[str, list[float]], primary: str) -> dict[str, str]:
    colors, palette = {}, iter(PALETTE)
    for name in sorted(series, key=lambda n: (n != primary, n)):
        colors[name] = FIXED.get(name) or next(palette, "#757575")
    return colors


def _stack(ax: Axes, starts: list[float], series: dict[str, list[float]], colors: dict[str, str],
           bin_s: float, order: list[str]) -> None:
    bottom = [0.0] * len(starts)
    for name in order:
        values = series[name]
        ax.bar(starts, values, width=bin_s, bottom=bottom, align="edge",
               color=colors.get(name, "#757575"), label=name, linewidth=0)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]


def _marks(ax: Axes, tl: Timeline, *, labelled: bool) -> None:
    for name, t in tl.marks.items():
        color, style, label = MARKS.get(name, ("#616161", ":", name))
        ax.axvline(t, color=color, linestyle=style, linewidth=1.6,
                   label=label if labelled else None)
    fault = tl.marks.get("fault", 0.0)
    seen: set[str] = set()
    for event in tl.events:  # the first of each kind after the fault: detection and recovery
        if event.subject in EVENTS and event.subject not in seen and event.t >= fault > 0:
            seen.add(event.subject)
            color, style, label = EVENTS[event.subject]
            ax.axvline(event.t, color=color, linestyle=style, linewidth=1.2,
                       label=label if labelled else None)
