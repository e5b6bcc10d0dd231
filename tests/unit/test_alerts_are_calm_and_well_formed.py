"""Who is told, and the wire formats (pure)."""

from datetime import UTC, datetime, timedelta

from services.notifier import alerts
from services.notifier.incidents import Incident, Transition
from services.runtime.config.notifier import IncidentPolicy, NotifierConfig

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = IncidentPolicy(alert_min_interval_s=300, max_alerts_per_minute=2, alert_max_age_s=900)
CHANNELS = NotifierConfig.model_validate({"channels": {
    "hook": {"kind": "webhook", "url": "http://x", "min_severity": "minor"},
    "pd": {"kind": "pagerduty", "routing_key_env": "K", "min_severity": "major"},
}}).channels


def step(kind: str, impact: str = "major", at: datetime = T0, origin: str = "auto",
         actor: str | None = None) -> Transition:
    i = Incident(id="i1", key="k", title="Provider openai outage", component="provider-openai",
                 impact=impact, status="resolved" if kind == "resolved" else "investigating",
                 origin=origin, started_at=T0, updated_at=at,
                 resolved_at=at if kind == "resolved" else None,
                 duration_s=125.0 if kind == "resolved" else None)
    return Transition(kind, i, "body", at, actor)  # type: ignore[arg-type]


def test_monitoring_and_stale_replays_page_nobody():
    assert not alerts.should_alert(step("monitoring"), last_alert_at=None, now=T0, policy=POLICY)
    assert not alerts.should_alert(step("opened"), last_alert_at=None,
                                   now=T0 + timedelta(hours=1), policy=POLICY)
    assert alerts.should_alert(step("opened"), last_alert_at=None, now=T0, policy=POLICY)


def test_a_flapping_incidents_updates_alert_at_most_once_per_interval():
    later = T0 + timedelta(seconds=60)
    assert not alerts.should_alert(step("updated", at=later), last_alert_at=T0, now=later, policy=POLICY)
    much_later = T0 + timedelta(seconds=301)
    assert alerts.should_alert(step("updated", at=much_later), last_alert_at=T0, now=much_later,
                               policy=POLICY)
    manual = step("updated", at=later, origin="manual", actor="carol")
    assert alerts.should_alert(manual, last_alert_at=T0, now=later, policy=POLICY)
    assert alerts.should_alert(step("resolved", at=later), last_alert_at=T0, now=later, policy=POLICY)


def test_severity_filters_rate_limits_and_pagerduty_has_no_updates():
    assert alerts.channels_for(step("opened", impact="minor"), CHANNELS, {}, POLICY) == (["hook"], [])
    assert alerts.channels_for(step("opened"), CHANNELS, {}, POLICY) == (["hook", "pd"], [])
    assert alerts.channels_for(step("updated"), CHANNELS, {}, POLICY) == (["hook"], [])
    assert alerts.channels_for(step("opened"), CHANNELS, {"hook": 2}, POLICY) == (["pd"], ["hook"])
    assert alerts.channels_for(step("resolved"), CHANNELS, {"hook": 9}, POLICY) == (["hook", "pd"], [])


def test_subscribers_hear_of_their_components_opening_and_resolving():
    assert alerts.subscriber_wants(step("opened"), [])
    assert alerts.subscriber_wants(step("resolved"), ["provider-openai"])
    assert not alerts.subscriber_wants(step("opened"), ["route-chat"])
    assert not alerts.subscriber_wants(step("updated"), [])  # a flap is not news for customers


def test_the_signature_covers_timestamp_and_body():
    body = b'{"a": 1}'
    header = alerts.sign(b"s3cret", 1700000000, body)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert alerts.verify(b"s3cret", header, body)
    assert not alerts.verify(b"s3cret", header, body + b" ")
    assert not alerts.verify(b"s3cret", header.replace("t=1700000000", "t=1700000001"), body)
    assert not alerts.verify(b"other", header, body)


def test_pagerduty_slack_and_mail_formats():
    opened = alerts.alert_payload(step("opened"), url="http://status/incidents/i1")
    trigger = alerts.pagerduty_body(opened, "KEY", source="notifier/1")
    assert trigger["event_action"] == "trigger" and trigger["dedup_key"] == "i1"
    assert trigger["payload"]["severity"] == "error" and trigger["payload"]["summary"]
    resolved = alerts.alert_payload(step("resolved"), url="u")
    assert alerts.pagerduty_body(resolved, "KEY", source="s") == {
        "routing_key": "KEY", "event_action": "resolve", "dedup_key": "i1"}
    slack = alerts.slack_body(resolved)
    assert slack["text"] == ":white_check_mark: [Resolved] Provider openai outage (lasted 2m 05s)"
    mail = alerts.email_message(opened, sender="a@b.c", to=["x@y.z"], unsubscribe="http://u/1")
    assert mail["Subject"] == "[Lifeline] [Opened] Provider openai outage"
    assert "Unsubscribe: http://u/1" in mail.get_content()


def test_backoff_doubles_up_to_its_cap():
    assert [alerts.backoff(n, initial=1, maximum=10) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
