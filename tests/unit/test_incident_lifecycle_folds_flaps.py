"""An incident's life, pure: open, monitor, relapse, resolve with the measured duration, reopen."""

from datetime import UTC, datetime, timedelta

from services.notifier.incidents import human, manual_open, manual_resolve, manual_update, on_signal, settle
from services.notifier.signals import Signal
from services.runtime.config.notifier import IncidentPolicy

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = IncidentPolicy(resolve_after_s=60, reopen_within_s=600)
DOWN = Signal(key="provider:openai", problem=True, title="Provider openai outage",
              component="provider-openai", impact="major", body="503s")
UP = Signal(key="provider:openai", problem=False, title="", component="provider-openai",
            impact="none", body="answering again.")


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def test_down_opens_up_monitors_and_the_quiet_period_resolves_with_the_outage_duration():
    [opened] = on_signal(DOWN, None, at(0), POLICY, "i1")
    assert (opened.kind, opened.new, opened.incident.status) == ("opened", True, "investigating")
    [calm] = on_signal(UP, opened.incident, at(95), POLICY, "x")
    assert (calm.kind, calm.incident.status, calm.incident.monitoring_at) == ("monitoring", "monitoring", at(95))
    assert settle(calm.incident, at(154), POLICY) is None
    done = settle(calm.incident, at(500), POLICY)
    assert done.kind == "resolved" and done.incident.duration_s == 95  # down to the up that held
    assert done.incident.resolved_at == at(155)  # when the quiet period ended, not when noticed
    assert "1m 35s" in done.body


def test_a_relapse_inside_the_quiet_period_folds_into_the_same_incident():
    incident = on_signal(DOWN, None, at(0), POLICY, "i1")[0].incident
    for n in range(1, 6):
        incident = on_signal(UP, incident, at(n * 10 - 5), POLICY, "x")[0].incident
        [relapse] = on_signal(DOWN, incident, at(n * 10), POLICY, "x")
        assert (relapse.kind, relapse.incident.id, relapse.incident.flaps) == ("updated", "i1", n)
        incident = relapse.incident
    assert incident.status == "identified"


def test_failing_again_soon_after_resolving_reopens_later_opens_a_new_one():
    opened = on_signal(DOWN, None, at(0), POLICY, "i1")[0].incident
    resolved = on_signal(UP.__class__(**{**UP.__dict__, "resolve_now": True}), opened, at(10),
                         POLICY, "x")[0].incident
    assert resolved.status == "resolved" and resolved.duration_s == 10
    [again] = on_signal(DOWN, resolved, at(300), POLICY, "i2")
    assert (again.kind, again.incident.id, again.incident.resolved_at) == ("reopened", "i1", None)
    [fresh] = on_signal(DOWN, resolved, at(10 + 601), POLICY, "i3")
    assert (fresh.kind, fresh.incident.id) == ("opened", "i3")


def test_an_event_arriving_after_the_quiet_period_settles_the_incident_first():
    monitoring = on_signal(UP, on_signal(DOWN, None, at(0), POLICY, "i1")[0].incident, at(20),
                           POLICY, "x")[0].incident
    steps = on_signal(DOWN, monitoring, at(200), POLICY, "i2")
    assert [s.kind for s in steps] == ["resolved", "reopened"]


def test_the_same_trouble_again_is_silent_and_a_worse_one_is_an_update():
    incident = on_signal(DOWN, None, at(0), POLICY, "i1")[0].incident
    assert on_signal(DOWN, incident, at(5), POLICY, "x") == []
    worse = Signal(**{**DOWN.__dict__, "impact": "critical", "title": "no fallback"})
    [step] = on_signal(worse, incident, at(6), POLICY, "x")
    assert (step.kind, step.incident.impact, step.incident.title) == ("updated", "critical", "no fallback")
    assert on_signal(UP, None, at(7), POLICY, "x") == []  # nothing open: nothing to resolve


def test_operators_open_update_and_resolve_with_their_name_on_each_step():
    opened = manual_open(new_id="m1", title="Slow EU", component="route-chat", impact="minor",
                         status="investigating", body="looking", at=at(0), actor="carol")
    assert opened.incident.origin == "manual" and opened.actor == "carol"
    step = manual_update(opened.incident, status="monitoring", body="fix out", at=at(30), actor="dan")
    assert (step.incident.status, step.incident.monitoring_at, step.actor) == ("monitoring", at(30), "dan")
    done = manual_resolve(step.incident, body="", at=at(90), actor="dan")
    assert done.incident.duration_s == 30 and done.incident.status == "resolved"
    closed = manual_update(opened.incident, status="resolved", body="ok", at=at(45), actor="x")
    assert closed.kind == "resolved" and closed.incident.duration_s == 45


def test_durations_read_plainly():
    assert [human(s) for s in (0, 59.6, 61, 3600 * 2 + 125)] == ["0s", "1m 00s", "1m 01s", "2h 02m"]
