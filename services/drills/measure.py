"""The figures of a drill, computed from its timeline alone: pure functions, no I/O, no clock.

Definitions (docs/services/drills.md has the long form):

- detection: the fault -> the first matching STATUS event (e.g. `provider.down` of the primary).
- failover: the fault -> the first answer completed by a model other than the primary.
- client-visible errors: error results and requests that got no reply at all.
- RTO: the fault -> the first "served" answer to a request sent after the last request that was
  not served (an error, a wrong answer, an answer slower than the scenario allows ...): from then
  on, every request was served again. No unserved request: the first served request sent after
  the fault (the failover as the caller felt it).
- RPO: how far back data was lost when the disaster struck (the fault -> the oldest lost record);
  0 when nothing acknowledged was lost. `lost` counts the records.
- gradual return: after the fault clears, the primary's share of model answers per bin rises
  through intermediate values (a ramp), not from 0 to 1 in one step.
"""

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable

from .timeline import Answer, BusEvent, Timeline

TIER_ORDER = ("full", "degraded", "minimal", "emergency")
Served = Callable[[Answer], bool]


def since(t: float | None, start: float | None) -> float | None:
    return None if t is None or start is None else round(t - start, 3)


def first_event(events: Iterable[BusEvent], subject: str, after: float,
                where: Callable[[BusEvent], bool] = lambda e: True) -> float | None:
    """When the first `subject` event at or after `after` that `where` accepts was stored."""
    times = [e.t for e in events if e.subject == subject and e.t >= after and where(e)]
    return min(times) if times else None


def detection(tl: Timeline, subject: str, after: float, *, provider: str | None = None,
              reason: str | None = None) -> float | None:
    def match(e: BusEvent) -> bool:
        return ((provider is None or e.body.get("provider") == provider)
                and (reason is None or e.body.get("reason") == reason))
    return since(first_event(tl.events, subject, after, match), after)


def failover(answers: Iterable[Answer], after: float, primary: str) -> float | None:
    """The fault -> the first answer completed by a model of another provider."""
    times = [a.done for a in answers if a.done is not None and a.done >= after
             and a.model_answered and a.provider != primary]
    return since(min(times), after) if times else None


def caller_errors(answers: Iterable[Answer], *, start: float = float("-inf"),
                  end: float = float("inf"), excluded_kinds: Iterable[str] = ()) -> int:
    """Client-visible errors among requests sent in [start, end), except the kinds named."""
    skip = set(excluded_kinds)
    return sum(1 for a in answers if start <= a.sent < end and a.caller_error
               and a.error_kind not in skip)


def error_kinds(answers: Iterable[Answer]) -> dict[str, int]:
    return dict(Counter(a.error_kind or a.status for a in answers if a.caller_error))


def rto(answers: Iterable[Answer], fault: float, served: Served) -> float | None:
    """The fault -> service restored for good (see the module's definition). None: never."""
    after = sorted((a for a in answers if a.sent >= fault), key=lambda a: a.sent)
    last_bad = max((i for i, a in enumerate(after) if a.done is None or not served(a)),
                   default=-1)
    restored = [a.done for a in after[last_bad + 1:] if a.done is not None and served(a)]
    return since(min(restored), fault) if restored else None


def rpo(lost_times: Iterable[float], disaster: float) -> float:
    """How far back data was lost: the disaster -> the oldest lost record (0 if none or later)."""
    times = list(lost_times)
    return round(max(0.0, disaster - min(times)), 3) if times else 0.0


def unrecorded(answers: Iterable[Answer], stored_ids: set[str]) -> list[Answer]:
    """Answered requests whose llm.completed is not in the stream: history and spend lost them."""
    return [a for a in answers if a.status in ("ok", "error") and a.request_id not in stored_ids]


