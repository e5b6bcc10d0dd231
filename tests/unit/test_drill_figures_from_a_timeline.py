"""The drill's figures are computed from a timeline alone: detection, failover, errors, RTO, RPO,
the tier timeline and whether the primary's return was gradual."""

from services.drills import measure
from services.drills.timeline import Answer, BusEvent, Timeline
from services.drills.verdict import Check, judge
from services.runtime.config.drills import DrillTarget

RATE = 10  # requests per second in these timelines


def answer(n: int, provider: str | None = "openai", *, status: str = "ok", latency: float = 0.05,
           tier: str | None = None, **fields: object) -> Answer:
    sent = n / RATE
    if tier is None:
        tier = None if provider is None else "full" if provider == "openai" else "degraded"
    return Answer(n=n, request_id=f"r{n}", sent=sent, done=sent + latency, status=status,
                  tier=tier, provider=provider, latency_ms=latency * 1000, **fields)  # type: ignore[arg-type]


def outage(*, ramp: bool) -> list[Answer]:
    """Primary until 2 s, the fallback until 5 s (fault 2 s -> cleared 5 s), then back: over 2 s
    in steps (ramp) or at once."""
    answers = []
    for n in range(100):  # 10 s
        t = n / RATE
        if t < 2 or t >= 7:
            provider = "openai"
        elif t < 5:
            provider = "anthropic"
        elif ramp:  # share rising 0.25, 0.5, 0.75, 1.0 per half second
            share = min(1.0, 0.25 * (1 + int((t - 5) / 0.5)))
            provider = "openai" if (n % 4) < share * 4 else "anthropic"
        else:
            provider = "openai"
        answers.append(answer(n, provider))
    return answers


def test_detection_failover_and_rto_of_a_clean_failover():
    tl = Timeline(t0=0.0, route="chat", primary="openai", answers=outage(ramp=True))
    tl.events = [BusEvent(2.35, "provider.down", {"provider": "openai"}),
                 BusEvent(1.0, "provider.down", {"provider": "anthropic"}),
                 BusEvent(5.6, "provider.up", {"provider": "openai"})]
    assert measure.detection(tl, "provider.down", 2.0, provider="openai") == 0.35
    assert measure.detection(tl, "provider.down", 2.0, provider="local") is None
    assert measure.failover(tl.answers, 2.0, "openai") == 0.05  # the 2.0 s request, 50 ms later
    assert measure.caller_errors(tl.answers) == 0
    # No request went unserved: restored when the first request after the fault was answered.
    assert measure.rto(tl.answers, 2.0, lambda a: a.model_answered) == 0.05


def test_rto_runs_to_the_answer_after_the_last_failure():
    answers = [answer(n) for n in range(20)]
    for n in (5, 6, 8):  # errors after a fault at 0.45 s; 9 is answered at 0.95 s
        answers[n] = answer(n, None, status="error", error_kind="exhausted")
    answers[7] = answer(7, None, status="timeout", tier=None)
    assert measure.caller_errors(answers) == 4
    assert measure.error_kinds(answers) == {"exhausted": 3, "timeout": 1}
    assert measure.rto(answers, 0.45, lambda a: a.model_answered) == 0.5
    # Never served again after the fault: no RTO at all.
    assert measure.rto(answers[:9], 0.45, lambda a: a.model_answered) is None


def test_gradual_return_is_told_from_a_step():
    ramped = measure.primary_return(outage(ramp=True), "openai", 5.0, 0.5)
    assert ramped["gradual"] is True and ramped["ramp_bins"] >= 2
    assert ramped["recovery_s"] == 0.25  # the first request the 25 % share gave the primary
    assert ramped["full_return_s"] == 1.5
    stepped = measure.primary_return(outage(ramp=False), "openai", 5.0, 0.5)
    assert stepped["gradual"] is False and stepped["full_return_s"] == 0.0
    never = measure.primary_return([a for a in outage(ramp=True) if a.sent < 5], "openai", 5.0, 0.5)
    assert never["recovery_s"] is None and never["full_return_s"] is None


def test_tier_timeline_and_rates_per_bin():
    answers = outage(ramp=False)
    assert measure.tier_changes(answers, 1.0) == [(0.0, "full"), (2.0, "degraded"), (5.0, "full")]
    starts, by_provider = measure.bins(answers, 1.0, measure.by_provider)
    assert starts[:3] == [0.0, 1.0, 2.0]
    assert by_provider["openai"][0] == 10 and by_provider["anthropic"][3] == 10
    maintenance = answer(3, None, tier="emergency", answered_by="maintenance")
    assert measure.by_provider(maintenance) == "maintenance" and measure.by_tier(maintenance) == "emergency"


def test_rpo_is_how_far_back_data_was_lost():
    assert measure.rpo([], 10.0) == 0.0
    assert measure.rpo([7.5, 9.0], 10.0) == 2.5
    assert measure.rpo([11.0], 10.0) == 0.0  # lost after the disaster: counted by `lost`, not RPO
    answers = [answer(n) for n in range(5)] + [answer(5, None, status="queued", tier="emergency")]
    assert [a.request_id for a in measure.unrecorded(answers, {"r0", "r1", "r3"})] == ["r2", "r4"]


def test_latency_percentiles_of_answers_sent_in_a_window():
    answers = [answer(n, latency=0.01 * (n + 1)) for n in range(20)]
    assert measure.latency(answers, 0.0, 2.0) == {"p50_ms": 110.0, "p95_ms": 200.0, "max_ms": 200.0}
    assert measure.latency(answers, 5.0, 6.0)["p95_ms"] is None


def test_verdicts_against_targets_and_checks():
    target = DrillTarget(rto_s=30, rpo_s=0, errors=0, max={"engage_s": 1.0})
    good = {"rto_s": 0.2, "rpo_s": 0.0, "lost": 0, "errors": 0, "engage_s": 0.04}
    passed, verdicts = judge(good, target, {"gradual": Check(True)})
    assert passed and [v.name for v in verdicts] == ["rto_s", "rpo_s", "errors", "engage_s", "gradual"]
    # RPO 0 means nothing lost, whatever the window's length.
    passed, verdicts = judge({**good, "lost": 1}, target, {})
    assert not passed and not next(v for v in verdicts if v.name == "rpo_s").ok
    # A figure that was not measured fails its target.
    passed, verdicts = judge({**good, "rto_s": None}, target, {})
    assert not passed and next(v for v in verdicts if v.name == "rto_s").note == "service never restored"
    passed, _ = judge(good, target, {"returned": Check(False, "never")})
    assert not passed
    passed, _ = judge({**good, "errors": 3}, DrillTarget(errors=None), {})
    assert passed  # not judged