def bins(answers: Iterable[Answer], bin_s: float, key: Callable[[Answer], str | None],
         *, end: float | None = None) -> tuple[list[float], dict[str, list[float]]]:
    """Answers per second by `key`, per bin of completion time: (bin starts, {key: rates})."""
    done = [a for a in answers if a.done is not None]
    last = max([a.done for a in done if a.done is not None] + [end or 0.0, 0.0])
    n = int(last // bin_s) + 1
    starts = [round(i * bin_s, 3) for i in range(n)]
    series: dict[str, list[float]] = defaultdict(lambda: [0.0] * n)
    for a in done:
        k = key(a)
        if k is not None and a.done is not None and a.done >= 0:
            series[k][int(a.done // bin_s)] += 1 / bin_s
    return starts, dict(series)


def by_provider(a: Answer) -> str:
    if a.model_answered:
        return a.provider or "?"
    if a.caller_error:
        return "error"
    if a.status == "queued":
        return "queued"
    return (a.answered_by or a.tier or "other").split(":")[0]


def by_tier(a: Answer) -> str:
    if a.caller_error:
        return "error"
    if a.status == "queued":
        return "emergency"
    return a.tier or "other"


def tier_changes(answers: Iterable[Answer], bin_s: float) -> list[tuple[float, str]]:
    """The worst tier answered per bin, written down each time it changes: [(t, tier)]."""
    worst: dict[int, int] = {}
    for a in answers:
        if a.done is None or a.done < 0:
            continue
        tier = "error" if a.caller_error else by_tier(a)
        rank = TIER_ORDER.index(tier) if tier in TIER_ORDER else len(TIER_ORDER)
        i = int(a.done // bin_s)
        worst[i] = max(worst.get(i, -1), rank)
    changes: list[tuple[float, str]] = []
    for i in sorted(worst):
        tier = TIER_ORDER[worst[i]] if worst[i] < len(TIER_ORDER) else "error"
        if not changes or changes[-1][1] != tier:
            changes.append((round(i * bin_s, 3), tier))
    return changes


def primary_shares(answers: Iterable[Answer], primary: str, start: float, bin_s: float,
                   *, region: str | None = None) -> list[tuple[float, float]]:
    """From `start` on, per bin: the primary's share of model answers (unpinned requests only
    unless `region` is given). [(bin start, share)]; bins without model answers are left out."""
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for a in answers:
        if a.done is None or a.done < start or not a.model_answered or a.region != region:
            continue
        c = counts[int((a.done - start) // bin_s)]
        c[0] += a.provider == primary
        c[1] += 1
    return [(round(start + i * bin_s, 3), round(c[0] / c[1], 3)) for i, c in sorted(counts.items())]


def primary_return(answers: list[Answer], primary: str, cleared: float, bin_s: float,
                   *, hold_bins: int = 2) -> dict[str, object]:
    """How the primary came back after the fault cleared: the first answer it gave, when it had
    every answer again (for `hold_bins` bins in a row), and whether the share ramped up."""
    first = [a.done for a in answers if a.done is not None and a.done >= cleared
             and a.model_answered and a.provider == primary]
    shares = primary_shares(answers, primary, cleared, bin_s)
    full_at = None
    for i in range(len(shares)):
        window = shares[i:i + hold_bins]
        if len(window) == hold_bins and all(s >= 0.999 for _, s in window):
            full_at = shares[i][0]
            break
    started = min(first) if first else None
    ramp = [s for t, s in shares if started is not None and t >= started - bin_s
            and (full_at is None or t < full_at) and 0.0 < s < 0.999]
    return {
        "recovery_s": since(started, cleared),
        "full_return_s": since(full_at, cleared),
        "ramp_bins": len(ramp),
        "gradual": len(ramp) >= 2,
        "shares": shares,
    }


def latency(answers: Iterable[Answer], start: float, end: float) -> dict[str, float | None]:
    values = sorted(a.latency_ms for a in answers
                    if a.latency_ms is not None and start <= a.sent < end and a.status == "ok")
    if not values:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None}

    def pct(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 1)
    return {"p50_ms": pct(0.5), "p95_ms": pct(0.95), "max_ms": round(values[-1], 1)}


def count(answers: Iterable[Answer], predicate: Callable[[Answer], bool]) -> int:
    return sum(1 for a in answers if predicate(a))
